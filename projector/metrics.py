"""The projector's Prometheus metrics, served on a port of its own."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

EVENTS_APPLIED = Counter("projector_events_applied_total", "record.created events counted")
EVENTS_DUPLICATE = Counter(
    "projector_events_duplicate_total", "events whose event_id was already counted for the org"
)
EVENTS_REPLAYED = Counter(
    "projector_events_already_applied_total",
    "records re-read after a restart whose effect Redis already held (skipped)",
)
# No per-type label: the type is producer-controlled text, and labels must stay bounded.
EVENTS_SKIPPED = Counter("projector_events_skipped_total", "events of other types, skipped")
EVENTS_DEAD_LETTERED = Counter(
    "projector_events_dead_lettered_total", "bad events sent to the DLQ", ["code"]
)
EVENTS_INVALID_REPLAYED = Counter(
    "projector_events_invalid_replayed_total",
    "bad events a rebuild read again (dead-lettered when first read; not sent again)",
    ["code"],
)
LATE_EVENTS = Counter(
    "projector_late_events_total",
    "events applied for a second already older than caught_up_at minus the grace",
)
BATCH_SECONDS = Histogram(
    "projector_batch_apply_seconds",
    "time to apply one batch to Redis",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_SIZE = Histogram(
    "projector_batch_records",
    "records per applied batch",
    buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000),
)
CONSUMER_LAG = Gauge("projector_consumer_lag", "records behind the log end", ["partition"])
CAUGHT_UP_AT = Gauge(
    "projector_caught_up_at_seconds", "global caught_up_at as a Unix time (0: unknown)"
)
RESEEKS = Counter(
    "projector_reseeks_total",
    "times the member re-read its partitions' positions from Redis (lost writes, a rival)",
)
PARTITIONS = Gauge(
    "projector_partitions",
    "partitions this member owns: ready (applied) or pending (paused until positioned)",
    ["state"],
)
GENERATION = Gauge("projector_generation", "the generation of the projection this process applies")
REBUILD_LAG = Gauge("projector_rebuild_lag_records", "records the rebuild still has to read")
REBUILD_RATE = Gauge("projector_rebuild_events_per_second", "records the rebuild reads a second")
REBUILD_ETA = Gauge(
    "projector_rebuild_eta_seconds", "seconds until the rebuild has caught up (-1: unknown)"
)
REBUILD_PHASE = Gauge(
    "projector_rebuild_phase", "1 for the phase the rebuild is in", ["generation", "phase"]
)
APPLY_RETRIES = Counter(
    "projector_apply_retries_total", "batches retried because Redis was unreachable"
)


def serve(port: int) -> None:
    """Expose /metrics on `port` (0 disables it)."""
    if port:
        start_http_server(port, addr="0.0.0.0")
