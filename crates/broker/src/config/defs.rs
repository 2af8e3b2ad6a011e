//! The table of configuration keys Gregor understands, with Kafka's names, types and
//! defaults. DescribeConfigs, validation and `--set` all read this one table.

/// Kafka's `ConfigDef.Type`, as DescribeConfigs v3+ reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl ConfigType {
    /// The `config_type` code of DescribeConfigs (Kafka's `ConfigType` enum in the response).
    pub fn code(self) -> i8 {
        match self {
            Self::Boolean => 1,
            Self::String => 2,
            Self::Int => 3,
            Self::Short => 4,
            Self::Long => 5,
            Self::Double => 6,
            Self::List => 7,
            Self::Class => 8,
            Self::Password => 9,
        }
    }
}

/// One broker-level key.
#[derive(Debug, Clone, Copy)]
pub struct BrokerConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    /// `None` for keys with no default (Kafka's `null`).
    pub default: Option<&'static str>,
    /// The smallest value numeric keys accept.
    pub min: Option<i64>,
}

/// One topic-level key and the broker key whose value is its default.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    pub broker_synonym: Option<&'static str>,
    /// Used when there is no broker synonym.
    pub default: Option<&'static str>,
    pub min: Option<i64>,
}

const LONG_MAX: &str = "9223372036854775807";

macro_rules! broker {
    ($name:literal, $kind:ident, $default:expr) => {
        BrokerConfigDef { name: $name, kind: ConfigType::$kind, default: $default, min: None }
    };
    ($name:literal, $kind:ident, $default:expr, min $min:expr) => {
        BrokerConfigDef { name: $name, kind: ConfigType::$kind, default: $default, min: Some($min) }
    };
}

macro_rules! topic {
    ($name:literal, $kind:ident, synonym $syn:literal) => {
        TopicConfigDef { name: $name, kind: ConfigType::$kind, broker_synonym: Some($syn), default: None, min: None }
    };
    ($name:literal, $kind:ident, synonym $syn:literal, min $min:expr) => {
        TopicConfigDef {
            name: $name,
            kind: ConfigType::$kind,
            broker_synonym: Some($syn),
            default: None,
            min: Some($min),
        }
    };
    ($name:literal, $kind:ident, default $default:expr) => {
        TopicConfigDef { name: $name, kind: ConfigType::$kind, broker_synonym: None, default: $default, min: None }
    };
}

