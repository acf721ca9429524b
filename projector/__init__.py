"""The projector: record-created events from Kafka into per-org time-bucketed counters in Redis."""
