# Seed program, copied verbatim from shared/seeds/004_f4827a1ad019ea3b.txt
# (the python block under "### 4. Consumers (Потребители)").
# Consumer group 'order-processor', looping forever: test_seeds.py runs it as a subprocess
# and stops it with SIGTERM once it processed its input.
# Do not edit the code below this header: the tests run it exactly as written.

from kafka import KafkaConsumer
import json

consumer = KafkaConsumer(
    'orders',
    bootstrap_servers=['localhost:9092'],
    group_id='order-processor',
    auto_offset_reset='earliest',
    value_deserializer=lambda m: json.loads(m.decode('utf-8'))
)

for message in consumer:
    print(f"Partition: {message.partition}")
    print(f"Offset: {message.offset}")
    print(f"Key: {message.key}")
    print(f"Value: {message.value}")