/// Broker keys, as in Kafka's `KafkaConfig` (defaults of Kafka 4.1).
pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    broker!("node.id", Int, Some("0"), min 0),
    broker!("cluster.id", String, None),
    broker!("broker.id", Int, None),
    broker!("listeners", List, Some("PLAINTEXT://127.0.0.1:9092")),
    broker!("advertised.listeners", List, None),
    broker!("listener.security.protocol.map", String, Some(super::fail_closed::DEFAULT_PROTOCOL_MAP)),
    broker!("controller.listener.names", List, None),
    broker!("inter.broker.listener.name", String, None),
    broker!("security.inter.broker.protocol", String, Some("PLAINTEXT")),
    // SASL (docs/security.md): mechanisms per listener, PLAIN users from JAAS or a file.
    broker!("sasl.enabled.mechanisms", List, Some("GSSAPI")),
    broker!("sasl.mechanism.inter.broker.protocol", String, Some("GSSAPI")),
    broker!("sasl.jaas.config", Password, None),
    broker!("sasl.plain.users.file", String, None),
    broker!("sasl.server.max.receive.size", Int, Some("524288"), min 1),
    broker!("connections.max.reauth.ms", Long, Some("0"), min 0),
    // ACLs (docs/security.md): Kafka's StandardAuthorizer semantics.
    broker!("authorizer.class.name", String, Some("")),
    broker!("super.users", String, None),
    broker!("allow.everyone.if.no.acl.found", Boolean, Some("false")),
    // TLS of SSL and SASL_SSL listeners (PEM only; docs/security.md).
    broker!("ssl.keystore.type", String, Some("PEM")),
    broker!("ssl.keystore.location", String, None),
    broker!("ssl.keystore.certificate.chain", Password, None),
    broker!("ssl.keystore.key", Password, None),
    broker!("ssl.keystore.password", Password, None),
    broker!("ssl.key.password", Password, None),
    broker!("ssl.truststore.type", String, Some("PEM")),
    broker!("ssl.truststore.location", String, None),
    broker!("ssl.truststore.certificates", Password, None),
    broker!("ssl.truststore.password", Password, None),
    broker!("ssl.client.auth", String, Some("none")),
    broker!("ssl.enabled.protocols", List, Some("TLSv1.2,TLSv1.3")),
    broker!("ssl.protocol", String, Some("TLSv1.3")),
    broker!("ssl.cipher.suites", List, None),
    broker!("ssl.principal.mapping.rules", String, Some("DEFAULT")),
    broker!("ssl.endpoint.identification.algorithm", String, Some("https")),
    broker!("connection.failed.authentication.delay.ms", Int, Some("100"), min 0),
    broker!("log.dirs", String, None),
    broker!("log.dir", String, Some("./gregor-data")),
    broker!("num.partitions", Int, Some("1"), min 1),
    broker!("default.replication.factor", Int, Some("1"), min 1),
    broker!("auto.create.topics.enable", Boolean, Some("true")),
    broker!("delete.topic.enable", Boolean, Some("true")),
    broker!("message.max.bytes", Int, Some("1048588"), min 0),
    broker!("socket.request.max.bytes", Int, Some("104857600"), min 1),
    broker!("fetch.max.bytes", Int, Some("57671680"), min 1024),
    broker!("max.connections", Int, Some("2147483647"), min 0),
    broker!("max.connections.per.ip", Int, Some("2147483647"), min 0),
    broker!("connections.max.idle.ms", Long, Some("600000")),
    broker!("log.segment.bytes", Int, Some("1073741824"), min 14),
    broker!("log.roll.ms", Long, None),
    broker!("log.roll.hours", Int, Some("168"), min 1),
    broker!("log.roll.jitter.ms", Long, None),
    broker!("log.retention.ms", Long, None),
    broker!("log.retention.minutes", Int, None),
    broker!("log.retention.hours", Int, Some("168")),
    broker!("log.retention.bytes", Long, Some("-1")),
    broker!("log.retention.check.interval.ms", Long, Some("300000"), min 1),
    broker!("log.index.interval.bytes", Int, Some("4096"), min 0),
    broker!("log.index.size.max.bytes", Int, Some("10485760"), min 4),
    broker!("log.flush.interval.messages", Long, Some(LONG_MAX), min 1),
    broker!("log.flush.interval.ms", Long, None),
    broker!("log.flush.scheduler.interval.ms", Long, Some(LONG_MAX)),
    broker!("log.flush.offset.checkpoint.interval.ms", Int, Some("60000"), min 0),
    broker!("log.segment.delete.delay.ms", Long, Some("60000"), min 0),
    broker!("log.message.timestamp.type", String, Some("CreateTime")),
    broker!("log.message.timestamp.before.max.ms", Long, Some(LONG_MAX), min 0),
    broker!("log.message.timestamp.after.max.ms", Long, Some(LONG_MAX), min 0),
    broker!("log.cleanup.policy", List, Some("delete")),
    broker!("log.cleaner.enable", Boolean, Some("true")),
    broker!("log.cleaner.backoff.ms", Long, Some("15000"), min 0),
    broker!("log.cleaner.delete.retention.ms", Long, Some("86400000"), min 0),
    broker!("log.cleaner.min.compaction.lag.ms", Long, Some("0"), min 0),
    broker!("log.cleaner.max.compaction.lag.ms", Long, Some(LONG_MAX), min 1),
    broker!("log.cleaner.min.cleanable.ratio", Double, Some("0.5")),
    broker!("log.preallocate", Boolean, Some("false")),
    broker!("min.insync.replicas", Int, Some("1"), min 1),
    broker!("compression.type", String, Some("producer")),
    broker!("unclean.leader.election.enable", Boolean, Some("false")),
    broker!("replica.lag.time.max.ms", Long, Some("30000"), min 1),
    broker!("replica.fetch.wait.max.ms", Int, Some("500"), min 0),
    broker!("replica.fetch.min.bytes", Int, Some("1"), min 1),
    broker!("replica.fetch.max.bytes", Int, Some("1048576"), min 0),
    broker!("replica.fetch.response.max.bytes", Int, Some("10485760"), min 0),
    broker!("replica.fetch.backoff.ms", Int, Some("1000"), min 0),
    broker!("replica.socket.timeout.ms", Int, Some("30000"), min 1),
    broker!("num.replica.fetchers", Int, Some("1"), min 1),
    broker!("replica.high.watermark.checkpoint.interval.ms", Long, Some("5000"), min 1),
    broker!("leader.replication.throttled.rate", Long, Some(LONG_MAX), min 0),
    broker!("follower.replication.throttled.rate", Long, Some(LONG_MAX), min 0),
    broker!("replication.quota.window.num", Int, Some("11"), min 1),
    broker!("replication.quota.window.size.seconds", Int, Some("1"), min 1),
    broker!("replica.selector.class", Class, None),
    broker!("auto.leader.rebalance.enable", Boolean, Some("true")),
    broker!("leader.imbalance.check.interval.seconds", Long, Some("300"), min 1),
    broker!("leader.imbalance.per.broker.percentage", Int, Some("10"), min 0),
    broker!("offsets.topic.num.partitions", Int, Some("50"), min 1),
    broker!("offsets.retention.minutes", Int, Some("10080"), min 1),
    broker!("offsets.retention.check.interval.ms", Long, Some("600000"), min 1),
    broker!("group.min.session.timeout.ms", Int, Some("6000")),
    broker!("group.max.session.timeout.ms", Int, Some("1800000")),
    broker!("group.initial.rebalance.delay.ms", Int, Some("3000"), min 0),
    broker!("group.max.size", Int, Some("2147483647"), min 1),
    broker!("group.consumer.session.timeout.ms", Int, Some("45000"), min 1),
    broker!("group.consumer.heartbeat.interval.ms", Int, Some("5000"), min 1),
    broker!("group.consumer.max.size", Int, Some("2147483647"), min 1),
    broker!("group.consumer.assignors", List, Some("uniform,range")),
    broker!("offsets.topic.replication.factor", Short, Some("3"), min 1),
    broker!("transaction.state.log.num.partitions", Int, Some("50"), min 1),
    broker!("transaction.state.log.replication.factor", Short, Some("3"), min 1),
    broker!("transaction.state.log.min.isr", Int, Some("2"), min 1),
    broker!("transaction.state.log.segment.bytes", Int, Some("104857600"), min 1),
    broker!("transaction.max.timeout.ms", Int, Some("900000"), min 1),
    broker!("transactional.id.expiration.ms", Int, Some("604800000"), min 1),
    broker!("transaction.abort.timed.out.transaction.cleanup.interval.ms", Int, Some("10000"), min 1),
    broker!("transaction.remove.expired.transaction.cleanup.interval.ms", Int, Some("3600000"), min 1),
    broker!("producer.id.expiration.ms", Int, Some("86400000"), min 1),
    broker!("producer.id.expiration.check.interval.ms", Int, Some("600000"), min 1),
    broker!("num.network.threads", Int, Some("3"), min 1),
    broker!("num.io.threads", Int, Some("8"), min 1),
    broker!("process.roles", List, Some("broker,controller")),
    broker!("controller.quorum.voters", List, None),
    broker!("controller.quorum.bootstrap.servers", List, None),
    broker!("broker.heartbeat.interval.ms", Int, Some("2000"), min 1),
    broker!("broker.session.timeout.ms", Int, Some("9000"), min 1),
    broker!("broker.rack", String, None),
    // Gregor's HTTP listener (console, admin API, /metrics): HOST:PORT, or `none`.
    broker!("http.listeners", String, Some("localhost:8089")),
    // Users of the admin API and console, `name:password:role,...`: never reported.
    broker!("console.users", String, Some("")),
    // Idle time after which a console login session ends.
    broker!("console.session.timeout.ms", Long, Some("3600000"), min 1000),
    // When true, /metrics and /api/v1/health need a login like the rest of the API.
    broker!("http.metrics.login.required", Boolean, Some("false")),
    broker!("controller.quorum.election.timeout.ms", Int, Some("1000"), min 10),
    broker!("controlled.shutdown.enable", Boolean, Some("true")),
    broker!("max.incremental.fetch.session.cache.slots", Int, Some("1000"), min 0),
    broker!("min.incremental.fetch.session.eviction.ms", Int, Some("120000"), min 0),
];

