"""Prometheus metrics every service exposes on /metrics."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "foot_messages_total",
            "Messages handled by consumers, by outcome (ok, retry, dead_letter, cancelled)",
            ["consumer", "outcome"],
            registry=self.registry,
        )
        self.handle_seconds = Histogram(
            "foot_message_handle_seconds",
            "Time from fetch to ack of one message",
            ["consumer"],
            registry=self.registry,
        )
        self.reconciles = Counter(
            "foot_reconciles_total",
            "Reconciles run, by queue and outcome (ok, error)",
            ["queue", "outcome"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "foot_reconcile_seconds", "Duration of one reconcile", ["queue"], registry=self.registry
        )
        self.api_requests = Counter(
            "foot_api_objects_total",
            "Objects submitted through the API, by operation and outcome",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.task_restarts = Counter(
            "foot_task_restarts_total",
            "Supervised background tasks restarted after a crash",
            ["task"],
            registry=self.registry,
        )
        self.ready = Gauge("foot_ready", "1 when the service is ready", registry=self.registry)
        self.info = Gauge(
            "foot_service_info", "Service identity", ["service"], registry=self.registry
        )
        self.info.labels(service).set(1)

    def consumer_outcome(self, consumer: str) -> Callable[[str, float], None]:
        def record(outcome: str, seconds: float) -> None:
            self.messages.labels(consumer, outcome).inc()
            self.handle_seconds.labels(consumer).observe(seconds)

        return record

    def reconcile_outcome(self, queue: str) -> Callable[[str, float], None]:
        def record(outcome: str, seconds: float) -> None:
            self.reconciles.labels(queue, outcome).inc()
            self.reconcile_seconds.labels(queue).observe(seconds)

        return record

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
