//! Kafka's `StandardAuthorizer` (KIP-801) as pure code: the ACL set, and the decisions the
//! broker asks of it on every request. No I/O, no clock; the broker keeps one [`Authorizer`]
//! in sync with the ACL metadata records and swaps or locks it as it likes.
//!
//! ```text
//!  CreateAcls ─► AclBinding::validate ─► metadata record ─► Authorizer::add
//!  DeleteAcls ─► AclBindingFilter::validate, Authorizer::acls(filter) ─► records ─► Authorizer::remove
//!  DescribeAcls ─► Authorizer::acls(filter)
//!  every API ─► Authorizer::authorize(principal, host, op, type, name)
//!               Authorizer::authorize_any(principal, host, op, type)    (authorizeByResourceType)
//!               Authorizer::authorized_operations(principal, host, type, name)
//! ```
//!
//! A decision (Kafka's `StandardAuthorizerData.authorize`): a super user is allowed
//! everything. Otherwise the ACLs that apply are those whose pattern matches the resource
//! (literal equal, literal `*`, or prefixed with a prefix of the name), whose principal is
//! the caller's or `User:*`, and whose host is the caller's or `*`. A DENY of the operation
//! or of ALL wins; then an ALLOW of the operation, of ALL, or of an operation implying it
//! (READ, WRITE, DELETE, ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS; only
//! for ALLOW) allows. With neither, the caller is denied if the resource has any ACL at
//! all, and `allow.everyone.if.no.acl.found` decides if it has none.

mod binding;
mod decision;
mod index;
mod types;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use binding::{check_operation_supported, host_address, parse_super_users, AclBinding, AclBindingFilter};
pub use decision::Decision;
pub use types::{AclOperation, AclPermissionType, PatternType, ResourceType};

use binding::BindingRef;
use index::{AclEntry, TypeAcls};

/// The name of the one cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The resource name of a literal ACL that applies to every resource of its type, and the
/// host of an ACL that applies from every host.
pub const WILDCARD: &str = "*";
/// The principal of an ACL that applies to every principal (of any type, as in Kafka).
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The `authorizer.class.name` that selects Gregor's authorizer (Kafka's KRaft one).
pub const STANDARD_AUTHORIZER_CLASS: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
/// The setting listing the super users (see [`parse_super_users`]).
pub const SUPER_USERS_CONFIG: &str = "super.users";
/// The setting deciding resources without any ACL (default false).
pub const ALLOW_EVERYONE_IF_NO_ACL_FOUND_CONFIG: &str = "allow.everyone.if.no.acl.found";

/// The ACLs and the authorizer's settings.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    by_type: BTreeMap<ResourceType, TypeAcls>,
    len: usize,
    super_users: Vec<String>,
    allow_everyone_if_no_acl_found: bool,
}

impl Authorizer {
    /// An authorizer without ACLs.
    pub fn new(super_users: Vec<String>, allow_everyone_if_no_acl_found: bool) -> Self {
        Self { super_users, allow_everyone_if_no_acl_found, ..Self::default() }
    }

    /// The super users (`User:admin`), allowed everything.
    pub fn super_users(&self) -> &[String] {
        &self.super_users
    }

    /// Replaces the super users.
    pub fn set_super_users(&mut self, super_users: Vec<String>) {
        self.super_users = super_users;
    }

    /// Whether a resource without any ACL is open to everyone.
    pub fn allow_everyone_if_no_acl_found(&self) -> bool {
        self.allow_everyone_if_no_acl_found
    }

    /// Sets `allow.everyone.if.no.acl.found`.
    pub fn set_allow_everyone_if_no_acl_found(&mut self, allow: bool) {
        self.allow_everyone_if_no_acl_found = allow;
    }

    /// Whether `principal` is a super user (compared exactly, as Kafka does).
    pub fn is_super_user(&self, principal: &str) -> bool {
        self.super_users.iter().any(|user| user == principal)
    }

    /// Adds an ACL (replaying a metadata record); false if the same ACL is there already,
    /// or if it is not literal or prefixed. Not validated: validate at CreateAcls.
    pub fn add(&mut self, binding: AclBinding) -> bool {
        let (resource_type, pattern_type, name, entry) = split(binding);
        let added = self.by_type.entry(resource_type).or_default().insert(pattern_type, &name, entry);
        self.len += usize::from(added);
        added
    }

    /// Removes an ACL; false if it was not there.
    pub fn remove(&mut self, binding: &AclBinding) -> bool {
        let Some(acls) = self.by_type.get_mut(&binding.resource_type) else { return false };
        let (_, pattern_type, name, entry) = split(binding.clone());
        let removed = acls.remove(pattern_type, &name, &entry);
        if acls.is_empty() {
            self.by_type.remove(&binding.resource_type);
        }
        self.len -= usize::from(removed);
        removed
    }

    /// Removes every ACL `filter` matches and returns them, in [`Self::bindings`] order.
    pub fn remove_matching(&mut self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        let removed = self.acls(filter);
        for binding in &removed {
            self.remove(binding);
        }
        removed
    }

    /// How many ACLs there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no ACL.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every ACL, ordered by resource type, pattern type (literal first), resource name,
    /// principal, host, operation and permission.
    pub fn bindings(&self) -> impl Iterator<Item = AclBinding> + '_ {
        self.binding_refs().map(BindingRef::to_binding)
    }

    /// The ACLs `filter` matches (DescribeAcls, and what DeleteAcls deletes), in
    /// [`Self::bindings`] order.
    pub fn acls(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        self.binding_refs().filter(|binding| filter.matches_ref(binding)).map(BindingRef::to_binding).collect()
    }

    fn binding_refs(&self) -> impl Iterator<Item = BindingRef<'_>> + '_ {
        self.by_type.iter().flat_map(|(&resource_type, acls)| {
            let literal = acls.literal.iter().map(|(name, entries)| (PatternType::Literal, name, entries));
            let prefixed = acls.prefixed.iter().map(|(name, entries)| (PatternType::Prefixed, name, entries));
            literal.chain(prefixed).flat_map(move |(pattern_type, name, entries)| {
                entries.iter().map(move |entry| BindingRef {
                    resource_type,
                    resource_name: name,
                    pattern_type,
                    principal: &entry.principal,
                    host: &entry.host,
                    operation: entry.operation,
                    permission: entry.permission,
                })
            })
        })
    }
}

fn split(binding: AclBinding) -> (ResourceType, PatternType, String, AclEntry) {
    let AclBinding { resource_type, resource_name, pattern_type, principal, host, operation, permission } = binding;
    (resource_type, pattern_type, resource_name, AclEntry { principal, host, operation, permission })
}
