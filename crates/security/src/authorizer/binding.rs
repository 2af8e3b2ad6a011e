//! ACL bindings (what CreateAcls creates and the metadata records carry) and binding filters
//! (what DescribeAcls and DeleteAcls select with), with Kafka's validation and matching.

use std::net::IpAddr;

use super::types::{AclOperation, AclPermissionType, PatternType, ResourceType};
use super::{CLUSTER_NAME, WILDCARD};
use crate::error::{Result, SecurityError};

/// One ACL: "`principal` is `permission`ed `operation` from `host` on the resources matching
/// (`resource_type`, `resource_name`, `pattern_type`)". Plain fields and codes, so the broker
/// can carry it in its own metadata record (Kafka's `AccessControlEntryRecord`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    /// The resource type (not `Any` or `Unknown` once validated).
    pub resource_type: ResourceType,
    /// The resource name; `*` with a literal pattern is every resource of the type.
    pub resource_name: String,
    /// `Literal` or `Prefixed` once validated.
    pub pattern_type: PatternType,
    /// `Type:name`, such as `User:alice`; `User:*` is every principal.
    pub principal: String,
    /// The client's IP address as Kafka prints it (see [`host_address`]), or `*`.
    pub host: String,
    /// The operation (not `Any` or `Unknown` once validated).
    pub operation: AclOperation,
    /// `Allow` or `Deny` once validated.
    pub permission: AclPermissionType,
}

impl AclBinding {
    /// Checks the binding as a CreateAcls request is checked (Kafka's `AclApis` then the
    /// controller's `validateNewAcl`); every refusal is INVALID_REQUEST with Kafka's message.
    /// Kafka accepts any host string and a prefixed `*` (which matches only names starting
    /// with `*`), and so does Gregor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(SecurityError::InvalidAcl { message });
        if matches!(self.resource_type, ResourceType::Unknown | ResourceType::Any) {
            return invalid(format!("Invalid resourceType {}", self.resource_type));
        }
        if !matches!(self.pattern_type, PatternType::Literal | PatternType::Prefixed) {
            return invalid(format!("Invalid patternType {}", self.pattern_type));
        }
        if matches!(self.operation, AclOperation::Unknown | AclOperation::Any) {
            return invalid(format!("Invalid operation {}", self.operation));
        }
        if !matches!(self.permission, AclPermissionType::Allow | AclPermissionType::Deny) {
            return invalid(format!("Invalid permissionType {}", self.permission));
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return invalid(format!("The only valid name for the CLUSTER resource is {CLUSTER_NAME}"));
        }
        if self.resource_name.is_empty() {
            return invalid("Invalid empty resource name".to_owned());
        }
        if !self.principal.contains(':') {
            return invalid(format!(
                "Could not parse principal from `{}` (no colon is present separating the principal type from the \
                 principal name)",
                self.principal
            ));
        }
        Ok(())
    }

    /// Kafka's `ResourcePattern.toString`:
    /// `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`, the heading
    /// kafka-acls.sh prints above a resource's ACLs.
    pub fn pattern_to_string(&self) -> String {
        format!(
            "ResourcePattern(resourceType={}, name={}, patternType={})",
            self.resource_type, self.resource_name, self.pattern_type
        )
    }

    /// Kafka's `AccessControlEntry.toString`:
    /// `(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)`.
    pub fn entry_to_string(&self) -> String {
        format!(
            "(principal={}, host={}, operation={}, permissionType={})",
            self.principal, self.host, self.operation, self.permission
        )
    }
}

/// Kafka's `AclBinding.toString`: `(pattern=ResourcePattern(...), entry=(...))`.
impl std::fmt::Display for AclBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(pattern={}, entry={})", self.pattern_to_string(), self.entry_to_string())
    }
}

/// Selects bindings for DescribeAcls and DeleteAcls (Kafka's `AclBindingFilter`): `Any`
/// and `None` match everything; strings are compared exactly (a `User:*` filter finds only
/// the ACLs for `User:*`); pattern `Match` finds every ACL that applies to the named resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclBindingFilter {
    /// `Any`, or the one type to match.
    pub resource_type: ResourceType,
    /// `None` matches every name.
    pub resource_name: Option<String>,
    /// `Any` (name compared exactly, any pattern), `Match`, `Literal` or `Prefixed`.
    pub pattern_type: PatternType,
    /// `None` matches every principal.
    pub principal: Option<String>,
    /// `None` matches every host.
    pub host: Option<String>,
    /// `Any`, or the one operation to match (no implication: `Read` does not find `All`).
    pub operation: AclOperation,
    /// `Any`, `Allow` or `Deny`.
    pub permission: AclPermissionType,
}

impl AclBindingFilter {
    /// The filter that matches every binding.
    pub const ANY: AclBindingFilter = AclBindingFilter {
        resource_type: ResourceType::Any,
        resource_name: None,
        pattern_type: PatternType::Any,
        principal: None,
        host: None,
        operation: AclOperation::Any,
        permission: AclPermissionType::Any,
    };

