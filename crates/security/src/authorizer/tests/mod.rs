//! The authorizer against the behaviour of Kafka's StandardAuthorizer and AclAuthorizer
//! tests: resource patterns, principals and hosts, deny over allow, implied operations,
//! super users, the no-ACL default, filters, validation, authorized operations and
//! authorizeByResourceType.

mod authorize;
mod authorize_any;
mod bindings;
mod index;

use super::*;
use AclOperation::*;
use AclPermissionType::{Allow, Deny};
use ResourceType::{Cluster, Group, Topic, TransactionalId};

const ALICE: &str = "User:alice";
const BOB: &str = "User:bob";
const HOST: &str = "192.168.0.1";
const OTHER_HOST: &str = "192.168.0.2";

/// A literal ACL from any host.
fn literal(
    resource_type: ResourceType,
    name: &str,
    principal: &str,
    operation: AclOperation,
    permission: AclPermissionType,
) -> AclBinding {
    acl(resource_type, name, PatternType::Literal, principal, operation, permission)
}

/// A prefixed ACL from any host.
fn prefixed(
    resource_type: ResourceType,
    name: &str,
    principal: &str,
    operation: AclOperation,
    permission: AclPermissionType,
) -> AclBinding {
    acl(resource_type, name, PatternType::Prefixed, principal, operation, permission)
}

fn acl(
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    principal: &str,
    operation: AclOperation,
    permission: AclPermissionType,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.to_owned(),
        pattern_type,
        principal: principal.to_owned(),
        host: WILDCARD.to_owned(),
        operation,
        permission,
    }
}

fn with_host(mut binding: AclBinding, host: &str) -> AclBinding {
    binding.host = host.to_owned();
    binding
}

fn authorizer(acls: impl IntoIterator<Item = AclBinding>) -> Authorizer {
    let mut authorizer = Authorizer::default();
    for binding in acls {
        binding.validate().unwrap();
        assert!(authorizer.add(binding));
    }
    authorizer
}

/// [`authorizer`], for tests where a variable has that name.
fn authorizer_with(acls: impl IntoIterator<Item = AclBinding>) -> Authorizer {
    authorizer(acls)
}

/// Whether ALICE from HOST may do `operation` on the topic.
fn alice_may(authorizer: &Authorizer, operation: AclOperation, topic: &str) -> bool {
    authorizer.authorize(ALICE, HOST, operation, Topic, topic)
}
