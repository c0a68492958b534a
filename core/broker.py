"""The dramatiq broker: Redis when REDIS_URL is set, otherwise dramatiq's in-process broker."""

from __future__ import annotations

from typing import Any

import dramatiq
from django.conf import settings
from django.db import close_old_connections
from dramatiq.brokers.stub import StubBroker

QUEUE = "actions"


class DatabaseConnections(dramatiq.Middleware):
    """Close stale or broken database connections around each message, as Django does per request."""

    def before_process_message(self, broker: Any, message: Any) -> None:
        close_old_connections()

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        close_old_connections()


def build_broker() -> dramatiq.Broker:
    # No Retries/TimeLimit/AgeLimit middleware: retries, timeouts and redelivery are decided
    # by the database state, never by the broker.
    middleware: list[dramatiq.Middleware] = [DatabaseConnections()]
    if settings.REDIS_URL:
        from core.doorbell import DoorbellRedisBroker

        return DoorbellRedisBroker(
            url=settings.REDIS_URL, middleware=middleware, namespace="bulwark"
        )
    return StubBroker(middleware=middleware)


def configure_broker() -> dramatiq.Broker:
    broker = build_broker()
    dramatiq.set_broker(broker)
    return broker
