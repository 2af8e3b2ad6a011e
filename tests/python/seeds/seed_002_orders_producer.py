# Seed program, copied verbatim from shared/seeds/002_b4a2cf42c440a197.txt
# (the python block under "## Пример продюсера на Python (с использованием kafka-python)").
# Do not edit the code below this header: the tests run it exactly as written.

from kafka import KafkaProducer
import json

producer = KafkaProducer(
    bootstrap_servers='localhost:9092',
    value_serializer=lambda v: json.dumps(v).encode('utf-8')
)

producer.send('orders', {'order_id': 123, 'status': 'created'})
producer.flush()