    /// The filter that matches exactly `binding` (kafka-acls.sh `--remove` of one ACL).
    pub fn exact(binding: &AclBinding) -> Self {
        Self {
            resource_type: binding.resource_type,
            resource_name: Some(binding.resource_name.clone()),
            pattern_type: binding.pattern_type,
            principal: Some(binding.principal.clone()),
            host: Some(binding.host.clone()),
            operation: binding.operation,
            permission: binding.permission,
        }
    }

    /// Refuses a filter with an `Unknown` field, as DeleteAcls does (INVALID_REQUEST,
    /// Kafka's messages); DescribeAcls refuses the same filters.
    pub fn validate(&self) -> Result<()> {
        let message = if self.resource_type == ResourceType::Unknown || self.pattern_type == PatternType::Unknown {
            "Unknown patternFilter."
        } else if self.operation == AclOperation::Unknown || self.permission == AclPermissionType::Unknown {
            "Unknown entryFilter."
        } else {
            return Ok(());
        };
        Err(SecurityError::InvalidAcl { message: message.to_owned() })
    }

    /// Whether the filter selects `binding` (Kafka's `AclBindingFilter.matches`).
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_ref(&BindingRef::from(binding))
    }

    pub(crate) fn matches_ref(&self, binding: &BindingRef<'_>) -> bool {
        self.matches_pattern(binding) && self.matches_entry(binding)
    }

    /// Kafka's `ResourcePatternFilter.matches`.
    fn matches_pattern(&self, binding: &BindingRef<'_>) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != binding.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != binding.pattern_type
        {
            return false;
        }
        let Some(name) = self.resource_name.as_deref() else { return true };
        if self.pattern_type != PatternType::Match {
            return name == binding.resource_name;
        }
        match binding.pattern_type {
            PatternType::Literal => name == binding.resource_name || binding.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(binding.resource_name),
            _ => false,
        }
    }

    /// Kafka's `AccessControlEntryFilter.matches`.
    fn matches_entry(&self, binding: &BindingRef<'_>) -> bool {
        self.principal.as_deref().is_none_or(|p| p == binding.principal)
            && self.host.as_deref().is_none_or(|h| h == binding.host)
            && (self.operation == AclOperation::Any || self.operation == binding.operation)
            && (self.permission == AclPermissionType::Any || self.permission == binding.permission)
    }
}

/// An [`AclBinding`] borrowed from the index, to filter without cloning.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BindingRef<'a> {
    pub(crate) resource_type: ResourceType,
    pub(crate) resource_name: &'a str,
    pub(crate) pattern_type: PatternType,
    pub(crate) principal: &'a str,
    pub(crate) host: &'a str,
    pub(crate) operation: AclOperation,
    pub(crate) permission: AclPermissionType,
}

impl<'a> From<&'a AclBinding> for BindingRef<'a> {
    fn from(b: &'a AclBinding) -> Self {
        Self {
            resource_type: b.resource_type,
            resource_name: &b.resource_name,
            pattern_type: b.pattern_type,
            principal: &b.principal,
            host: &b.host,
            operation: b.operation,
            permission: b.permission,
        }
    }
}

impl BindingRef<'_> {
    pub(crate) fn to_binding(self) -> AclBinding {
        AclBinding {
            resource_type: self.resource_type,
            resource_name: self.resource_name.to_owned(),
            pattern_type: self.pattern_type,
            principal: self.principal.to_owned(),
            host: self.host.to_owned(),
            operation: self.operation,
            permission: self.permission,
        }
    }
}

/// Parses Kafka's `super.users` value: principals separated by `;`, blanks ignored, each
/// `Type:name` (`User:admin;User:CN=broker,O=example`).
pub fn parse_super_users(value: &str) -> Result<Vec<String>> {
    let mut users = Vec::new();
    for user in value.split(';').map(str::trim).filter(|user| !user.is_empty()) {
        if !user.contains(':') {
            return Err(SecurityError::InvalidSuperUser { value: user.to_owned() });
        }
        users.push(user.to_owned());
    }
    Ok(users)
}

/// The client address as Kafka's ACLs name it (Java's `InetAddress.getHostAddress`):
/// dotted IPv4, IPv6 as eight uncompressed lowercase hex groups (`0:0:0:0:0:0:0:1`, not
/// `::1`), and an IPv4-mapped IPv6 address (a dual-stack listener) as the IPv4 address.
/// Compute it once per connection and pass it to every decision.
pub fn host_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.segments().iter().map(|s| format!("{s:x}")).collect::<Vec<_>>().join(":"),
        },
    }
}

/// Refuses an operation a resource type does not support, as kafka-acls.sh does before it
/// sends anything (ALL is always accepted). The broker itself accepts any operation.
pub fn check_operation_supported(resource_type: ResourceType, operation: AclOperation) -> Result<()> {
    let supported = resource_type.supported_operations();
    if operation == AclOperation::All || supported.contains(&operation) {
        return Ok(());
    }
    let mut names: Vec<&str> = supported.iter().map(|op| op.pascal_name()).collect();
    names.push(AclOperation::All.pascal_name());
    Err(SecurityError::InvalidAcl {
        message: format!("ResourceType {} only supports operations {}", resource_type.pascal_name(), names.join(", ")),
    })
}
