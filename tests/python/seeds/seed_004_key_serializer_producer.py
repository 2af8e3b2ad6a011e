# Seed program, copied verbatim from shared/seeds/004_f4827a1ad019ea3b.txt
# (the python block under "### 3. Producers (Производители)").
# Do not edit the code below this header: the tests run it exactly as written.

from kafka import KafkaProducer
import json

producer = KafkaProducer(
    bootstrap_servers=['localhost:9092'],
    key_serializer=lambda k: k.encode('utf-8') if k else None,
    value_serializer=lambda v: json.dumps(v).encode('utf-8')
)

# Отправка без ключа (round-robin по партициям)
producer.send('orders', value={'order_id': 1, 'amount': 100})

# Отправка с ключом (все заказы одного пользователя в одну партицию)
producer.send('orders', key='user_123', value={'order_id': 2, 'amount': 200})

producer.flush()
producer.close()
