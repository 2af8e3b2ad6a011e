# Seed program, copied verbatim from shared/seeds/004_f4827a1ad019ea3b.txt
# (the python block under "### Полный пример Producer").
# Do not edit the code below this header: the tests run it exactly as written.

from kafka import KafkaProducer
from kafka.errors import KafkaError
import json
import logging

logging.basicConfig(level=logging.INFO)
logger = logging.getLogger(__name__)

class OrderProducer:
    def __init__(self, bootstrap_servers):
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            key_serializer=lambda k: k.encode('utf-8') if k else None,
            value_serializer=lambda v: json.dumps(v).encode('utf-8'),
            acks='all',  # Ждать подтверждения от всех реплик
            retries=3,
            max_in_flight_requests_per_connection=1
        )

    def send_order(self, user_id, order_data):
        """Отправка заказа в Kafka"""
        try:
            future = self.producer.send(
                'orders',
                key=user_id,
                value=order_data
            )

            # Синхронное ожидание результата
            record_metadata = future.get(timeout=10)

            logger.info(
                f"Заказ отправлен: topic={record_metadata.topic}, "
                f"partition={record_metadata.partition}, "
                f"offset={record_metadata.offset}"
            )
            return True

        except KafkaError as e:
            logger.error(f"Ошибка отправки заказа: {e}")
            return False

    def send_order_async(self, user_id, order_data, callback):
        """Асинхронная отправка с callback"""
        self.producer.send(
            'orders',
            key=user_id,
            value=order_data
        ).add_callback(callback).add_errback(lambda e: logger.error(f"Error: {e}"))

    def close(self):
        self.producer.flush()
        self.producer.close()


# Использование
if __name__ == "__main__":
    producer = OrderProducer(['localhost:9092'])

    order = {
        'order_id': '12345',
        'user_id': 'user_001',
        'items': [
            {'product': 'laptop', 'quantity': 1, 'price': 999.99}
        ],
        'total': 999.99
    }

    producer.send_order('user_001', order)
    producer.close()
