//! `/metrics` in Prometheus' text format (0.0.4), under the names the Prometheus JMX
//! exporter gives Kafka's MBeans with Strimzi's rules (and kafka-exporter's for lag), so
//! dashboards and alerts written for Kafka read Gregor unchanged. docs/metrics.md lists
//! every family.

use std::fmt::Write;

use gregor_broker::metrics::LATENCY_BUCKETS_MS;
use gregor_broker::MetricsSnapshot;
use gregor_protocol::kafka_protocol::messages::ApiKey;

/// The log dir's file system, as `statvfs` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsage {
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// Writes one metric family: `# HELP`, `# TYPE`, then its samples.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                let _ = write!(self.0, "{sep}{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A gauge or counter with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The whole exposition.
pub fn render(s: &MetricsSnapshot, disk: Option<DiskUsage>) -> String {
    let mut out = Out(String::with_capacity(16 * 1024));
    info(&mut out, s);
    topic_traffic(&mut out, s);
    requests(&mut out, s);
    replica_manager(&mut out, s);
    controller(&mut out, s);
    logs(&mut out, s, disk);
    groups(&mut out, s);
    out.0
}

fn info(out: &mut Out, s: &MetricsSnapshot) {
    out.family("gregor_info", "gauge", "This node: version, node id and cluster id (always 1).");
    let node = s.node_id.to_string();
    let labels = [("version", env!("CARGO_PKG_VERSION")), ("node_id", node.as_str()), ("cluster_id", &s.cluster_id)];
    out.sample("gregor_info", &labels, 1);
    out.single(
        "kafka_server_socket_server_metrics_connection_count",
        "gauge",
        "Open client connections.",
        s.connections,
    );
}

/// Kafka's `BrokerTopicMetrics`: per topic, and the all-topics total without a label.
fn topic_traffic(out: &mut Out, s: &MetricsSnapshot) {
    type Field = fn(&gregor_broker::metrics::TopicTraffic) -> u64;
    let families: [(&str, &str, Field); 5] = [
        ("messagesin", "Records appended as leader.", |t| t.messages_in),
        ("bytesin", "Record bytes produced to this broker as leader.", |t| t.bytes_in),
        ("bytesout", "Record bytes fetched by consumers.", |t| t.bytes_out),
        ("replicationbytesin", "Record bytes this broker copied from leaders.", |t| t.replication_bytes_in),
        ("replicationbytesout", "Record bytes followers fetched from this broker.", |t| t.replication_bytes_out),
    ];
    for (short, help, field) in families {
        let name = format!("kafka_server_brokertopicmetrics_{short}_total");
        out.family(&name, "counter", help);
        out.sample(&name, &[], s.traffic.iter().map(field).sum::<u64>());
        for t in &s.traffic {
            out.sample(&name, &[("topic", &t.topic)], field(t));
        }
    }
}

/// Kafka's `RequestMetrics`: requests and their total time per API, as a histogram.
fn requests(out: &mut Out, s: &MetricsSnapshot) {
    let name_of = |key: i16| ApiKey::try_from(key).map_or_else(|_| key.to_string(), |k| format!("{k:?}"));
    out.family("kafka_network_requestmetrics_requests_total", "counter", "Requests handled, per API.");
    for r in &s.requests {
        out.sample("kafka_network_requestmetrics_requests_total", &[("request", &name_of(r.api_key))], r.requests);
    }
    let hist = "kafka_network_requestmetrics_totaltimems";
    out.family(hist, "histogram", "Time from a request's arrival to its response, in ms, per API.");
    for r in &s.requests {
        let request = name_of(r.api_key);
        for (le, count) in LATENCY_BUCKETS_MS.iter().zip(&r.cumulative_buckets) {
            out.sample(&format!("{hist}_bucket"), &[("request", &request), ("le", &le.to_string())], count);
        }
        out.sample(&format!("{hist}_bucket"), &[("request", &request), ("le", "+Inf")], r.requests);
        out.sample(&format!("{hist}_sum"), &[("request", &request)], r.sum_ms);
        out.sample(&format!("{hist}_count"), &[("request", &request)], r.requests);
    }
}

