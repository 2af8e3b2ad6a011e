//! Kafka's ACL enums with their wire codes (int8 in CreateAcls, DescribeAcls, DeleteAcls and
//! the metadata records) and their names: the Java enum name (`TRANSACTIONAL_ID`, what
//! `toString` prints and error messages show) and the PascalCase name kafka-acls.sh prints
//! and accepts (`TransactionalId`).

use std::fmt;

/// Defines a Kafka ACL enum: variants with codes and both names, `from_code` (unknown codes
/// read as `Unknown`, as Kafka's `fromCode`), `code`, `name`, `pascal_name` and `parse`.
macro_rules! kafka_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal, $upper:literal, $pascal:literal;)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(i8)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $code,)*
        }

        impl $name {
            /// Every value, in code order.
            pub const VALUES: &'static [$name] = &[$($name::$variant),*];

            /// The value a wire code stands for; a code Gregor does not know reads as
            /// `Unknown`, as Kafka's `fromCode` does.
            pub fn from_code(code: i8) -> Self {
                match code {
                    $($code => Self::$variant,)*
                    _ => Self::Unknown,
                }
            }

            /// The wire code.
            pub fn code(self) -> i8 {
                self as i8
            }

            /// The Java enum name (`TRANSACTIONAL_ID`), as Kafka's messages print it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $upper,)*
                }
            }

            /// The name kafka-acls.sh prints (`TransactionalId`).
            pub fn pascal_name(self) -> &'static str {
                match self {
                    $(Self::$variant => $pascal,)*
                }
            }

            /// Parses either name, ignoring ASCII case (`topic`, `TransactionalId`,
            /// `transactional_id`, `DESCRIBE_CONFIGS`), as kafka-acls.sh and Kafka's
            /// `fromString` do. `None` for anything else (Kafka would say `UNKNOWN`).
            pub fn parse(text: &str) -> Option<Self> {
                Self::VALUES
                    .iter()
                    .copied()
                    .find(|v| text.eq_ignore_ascii_case(v.name()) || text.eq_ignore_ascii_case(v.pascal_name()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kafka_enum! {
    /// The kind of resource an ACL protects (`org.apache.kafka.common.resource.ResourceType`).
    ResourceType {
        /// A code this version does not know.
        Unknown = 0, "UNKNOWN", "Unknown";
        /// Any type, in filters only.
        Any = 1, "ANY", "Any";
        /// A topic.
        Topic = 2, "TOPIC", "Topic";
        /// A consumer group.
        Group = 3, "GROUP", "Group";
        /// The cluster; its one resource is named [`super::CLUSTER_NAME`].
        Cluster = 4, "CLUSTER", "Cluster";
        /// A transactional id.
        TransactionalId = 5, "TRANSACTIONAL_ID", "TransactionalId";
        /// A delegation token.
        DelegationToken = 6, "DELEGATION_TOKEN", "DelegationToken";
        /// A user (for delegation tokens created on behalf of others).
        User = 7, "USER", "User";
    }
}

kafka_enum! {
    /// How an ACL's resource name is matched (`org.apache.kafka.common.resource.PatternType`).
    PatternType {
        /// A code this version does not know.
        Unknown = 0, "UNKNOWN", "Unknown";
        /// In filters: any pattern type, the name compared exactly.
        Any = 1, "ANY", "Any";
        /// In filters: every pattern that matches the filter's name (literal equal, the
        /// literal wildcard `*`, prefixes).
        Match = 2, "MATCH", "Match";
        /// The name itself, or every resource when the name is `*`.
        Literal = 3, "LITERAL", "Literal";
        /// Every resource whose name starts with the name.
        Prefixed = 4, "PREFIXED", "Prefixed";
    }
}

kafka_enum! {
    /// What an ACL allows or denies (`org.apache.kafka.common.acl.AclOperation`).
    AclOperation {
        /// A code this version does not know.
        Unknown = 0, "UNKNOWN", "Unknown";
        /// Any operation, in filters only.
        Any = 1, "ANY", "Any";
        /// Every operation.
        All = 2, "ALL", "All";
        /// READ.
        Read = 3, "READ", "Read";
        /// WRITE.
        Write = 4, "WRITE", "Write";
        /// CREATE.
        Create = 5, "CREATE", "Create";
        /// DELETE.
        Delete = 6, "DELETE", "Delete";
        /// ALTER.
        Alter = 7, "ALTER", "Alter";
        /// DESCRIBE; an ALLOW of READ, WRITE, DELETE or ALTER implies it.
        Describe = 8, "DESCRIBE", "Describe";
        /// CLUSTER_ACTION (inter-broker requests).
        ClusterAction = 9, "CLUSTER_ACTION", "ClusterAction";
        /// DESCRIBE_CONFIGS; an ALLOW of ALTER_CONFIGS implies it.
        DescribeConfigs = 10, "DESCRIBE_CONFIGS", "DescribeConfigs";
        /// ALTER_CONFIGS.
        AlterConfigs = 11, "ALTER_CONFIGS", "AlterConfigs";
        /// IDEMPOTENT_WRITE (cluster).
        IdempotentWrite = 12, "IDEMPOTENT_WRITE", "IdempotentWrite";
        /// CREATE_TOKENS (user).
        CreateTokens = 13, "CREATE_TOKENS", "CreateTokens";
        /// DESCRIBE_TOKENS (user).
        DescribeTokens = 14, "DESCRIBE_TOKENS", "DescribeTokens";
    }
}

kafka_enum! {
    /// Whether an ACL allows or denies (`org.apache.kafka.common.acl.AclPermissionType`).
    AclPermissionType {
        /// A code this version does not know.
        Unknown = 0, "UNKNOWN", "Unknown";
        /// Either, in filters only.
        Any = 1, "ANY", "Any";
        /// DENY: wins over every ALLOW.
        Deny = 2, "DENY", "Deny";
        /// ALLOW.
        Allow = 3, "ALLOW", "Allow";
    }
}

impl ResourceType {
    /// The operations a resource of this type supports, as Kafka's
    /// `AclEntry.supportedOperations` lists them: the ones `authorized_operations` reports
    /// and kafka-acls.sh accepts (with ALL). Empty for `Unknown` and `Any`.
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            Self::Topic => &[Read, Write, Create, Delete, Alter, Describe, DescribeConfigs, AlterConfigs],
            Self::Group => &[Read, Describe, Delete],
            Self::Cluster => &[Create, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, Alter, Describe],
            Self::TransactionalId => &[Describe, Write],
            Self::DelegationToken => &[Describe],
            Self::User => &[CreateTokens, DescribeTokens],
            Self::Unknown | Self::Any => &[],
        }
    }
}

impl AclOperation {
    /// This operation's bit in Kafka's authorized-operations bit field (`1 << code`).
    pub fn bit(self) -> u32 {
        1 << self.code()
    }

    /// The operations an ALLOW of this one grants: itself, DESCRIBE for READ, WRITE, DELETE
    /// and ALTER, DESCRIBE_CONFIGS for ALTER_CONFIGS, everything for ALL. A DENY implies
    /// nothing but itself (and ALL denies everything): see [`Self::deny_mask`].
    pub fn allow_mask(self) -> u32 {
        match self {
            Self::All => u32::MAX,
            Self::Read | Self::Write | Self::Delete | Self::Alter => self.bit() | Self::Describe.bit(),
            Self::AlterConfigs => self.bit() | Self::DescribeConfigs.bit(),
            _ => self.bit(),
        }
    }

    /// The operations a DENY of this one denies: itself, or everything for ALL.
    pub fn deny_mask(self) -> u32 {
        match self {
            Self::All => u32::MAX,
            _ => self.bit(),
        }
    }
}
