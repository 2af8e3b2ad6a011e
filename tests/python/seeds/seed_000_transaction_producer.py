# Seed program, copied verbatim from shared/seeds/000_e4480a62d2ddb402.txt
# (the python block under "## Публикация на python").
# Do not edit the code below this header: the tests run it exactly as written.

from confluent_kafka import Producer
import json
import uuid
from datetime import datetime

producer = Producer({'bootstrap.servers': 'localhost:9092'})

transaction = {
    "transactionId": str(uuid.uuid4()),
    "userId": "user-123",
    "category": "Food",
    "amount": 150.0,
    "currency": "USD",
    "timestamp": datetime.utcnow().isoformat()
}

producer.produce(
    'transactions',
    key=transaction['transactionId'],
    value=json.dumps(transaction),
    callback=lambda err, msg: print(f"Delivered: {msg.topic()} [{msg.partition()}]") if not err else print(f"Error: {err}")
)

producer.flush()
