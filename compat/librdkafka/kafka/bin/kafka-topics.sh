#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-topics.sh, for librdkafka tests that create, grow
# or delete topics through the Kafka distribution (test_kafka_topics() in tests/test.c:
# KAFKA_PATH/bin/kafka-topics.sh --bootstrap-server B --create|--alter|--delete ...).
# Translates the subset those tests use into `gregor topics`; GREGOR_BIN is the binary.
set -euo pipefail
bin="${GREGOR_BIN:?GREGOR_BIN must name the gregor binary}"
action="" topic="" bootstrap="" partitions="" rf=""
configs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bootstrap-server) bootstrap="$2"; shift ;;
    --create|--alter|--delete|--describe|--list) action="${1#--}" ;;
    --topic) topic="$2"; shift ;;
    --partitions) partitions="$2"; shift ;;
    --replication-factor) rf="$2"; shift ;;
    --config) configs+=(--config "$2"); shift ;;
    --if-not-exists|--if-exists) ;;
    *) echo "kafka-topics.sh (gregor shim): unsupported argument $1" >&2; exit 2 ;;
  esac
  shift
done
common=(--bootstrap-server "${bootstrap:?--bootstrap-server is required}")
case "$action" in
  create)
    args=(topics create "$topic" "${common[@]}")
    [ -n "$partitions" ] && args+=(--partitions "$partitions")
    [ -n "$rf" ] && args+=(--replication-factor "$rf")
    exec "$bin" "${args[@]}" "${configs[@]}" ;;
  alter) exec "$bin" topics alter "$topic" --partitions "${partitions:?}" "${common[@]}" ;;
  delete) exec "$bin" topics delete "$topic" "${common[@]}" ;;
  describe) exec "$bin" topics describe "$topic" "${common[@]}" ;;
  list) exec "$bin" topics list "${common[@]}" ;;
  *) echo "kafka-topics.sh (gregor shim): no action given" >&2; exit 2 ;;
esac
