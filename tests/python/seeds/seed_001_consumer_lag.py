# Seed program, copied verbatim from shared/seeds/001_3afc4adba44c0743.txt
# (the python block under "### Мониторинг": consumer lag of a group).
# As written it cannot run with kafka-python 2.3.3, whatever the broker:
#  - `from kafka.admin import ConsumerGroupDescription` raises ImportError (kafka-python has
#    no such class; the name is confluent-kafka's);
#  - get_consumer_lag() passes the set of partition ids returned by partitions_for_topic()
#    to end_offsets(), which wants TopicPartition objects: AttributeError ('int' object has
#    no attribute 'topic'), raised in the client before any request is sent.
# seed_001_consumer_lag_fixed.py has the function as written plus the minimal fix;
# test_seeds.py checks both failures and runs the fixed copy.
# Do not edit the code below this header: the tests run it exactly as written.

# Отслеживание consumer lag
from kafka import KafkaAdminClient
from kafka.admin import ConsumerGroupDescription

admin = KafkaAdminClient(bootstrap_servers=['localhost:9092'])

def get_consumer_lag(group_id, topic):
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
