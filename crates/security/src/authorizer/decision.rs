//! The decisions: one operation on one resource ([`Authorizer::decide`]), any resource of
//! a type ([`Authorizer::authorize_any`]), and every operation a resource supports
//! ([`Authorizer::authorized_operations`]).

use std::ops::ControlFlow;

use super::index::{for_each_prefix_of, AclEntry, Entries};
use super::types::{AclOperation, AclPermissionType, ResourceType};
use super::{Authorizer, WILDCARD, WILDCARD_PRINCIPAL};

/// A decision and the rule that made it (Kafka's `MatchingRule`, for the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The principal is a super user: allowed.
    SuperUser,
    /// An ALLOW ACL applies and no DENY does: allowed.
    AllowAcl,
    /// A DENY ACL applies: denied.
    DenyAcl,
    /// The resource has ACLs but none allows this principal this operation from this host:
    /// denied.
    NoMatchingAcl,
    /// The resource has no ACL at all: `allow.everyone.if.no.acl.found` decided.
    NoAclFound {
        /// The setting's value, so the decision.
        allowed: bool,
    },
}

impl Decision {
    /// Whether the operation is allowed.
    pub fn is_allowed(self) -> bool {
        match self {
            Self::SuperUser | Self::AllowAcl => true,
            Self::DenyAcl | Self::NoMatchingAcl => false,
            Self::NoAclFound { allowed } => allowed,
        }
    }
}

/// Whether an ACL is for this principal (or every principal) and host (or every host).
fn applies_to(entry: &AclEntry, principal: &str, host: &str) -> bool {
    (entry.principal == principal || entry.principal == WILDCARD_PRINCIPAL)
        && (entry.host == WILDCARD || entry.host == host)
}

impl Authorizer {
    /// Whether `principal` (`User:alice`) connecting from `host` (see
    /// [`super::host_address`]) may do `operation` on the resource. Called on every request:
    /// it allocates nothing and looks only at the ACLs whose pattern matches the resource.
    pub fn authorize(
        &self,
        principal: &str,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        self.decide(principal, host, operation, resource_type, resource_name).is_allowed()
    }

    /// [`Self::authorize`] with the rule that decided.
    pub fn decide(
        &self,
        principal: &str,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> Decision {
        if self.is_super_user(principal) {
            return Decision::SuperUser;
        }
        let no_acl_found = Decision::NoAclFound { allowed: self.allow_everyone_if_no_acl_found };
        let Some(acls) = self.by_type.get(&resource_type) else { return no_acl_found };
        let wanted = operation.bit();
        let (mut has_resource_acls, mut allowed) = (false, false);
        let flow = acls.for_each_applicable(resource_name, |entries| {
            has_resource_acls = true;
            for entry in entries.iter().filter(|entry| applies_to(entry, principal, host)) {
                match entry.permission {
                    AclPermissionType::Deny if entry.operation.deny_mask() & wanted != 0 => {
                        return ControlFlow::Break(());
                    }
                    AclPermissionType::Allow if entry.operation.allow_mask() & wanted != 0 => allowed = true,
                    _ => {}
                }
            }
            ControlFlow::Continue(())
        });
        if flow.is_break() {
            Decision::DenyAcl
        } else if allowed {
            Decision::AllowAcl
        } else if has_resource_acls {
            Decision::NoMatchingAcl
        } else {
            no_acl_found
        }
    }

    /// The bit field of the operations `principal` may do on the resource, over the
    /// operations its type supports (bit n for the operation of code n), for the
    /// `*_authorized_operations` fields of Metadata, DescribeCluster and DescribeGroups.
    /// Equal to calling [`Self::authorize`] for each supported operation, in one pass.
    pub fn authorized_operations(
        &self,
        principal: &str,
        host: &str,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> i32 {
        let supported = resource_type.supported_operations().iter().fold(0u32, |mask, op| mask | op.bit());
        if self.is_super_user(principal) {
            return supported as i32;
        }
        let (mut has_resource_acls, mut allowed, mut denied) = (false, 0u32, 0u32);
        if let Some(acls) = self.by_type.get(&resource_type) {
            let _ = acls.for_each_applicable(resource_name, |entries| {
                has_resource_acls = true;
                for entry in entries.iter().filter(|entry| applies_to(entry, principal, host)) {
                    match entry.permission {
                        AclPermissionType::Deny => denied |= entry.operation.deny_mask(),
                        AclPermissionType::Allow => allowed |= entry.operation.allow_mask(),
                        _ => {}
                    }
                }
                ControlFlow::Continue(())
            });
        }
        if !has_resource_acls && self.allow_everyone_if_no_acl_found {
            allowed = u32::MAX;
        }
        (supported & allowed & !denied) as i32
    }

    /// Whether `principal` may do `operation` on at least one resource of the type, Kafka's
    /// `Authorizer#authorizeByResourceType` (CreateTopics and idempotent producers without a
    /// cluster-level ACL; InitProducerId). As Kafka's default implementation:
    /// - allowed if [`Self::authorize`] allows the operation on a resource named
    ///   `hardcode` (super users, and `allow.everyone.if.no.acl.found` when no ACL applies
    ///   to that name);
    /// - otherwise only ACLs of this principal or `User:*`, this host or `*`, and this
    ///   operation or ALL count (no implied operations): a literal `*` DENY denies; a
    ///   literal `*` ALLOW allows; else an ALLOW of a literal name allows unless a DENY of
    ///   the same literal name or of a prefix of it exists, and an ALLOW of a prefix allows
    ///   unless a DENY of a prefix of that prefix (itself included) exists.
    ///
    /// False for `Any` or `Unknown` arguments (Kafka throws).
    pub fn authorize_any(
        &self,
        principal: &str,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if matches!(operation, AclOperation::Any | AclOperation::Unknown)
            || matches!(resource_type, ResourceType::Any | ResourceType::Unknown)
        {
            return false;
        }
        if self.authorize(principal, host, operation, resource_type, "hardcode") {
            return true;
        }
        let Some(acls) = self.by_type.get(&resource_type) else { return false };
        let has = |entries: &Entries, permission: AclPermissionType| {
            entries.iter().any(|entry| {
                entry.permission == permission
                    && (entry.operation == operation || entry.operation == AclOperation::All)
                    && applies_to(entry, principal, host)
            })
        };
        if let Some(entries) = acls.literal.get(WILDCARD) {
            if has(entries, AclPermissionType::Deny) {
                return false;
            }
            if has(entries, AclPermissionType::Allow) {
                return true;
            }
        }
        let denied_by_prefix = |name: &str| {
            for_each_prefix_of(&acls.prefixed, name, |_, entries| {
                if has(entries, AclPermissionType::Deny) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .is_break()
        };
        let literal_allowed = acls.literal.iter().any(|(name, entries)| {
            name != WILDCARD
                && has(entries, AclPermissionType::Allow)
                && !has(entries, AclPermissionType::Deny)
                && !denied_by_prefix(name)
        });
        literal_allowed
            || acls
                .prefixed
                .iter()
                .any(|(name, entries)| has(entries, AclPermissionType::Allow) && !denied_by_prefix(name))
    }
}