/// Topic keys, as in Kafka's `TopicConfig`, each defaulting to its broker synonym.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    topic!("cleanup.policy", List, synonym "log.cleanup.policy"),
    topic!("compression.type", String, synonym "compression.type"),
    topic!("delete.retention.ms", Long, synonym "log.cleaner.delete.retention.ms", min 0),
    topic!("file.delete.delay.ms", Long, synonym "log.segment.delete.delay.ms", min 0),
    topic!("flush.messages", Long, synonym "log.flush.interval.messages", min 1),
    topic!("flush.ms", Long, synonym "log.flush.interval.ms", min 0),
    topic!("index.interval.bytes", Int, synonym "log.index.interval.bytes", min 0),
    topic!("max.compaction.lag.ms", Long, synonym "log.cleaner.max.compaction.lag.ms", min 1),
    topic!("max.message.bytes", Int, synonym "message.max.bytes", min 0),
    topic!("message.timestamp.type", String, synonym "log.message.timestamp.type"),
    topic!("message.timestamp.before.max.ms", Long, synonym "log.message.timestamp.before.max.ms", min 0),
    topic!("message.timestamp.after.max.ms", Long, synonym "log.message.timestamp.after.max.ms", min 0),
    topic!("min.cleanable.dirty.ratio", Double, synonym "log.cleaner.min.cleanable.ratio"),
    topic!("min.compaction.lag.ms", Long, synonym "log.cleaner.min.compaction.lag.ms", min 0),
    topic!("min.insync.replicas", Int, synonym "min.insync.replicas", min 1),
    topic!("preallocate", Boolean, synonym "log.preallocate"),
    topic!("retention.bytes", Long, synonym "log.retention.bytes"),
    topic!("retention.ms", Long, synonym "log.retention.ms", min -1),
    topic!("segment.bytes", Int, synonym "log.segment.bytes", min 14),
    topic!("segment.index.bytes", Int, synonym "log.index.size.max.bytes", min 4),
    topic!("segment.jitter.ms", Long, synonym "log.roll.jitter.ms", min 0),
    topic!("segment.ms", Long, synonym "log.roll.ms", min 1),
    topic!("unclean.leader.election.enable", Boolean, synonym "unclean.leader.election.enable"),
    topic!("leader.replication.throttled.replicas", List, default Some("")),
    topic!("follower.replication.throttled.replicas", List, default Some("")),
    topic!("local.retention.ms", Long, default Some("-2")),
    topic!("local.retention.bytes", Long, default Some("-2")),
    topic!("remote.storage.enable", Boolean, default Some("false")),
];

pub fn broker_def(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == name)
}

pub fn topic_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}