fn replica_manager(out: &mut Out, s: &MetricsSnapshot) {
    let r = &s.replicas;
    let gauges = [
        ("partitioncount", "Replicas hosted by this broker.", r.partition_count),
        ("leadercount", "Partitions this broker leads.", r.leader_count),
        (
            "underreplicatedpartitions",
            "Partitions led here whose ISR is smaller than their replicas.",
            r.under_replicated,
        ),
        ("underminisrpartitioncount", "Partitions led here whose ISR is below min.insync.replicas.", r.under_min_isr),
        ("atminisrpartitioncount", "Partitions led here whose ISR is exactly min.insync.replicas.", r.at_min_isr),
        ("offlinereplicacount", "Replicas here that cannot be served.", r.offline_replicas),
    ];
    for (short, help, value) in gauges {
        out.single(&format!("kafka_server_replicamanager_{short}"), "gauge", help, value);
    }
}

/// Kafka's `KafkaController` gauges: their values on the active controller, 0 elsewhere,
/// so a sum over the cluster counts each once.
fn controller(out: &mut Out, s: &MetricsSnapshot) {
    let c = s.controller.unwrap_or_default();
    let gauges = [
        ("activecontrollercount", "1 on the active controller, 0 elsewhere.", u64::from(s.active_controller)),
        ("offlinepartitionscount", "Partitions without a leader.", c.offline_partitions),
        ("globalpartitioncount", "Partitions in the cluster.", c.global_partitions),
        ("globaltopiccount", "Topics in the cluster.", c.global_topics),
        ("activebrokercount", "Registered, unfenced brokers.", c.active_brokers),
        ("fencedbrokercount", "Registered, fenced brokers.", c.fenced_brokers),
    ];
    for (short, help, value) in gauges {
        out.single(&format!("kafka_controller_kafkacontroller_{short}"), "gauge", help, value);
    }
}

/// Kafka's `kafka.log:type=Log` gauges per replica, and the log dir's disk.
fn logs(out: &mut Out, s: &MetricsSnapshot, disk: Option<DiskUsage>) {
    type Field = fn(&gregor_broker::PartitionGauges) -> i64;
    let families: [(&str, &str, Field); 5] = [
        ("size", "Bytes of the replica's segments.", |p| p.size_bytes as i64),
        ("numlogsegments", "Segments of the replica.", |p| p.segments as i64),
        ("logstartoffset", "First offset still readable.", |p| p.log_start_offset),
        ("logendoffset", "Offset the next record gets.", |p| p.log_end_offset),
        ("highwatermark", "Offset up to which records are committed (replicated to the ISR).", |p| p.high_watermark),
    ];
    for (short, help, field) in families {
        let name = format!("kafka_log_log_{short}");
        out.family(&name, "gauge", help);
        for p in &s.partitions {
            let partition = p.partition.to_string();
            out.sample(&name, &[("topic", &p.topic), ("partition", &partition)], field(p));
        }
    }
    let dir = s.log_dir.display().to_string();
    let size: u64 = s.partitions.iter().map(|p| p.size_bytes).sum();
    out.family("gregor_log_dir_size_bytes", "gauge", "Bytes of all partition logs in the log dir.");
    out.sample("gregor_log_dir_size_bytes", &[("dir", &dir)], size);
    if let Some(d) = disk {
        out.family("gregor_log_dir_free_bytes", "gauge", "Bytes free for the broker on the log dir's file system.");
        out.sample("gregor_log_dir_free_bytes", &[("dir", &dir)], d.free_bytes);
        out.family("gregor_log_dir_total_bytes", "gauge", "Size of the log dir's file system.");
        out.sample("gregor_log_dir_total_bytes", &[("dir", &dir)], d.total_bytes);
    }
}

