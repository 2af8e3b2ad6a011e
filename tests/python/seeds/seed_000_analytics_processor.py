# Seed program, copied verbatim from shared/seeds/000_e4480a62d2ddb402.txt
# (the python block under "## Обработка").
# Consumer group 'analytics-group' with subscribe(), looping forever: test_seeds.py runs it
# as a subprocess and stops it with SIGINT once it processed its input.
# Do not edit the code below this header: the tests run it exactly as written.

from confluent_kafka import Consumer, Producer
import json
from datetime import datetime
consumer = Consumer({
    'bootstrap.servers': 'localhost:9092',
    'group.id': 'analytics-group',
    'auto.offset.reset': 'earliest'
})
producer = Producer({'bootstrap.servers': 'localhost:9092'})
consumer.subscribe(['transactions'])
while True:
    msg = consumer.poll(1.0)
    if msg is None:
        continue
    if msg.error():
        print(f"Error: {msg.error()}")
        continue
    transaction = json.loads(msg.value().decode('utf-8'))
    print(f"Processing transaction: {transaction}")
    # Пример обработки данных
    report = {
        "userId": transaction["userId"],
        "category": transaction["category"],
        "totalAmount": transaction["amount"],  # Пример агрегации
        "currency": transaction["currency"],
        "reportTimestamp": datetime.utcnow().isoformat()
    }
    producer.produce(
        'analytics_reports',
        key=report["userId"],
        value=json.dumps(report),
        callback=lambda err, msg: print(f"Delivered: {msg.topic()} [{msg.partition()}]") if not err else print(f"Error: {err}")
    )
    producer.flush()
consumer.close()
