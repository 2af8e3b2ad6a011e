# Seed program, copied verbatim from shared/seeds/004_f4827a1ad019ea3b.txt
# (the python block under "### Просмотр метаданных кластера").
# Do not edit the code below this header: the tests run it exactly as written.

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

admin = KafkaAdminClient(bootstrap_servers=['localhost:9092'])

# Информация о кластере
cluster_metadata = admin.describe_cluster()
print(f"Cluster ID: {cluster_metadata['cluster_id']}")
print(f"Controller: {cluster_metadata['controller_id']}")

print("\nБрокеры:")
for broker in cluster_metadata['brokers']:
    print(f"  - {broker['host']}:{broker['port']} (ID: {broker['node_id']})")

# Список топиков
topics = admin.list_topics()
print(f"\nТопики: {topics}")

# Создание нового топика
new_topic = NewTopic(
    name='new-orders',
    num_partitions=3,
    replication_factor=1
)
admin.create_topics([new_topic])

admin.close()
