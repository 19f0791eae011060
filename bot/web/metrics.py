"""Prometheus metrics of one server (its own registry, so tests can run several servers)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bot.models import Decision


class Metrics:
    """Everything /metrics shows; label values are connector names, statuses and kinds only."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("kefu_messages_total", "Inbound messages accepted", ["connector"], registry=r)
        self.duplicates = Counter("kefu_duplicates_total", "Duplicate deliveries answered from the store",
                                  ["connector"], registry=r)
        self.rejected = Counter("kefu_rejected_total", "Webhook requests refused", ["connector", "status"],
                                registry=r)
        self.skipped = Counter("kefu_skipped_items_total", "Platform items kefu could not read (recorded, skipped)",
                               ["connector"], registry=r)
        self.decisions = Counter("kefu_decisions_total", "Decisions by kind", ["kind"], registry=r)
        self.handoffs = Counter("kefu_handoffs_total", "Handoffs to people", ["group"], registry=r)
        self.sla_breaches = Counter("kefu_sla_breaches_total", "Tickets past their SLA unanswered (once each)",
                                    ["group"], registry=r)
        self.connector_errors = Counter("kefu_connector_errors_total", "Failed platform calls", ["connector"],
                                        registry=r)
        self.delivered = Counter("kefu_outbox_delivered_total", "Deliveries that reached the platform",
                                 ["connector"], registry=r)
        self.dead_letters = Counter("kefu_outbox_dead_letters_total", "Deliveries put in dead-letter",
                                    ["connector"], registry=r)
        self.outbox_items = Gauge("kefu_outbox_items", "Outbox items by status", ["status"], registry=r)
        self.failed_turns = Counter("kefu_failed_turns_total", "Messages whose processing failed, handed to a person",
                                    registry=r)
        self.store_errors = Counter("kefu_store_errors_total", "Store writes that failed", registry=r)
        self.http_responses = Counter("kefu_http_responses_total", "HTTP responses by status", ["status"],
                                      registry=r)
        self.webhook_seconds = Histogram("kefu_webhook_seconds", "Time to answer the platform", ["connector"],
                                         registry=r)
        self.process_seconds = Histogram("kefu_process_seconds", "Time to decide on a message", registry=r)
        self.read_ahead = Counter("kefu_read_ahead_texts_total",
                                  "Queued messages' texts read in one classifier batch before their turns",
                                  registry=r)
        self.store_round_jobs = Histogram("kefu_store_round_jobs", "Store jobs committed together (group commit)",
                                          buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.delivery_seconds = Histogram("kefu_delivery_seconds", "From decision to delivered", ["connector"],
                                          buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
                                          registry=r)

    def decided(self, decision: Decision) -> None:
        self.decisions.labels(decision.kind).inc()
        if decision.kind == "handoff" and decision.handoff is not None:
            self.handoffs.labels(decision.handoff.group).inc()
