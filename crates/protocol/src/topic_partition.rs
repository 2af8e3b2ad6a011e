use std::fmt;
use std::sync::Arc;

/// One partition of one topic, Kafka's `TopicPartition`. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        Self { topic: topic.into(), partition }
    }

    /// The partition's directory name in a log dir, `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a directory name written by [`TopicPartition::dir_name`]. Topic names may
    /// contain `-`, so the partition is what follows the last one.
    pub fn from_dir_name(name: &str) -> Option<Self> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self::new(topic, partition.parse().ok()?))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::TopicPartition;

    #[test]
    fn given_dashed_topic_dir_should_split_at_last_dash() {
        let tp = TopicPartition::from_dir_name("orders.created-v2-11").unwrap();
        assert_eq!(&*tp.topic, "orders.created-v2");
        assert_eq!(tp.partition, 11);
        assert_eq!(tp.dir_name(), "orders.created-v2-11");
        assert!(TopicPartition::from_dir_name("noparts").is_none());
        assert!(TopicPartition::from_dir_name("t-1.abc-delete").is_none());
    }
}