/// Consumer lag as kafka-exporter names it, and the coordinator's group counts.
fn groups(out: &mut Out, s: &MetricsSnapshot) {
    out.family("kafka_consumergroup_current_offset", "gauge", "A group's committed offset per partition.");
    for l in &s.group_lags {
        let partition = l.partition.to_string();
        let labels = [("consumergroup", l.group.as_str()), ("topic", &l.topic), ("partition", &partition)];
        out.sample("kafka_consumergroup_current_offset", &labels, l.committed_offset);
    }
    out.family("kafka_consumergroup_lag", "gauge", "High watermark minus the group's committed offset.");
    for l in &s.group_lags {
        let partition = l.partition.to_string();
        let labels = [("consumergroup", l.group.as_str()), ("topic", &l.topic), ("partition", &partition)];
        out.sample("kafka_consumergroup_lag", &labels, l.lag);
    }
    out.family("kafka_consumergroup_lag_sum", "gauge", "A group's lag summed over a topic's partitions.");
    let mut sums: std::collections::BTreeMap<(&str, &str), i64> = std::collections::BTreeMap::new();
    for l in &s.group_lags {
        *sums.entry((&l.group, &l.topic)).or_default() += l.lag;
    }
    for ((group, topic), lag) in sums {
        out.sample("kafka_consumergroup_lag_sum", &[("consumergroup", group), ("topic", topic)], lag);
    }
    let total: u64 = s.groups_by_state.values().sum();
    let prefix = "kafka_coordinator_group_groupmetadatamanager";
    out.single(&format!("{prefix}_numgroups"), "gauge", "Groups coordinated by this broker.", total);
    for (state, short) in [
        ("Stable", "numgroupsstable"),
        ("PreparingRebalance", "numgroupspreparingrebalance"),
        ("CompletingRebalance", "numgroupscompletingrebalance"),
        ("Empty", "numgroupsempty"),
        ("Dead", "numgroupsdead"),
    ] {
        let count = s.groups_by_state.get(state).copied().unwrap_or(0);
        out.single(&format!("{prefix}_{short}"), "gauge", &format!("Groups coordinated here in state {state}."), count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_broker::metrics::{RequestLatency, TopicTraffic};
    use gregor_broker::GroupLag;

    #[test]
    fn given_a_snapshot_should_render_kafkas_names_and_histograms() {
        let snapshot = MetricsSnapshot {
            node_id: 1,
            cluster_id: "c\"1".into(),
            traffic: vec![TopicTraffic {
                topic: "orders".into(),
                messages_in: 3,
                bytes_in: 300,
                bytes_out: 0,
                replication_bytes_in: 0,
                replication_bytes_out: 0,
            }],
            requests: vec![RequestLatency {
                api_key: 0,
                requests: 2,
                errors: 0,
                cumulative_buckets: vec![1; LATENCY_BUCKETS_MS.len()],
                sum_ms: 7.5,
            }],
            group_lags: vec![GroupLag {
                group: "g".into(),
                topic: "orders".into(),
                partition: 0,
                committed_offset: 1,
                end_offset: 3,
                lag: 2,
            }],
            ..MetricsSnapshot::default()
        };
        let text = render(&snapshot, Some(DiskUsage { free_bytes: 5, total_bytes: 10 }));
        for line in [
            "kafka_server_brokertopicmetrics_messagesin_total 3",
            "kafka_server_brokertopicmetrics_bytesin_total{topic=\"orders\"} 300",
            "kafka_network_requestmetrics_totaltimems_bucket{request=\"Produce\",le=\"0.5\"} 1",
            "kafka_network_requestmetrics_totaltimems_bucket{request=\"Produce\",le=\"+Inf\"} 2",
            "kafka_network_requestmetrics_totaltimems_sum{request=\"Produce\"} 7.5",
            "kafka_consumergroup_lag{consumergroup=\"g\",topic=\"orders\",partition=\"0\"} 2",
            "kafka_consumergroup_lag_sum{consumergroup=\"g\",topic=\"orders\"} 2",
            "kafka_controller_kafkacontroller_activecontrollercount 0",
            "gregor_log_dir_free_bytes{dir=\"\"} 5",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        assert!(text.contains("cluster_id=\"c\\\"1\""), "label values are escaped");
    }
}
