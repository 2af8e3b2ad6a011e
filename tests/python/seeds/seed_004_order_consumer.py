# Seed program, copied verbatim from shared/seeds/004_f4827a1ad019ea3b.txt
# (the python block under "### Полный пример Consumer").
# Consumer group 'order-processors' with commit() after each record; test_seeds.py stops it
# with SIGTERM, which it handles (closes the consumer, leaving the group).
# Do not edit the code below this header: the tests run it exactly as written.

from kafka import KafkaConsumer
from kafka.errors import KafkaError
import json
import logging
import signal
import sys

logging.basicConfig(level=logging.INFO)
logger = logging.getLogger(__name__)

class OrderConsumer:
    def __init__(self, bootstrap_servers, group_id):
        self.consumer = KafkaConsumer(
            'orders',
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            auto_offset_reset='earliest',
            enable_auto_commit=False,  # Ручной commit
            value_deserializer=lambda m: json.loads(m.decode('utf-8')),
            key_deserializer=lambda k: k.decode('utf-8') if k else None
        )
        self.running = True

        # Обработка сигналов для graceful shutdown
        signal.signal(signal.SIGINT, self._signal_handler)
        signal.signal(signal.SIGTERM, self._signal_handler)

    def _signal_handler(self, signum, frame):
        logger.info("Получен сигнал остановки")
        self.running = False

    def process_order(self, order):
        """Обработка заказа"""
        logger.info(f"Обработка заказа: {order['order_id']}")
        # Бизнес-логика обработки заказа
        return True

    def run(self):
        """Основной цикл обработки"""
        logger.info("Запуск consumer...")

        try:
            while self.running:
                # Poll с таймаутом
                messages = self.consumer.poll(timeout_ms=1000)

                for topic_partition, records in messages.items():
                    for record in records:
                        logger.info(
                            f"Получено сообщение: partition={record.partition}, "
                            f"offset={record.offset}, key={record.key}"
                        )

                        # Обработка
                        if self.process_order(record.value):
                            # Commit после успешной обработки
                            self.consumer.commit()
                        else:
                            logger.error(f"Ошибка обработки заказа {record.value}")

        except Exception as e:
            logger.error(f"Ошибка в consumer: {e}")

        finally:
            self.consumer.close()
            logger.info("Consumer остановлен")


# Использование
if __name__ == "__main__":
    consumer = OrderConsumer(['localhost:9092'], 'order-processors')
    consumer.run()
