"""The keys of the contract's example bodies (shared/seed/api-contract.txt), once."""

from __future__ import annotations

POST_KEYS = frozenset({"org_id", "range", "record_count", "is_complete", "computed_at"})
RANGE_KEYS = frozenset({"start", "end"})
SNAPSHOT_KEYS = frozenset(
    {"id", "org_id", "range_start", "range_end", "record_count", "is_complete", "snapshot_at"}
)
LIST_KEYS = frozenset({"data", "pagination"})
PAGINATION_KEYS = frozenset({"page", "limit", "total"})
DELETE_KEYS = frozenset({"deleted", "id"})
