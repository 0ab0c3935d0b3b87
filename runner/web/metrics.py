"""The metrics ``/metrics`` shows (runner.web.health), in prometheus-client's registry.

Counters and the duration histogram are this process's (alerts it received, runs its
workers executed); queue depth and runs by status are read from the store at scrape time,
so every replica reports the same totals for them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from runner.catalog.live import CatalogHolder, ReloadResult
from runner.errors import StoreError
from runner.records import RunRecord
from runner.store import Store

log = logging.getLogger("runner.web.metrics")
DURATION_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class _StoreCollector(Collector):
    """Queue depth, runs by runbook and status, outbox messages by channel and status: from the
    store at scrape time."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("runbook_queue_depth", "Runs waiting, by state.", labels=["state"])
        runs = GaugeMetricFamily("runbook_runs", "Runs in the store, by runbook and status.",
                                 labels=["runbook", "status"])
        messages = GaugeMetricFamily(
            "runbook_outbox_messages", "Notification messages in the store, by channel and status "
            "(pending, sent, dead, skipped: the channel is not configured).", labels=["channel", "status"])
        up = GaugeMetricFamily("runbook_store_up", "1 when the store answered this scrape.")
        try:
            for state, n in self.store.queue_depth().items():
                depth.add_metric([state], n)
            for runbook, status, n in self.store.status_counts():
                runs.add_metric([runbook, status], n)
            for channel, status, n in self.store.outbox_counts():
                messages.add_metric([channel, status], n)
            up.add_metric([], 1)
        except StoreError as e:
            log.warning("metrics: %s", e)
            up.add_metric([], 0)
        yield from (depth, runs, messages, up)


class Metrics:
    """The metrics of one app (its own registry: several apps can live in one process)."""

    def __init__(self, store: Store, holder: CatalogHolder) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.alerts = Counter("runbook_alerts_received", "Alerts received, by source and outcome "
                              "(new, repeat, resolved).", ["source", "outcome"], registry=r)
        self.requests = Counter("runbook_intake_requests", "Intake requests by source and HTTP status.",
                                ["source", "code"], registry=r)
        self.created = Counter("runbook_runs_created", "Runs created, by runbook and first status.",
                               ["runbook", "status"], registry=r)
        self.rejected = Counter("runbook_runs_rejected", "Runs rejected, by kind of reason.", ["reason"],
                                registry=r)
        self.finished = Counter("runbook_runs_finished", "Runs this process executed, by runbook and status.",
                                ["runbook", "status"], registry=r)
        self.duration = Histogram("runbook_run_duration_seconds", "Duration of the runs this process "
                                  "executed.", ["runbook", "status"], buckets=DURATION_BUCKETS, registry=r)
        self.reload_failures = Counter("runbook_catalog_reload_failures", "Catalog reloads refused.",
                                       registry=r)
        self.catalog_ok = Gauge("runbook_catalog_last_reload_ok", "1 when the last reload was accepted.",
                                registry=r)
        self.catalog_ok.set(1 if holder.loaded and holder.error is None else 0)
        r.register(_StoreCollector(store))
        holder.on_reload(self.reloaded)

    def reloaded(self, result: ReloadResult) -> None:
        """Count a reload."""
        self.catalog_ok.set(1 if result.ok else 0)
        if not result.ok:
            self.reload_failures.inc()

    def run_created(self, record: RunRecord) -> None:
        """Count a new run."""
        self.created.labels(record.runbook, record.status.value).inc()
        if record.status.value == "rejected":
            self.rejected.labels(record.reason_kind or "other").inc()  # a ReasonKind: a bounded label

    def run_finished(self, record: RunRecord) -> None:
        """Count a run a worker of this process executed."""
        self.finished.labels(record.runbook, record.status.value).inc()
        if record.duration is not None:
            self.duration.labels(record.runbook, record.status.value).observe(record.duration)
