# The consumer-lag function of shared/seeds/001_3afc4adba44c0743.txt ("### Мониторинг"),
# see seed_001_consumer_lag.py for the block exactly as written and why it cannot run with
# kafka-python 2.3.3. Here:
#  - get_consumer_lag_as_written: the seed's function, verbatim (its module-level `admin`
#    below is the seed's too); the unused, non-existent ConsumerGroupDescription import
#    is left out;
#  - get_consumer_lag: the same function with the one change it needs, end_offsets() given
#    TopicPartition objects instead of partition ids (marked "FIX").
from kafka import KafkaAdminClient

admin = KafkaAdminClient(bootstrap_servers=['localhost:9092'])

def get_consumer_lag_as_written(group_id, topic):
    # Получаем текущие offsets группы
    group_offsets = admin.list_consumer_group_offsets(group_id)

    # Получаем конечные offsets топика
    from kafka import KafkaConsumer
    consumer = KafkaConsumer(bootstrap_servers=['localhost:9092'])
    end_offsets = consumer.end_offsets(consumer.partitions_for_topic(topic))

    total_lag = 0
    for tp, offset in group_offsets.items():
        if tp.topic == topic:
            total_lag += end_offsets[tp] - offset.offset

    return total_lag


def get_consumer_lag(group_id, topic):
    # Получаем текущие offsets группы
    group_offsets = admin.list_consumer_group_offsets(group_id)

    # Получаем конечные offsets топика
    from kafka import KafkaConsumer, TopicPartition  # FIX: TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=['localhost:9092'])
    end_offsets = consumer.end_offsets([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])  # FIX

    total_lag = 0
    for tp, offset in group_offsets.items():
        if tp.topic == topic:
            total_lag += end_offsets[tp] - offset.offset

    return total_lag
