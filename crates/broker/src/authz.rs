//! Authorization of requests (`authorizer.class.name`): the handlers decide which
//! operation each API needs on which resource, as Kafka's `KafkaApis` does, through
//! [`crate::handlers::RequestContext::allowed`]; this module answers "may this principal
//! do that" with Kafka's StandardAuthorizer semantics (`gregor_security::Authorizer`)
//! over the ACLs of the metadata image. Without an authorizer everything is allowed, as
//! in Kafka.

use std::sync::{Arc, RwLock};

use gregor_metadata::{AclEntry, MetadataImage};
use gregor_security::authorizer::{AclBinding, AclOperation, AclPermissionType, PatternType, ResourceType};
use gregor_security::Authorizer;

pub(crate) use gregor_security::authorizer::{AclOperation as Op, ResourceType as Res, CLUSTER_NAME};

use crate::{BrokerConfig, BrokerError};

/// The class names that mean Kafka's ACL authorizer (KRaft's and the ZooKeeper-era one,
/// whose semantics are the same).
const AUTHORIZER_CLASSES: [&str; 2] =
    [gregor_security::authorizer::STANDARD_AUTHORIZER_CLASS, "kafka.security.authorizer.AclAuthorizer"];

/// The broker's authorizer, rebuilt from the image's ACLs when the image changes.
#[derive(Debug)]
pub(crate) struct Authz {
    /// `None`: no authorizer configured, everything is allowed.
    settings: Option<Authorizer>,
    /// The authorizer of the image at this metadata offset.
    current: RwLock<(i64, Arc<Authorizer>)>,
}

impl Authz {
    /// From `authorizer.class.name`, `super.users` and `allow.everyone.if.no.acl.found`.
    pub(crate) fn of(config: &BrokerConfig) -> Result<Self, BrokerError> {
        let class = config.broker_str("authorizer.class.name");
        let class = class.trim();
        let settings = if class.is_empty() {
            None
        } else if !AUTHORIZER_CLASSES.contains(&class) {
            return Err(BrokerError::InvalidConfig(format!(
                "refusing to start: 'authorizer.class.name' names {class}, a class Gregor cannot load; Gregor's authorizer is Kafka's StandardAuthorizer ({}), and without it every client would be allowed every operation",
                gregor_security::authorizer::STANDARD_AUTHORIZER_CLASS
            )));
        } else {
            let super_users = gregor_security::authorizer::parse_super_users(&config.broker_str("super.users"))
                .map_err(|e| BrokerError::InvalidConfig(format!("super.users: {e}")))?;
            Some(Authorizer::new(super_users, config.broker_bool("allow.everyone.if.no.acl.found")))
        };
        Ok(Self { settings, current: RwLock::new((-2, Arc::new(Authorizer::default()))) })
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.settings.is_some()
    }

    /// Whether `principal` connected from `host` may do `op` on the resource.
    pub(crate) fn allowed(
        &self,
        image: &MetadataImage,
        (principal, host): (&str, &str),
        op: Op,
        res: Res,
        name: &str,
    ) -> bool {
        self.settings.is_none() || self.authorizer(image).authorize(principal, host, op, res, name)
    }

    /// The ACL set of `image`, as the authorizer sees it.
    pub(crate) fn authorizer(&self, image: &MetadataImage) -> Arc<Authorizer> {
        {
            let current = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if current.0 == image.last_offset {
                return current.1.clone();
            }
        }
        let mut fresh = self.settings.clone().unwrap_or_default();
        for binding in image.acls.iter().filter_map(binding_of) {
            let _ = fresh.add(binding);
        }
        let fresh = Arc::new(fresh);
        let mut current = self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = (image.last_offset, fresh.clone());
        fresh
    }
}

/// A stored ACL as the authorizer's binding (`None` for one it cannot read).
pub(crate) fn binding_of(entry: &AclEntry) -> Option<AclBinding> {
    let binding = AclBinding {
        resource_type: ResourceType::from_code(entry.resource_type),
        resource_name: entry.resource_name.clone(),
        pattern_type: PatternType::from_code(entry.pattern_type),
        principal: entry.principal.clone(),
        host: entry.host.clone(),
        operation: AclOperation::from_code(entry.operation),
        permission: AclPermissionType::from_code(entry.permission_type),
    };
    binding.validate().ok().map(|()| binding)
}

/// A binding as the metadata record stores it.
pub(crate) fn entry_of(binding: &AclBinding) -> AclEntry {
    AclEntry {
        resource_type: binding.resource_type.code(),
        resource_name: binding.resource_name.clone(),
        pattern_type: binding.pattern_type.code(),
        principal: binding.principal.clone(),
        host: binding.host.clone(),
        operation: binding.operation.code(),
        permission_type: binding.permission.code(),
    }
}
