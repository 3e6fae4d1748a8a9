"""A message produced to the real broker is consumed back, byte for byte, with its key."""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, Producer

from tests.conftest import Topics


def test_produce_and_consume_through_the_real_broker(topics: Topics) -> None:
    topic = topics.create("roundtrip", partitions=3)
    producer = Producer({"bootstrap.servers": topics.bootstrap, "enable.idempotence": True})
    sent = {f"key-{i}".encode(): uuid.uuid4().bytes for i in range(30)}
    delivered: list[str] = []

    def on_delivery(err: object, msg: object) -> None:
        delivered.append("ok" if err is None else str(err))

    for key, value in sent.items():
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert delivered == ["ok"] * len(sent)

    consumer = Consumer({
        "bootstrap.servers": topics.bootstrap,
        "group.id": f"g-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic])
    received: dict[bytes, bytes] = {}
    try:
        for _ in range(300):
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                if len(received) == len(sent):
                    break
                continue
            received[msg.key()] = msg.value()
    finally:
        consumer.close()
    assert received == sent
