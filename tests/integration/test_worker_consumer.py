"""The worker's consumer on losing its Redis broker (tracker/worker.py), against a real redis-server that is stopped.

The state is the one a worker is in when Redis goes away mid-delivery: a message unacknowledged on the task channel
with a BRPOP in flight, and a second channel (the worker's control channel) also holding one. Celery 5.7.0's own
consumer then dies on closing the lost connection, and again on acknowledging a task that was running then; a
worker running Cobalt's carries on and reconnects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest.mock import Mock

import pytest
from celery.worker.consumer import Consumer as CeleryConsumer
from django.conf import settings
from kombu import Connection, Exchange, Queue

from tracker.celery import app
from tracker.worker import Consumer

pytestmark = [
    pytest.mark.integration,
    # Celery's notice, on every connection loss, that Celery 6 will cancel acks_late tasks then.
    pytest.mark.filterwarnings("ignore::celery.exceptions.CPendingDeprecationWarning"),
]


@dataclass
class Lost:
    connection: Connection
    received: list[Any]  # a message on each channel, unacknowledged


@pytest.fixture
def lost(throwaway_redis: Any) -> Iterator[Lost]:
    connection = Connection(throwaway_redis.url)
    received: list[Any] = []
    channels = [connection.default_channel, connection.channel()]
    for name, channel in zip(("tasks", "control"), channels, strict=True):
        queue = Queue(name, Exchange(name), name)
        with connection.Producer() as producer:
            producer.publish({"n": 1}, exchange=queue.exchange, routing_key=name, declare=[queue])
        consumer = connection.Consumer(queue, channel=channel, callbacks=[lambda _body, msg: received.append(msg)])
        consumer.qos(prefetch_count=1)
        consumer.consume()
        connection.drain_events(timeout=5)
    assert len(received) == 2, "each channel holds an unacknowledged message"
    channels[0]._brpop_start()  # the event loop keeps a BRPOP in flight on the task channel
    throwaway_redis.stop()
    yield Lost(connection, received)


class Hub:
    """The worker's event loop as far as acknowledgements go: it runs what it is handed, and what that raises
    reaches the loop (and stops the worker)."""

    def call_soon(self, callback: Any) -> Any:
        callback()
        return callback


def consumer_on(cls: type[CeleryConsumer], connection: Connection) -> CeleryConsumer:
    pool = Mock(num_processes=4)
    consumer = cls(on_task_request=Mock(), app=app, pool=pool, timer=Mock(), controller=Mock(), hub=Hub())
    consumer.connection = connection
    consumer.connection_errors = connection.connection_errors  # a worker on Redis (the tests' app may have no broker)
    return consumer


def lose(consumer: CeleryConsumer) -> None:
    consumer.on_connection_error_after_connected(ConnectionError("Connection closed by server."))


def acknowledge(consumer: CeleryConsumer, message: Any) -> None:
    """As the worker acknowledges an acks_late task that has ended (celery.worker.consumer's task handler)."""
    consumer.call_soon_ack(message.ack_log_error, logging.getLogger("test"), consumer.connection_errors)


def test_losing_the_broker_leaves_the_worker_running_to_reconnect(lost: Lost) -> None:
    consumer = consumer_on(Consumer, lost.connection)
    lose(consumer)
    assert consumer.connection is None  # let go of, for the blueprint's restart to connect afresh
    for message in lost.received:  # tasks that were running end after the loss
        acknowledge(consumer, message)


def test_celerys_own_consumer_dies_there(lost: Lost) -> None:
    """What tracker/worker.py is for: the day this fails, Celery has fixed it and the subclass can go."""
    consumer = consumer_on(CeleryConsumer, lost.connection)
    with pytest.raises(AttributeError, match="hostname"):
        lose(consumer)


def test_celerys_own_consumer_dies_acknowledging_a_task_of_the_lost_connection(lost: Lost) -> None:
    consumer = consumer_on(Consumer, lost.connection)
    lose(consumer)
    celerys = consumer_on(CeleryConsumer, lost.connection)
    with pytest.raises(AttributeError, match="hostname"):
        acknowledge(celerys, lost.received[0])


def test_the_worker_runs_cobalts_consumer() -> None:
    assert app.conf.worker_consumer == "tracker.worker:Consumer"


def test_tasks_running_when_the_broker_goes_are_left_to_finish() -> None:
    # Set in the project, not left to Celery's default: Celery 6 turns it on, and a delivery cancelled mid-send
    # could reach the patient twice (test_worker_broker_restart.py: the sends in flight finish, each once).
    assert settings.CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS is False
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is False
