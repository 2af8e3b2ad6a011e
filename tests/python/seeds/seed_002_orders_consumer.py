# Seed program, copied verbatim from shared/seeds/002_b4a2cf42c440a197.txt
# (the python block under "## Пример консюмера").
# Consumer group 'analytics-group', looping forever: test_seeds.py runs it as a subprocess
# and stops it with SIGTERM once it processed its input.
# Do not edit the code below this header: the tests run it exactly as written.

from kafka import KafkaConsumer
import json

consumer = KafkaConsumer(
    'orders',
    bootstrap_servers='localhost:9092',
    auto_offset_reset='earliest',
    group_id='analytics-group',
    value_deserializer=lambda m: json.loads(m.decode('utf-8'))
)

for message in consumer:
    print(f"Получено сообщение: {message.value}")
