"""A client nobody here wrote: openapi-python-client, generated from the served document.

The real server (gunicorn, API_TOKEN set) serves /api/v1/openapi.json; the client is generated
from it into a temp folder, imported, and calls every endpoint, errors included, through its
parsed models. Its post-hooks run this venv's ruff, which needs no network.
"""

from __future__ import annotations

import importlib
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import redis

from config import Settings
from scripts.harness import free_port
from tests.support.streams import api_running

TOKEN = "generated-client-token"
PACKAGE = "prc_generated_client"
ORG = "org-bufdir-42"
JANUARY = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC))
FEBRUARY = (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC))
UNKNOWN_ID = "count-snapshot-" + "f" * 32
MODULES = (
    "client",
    "models",
    "types",
    "api.operations.health",
    "api.operations.readiness",
    "api.operations.metrics",
    "api.period_record_counts.count_records",
    "api.period_record_counts.list_count_snapshots",
    "api.period_record_counts.get_count_snapshot",
    "api.period_record_counts.refresh_count_snapshot",
    "api.period_record_counts.delete_count_snapshot",
    "api.live_stream.get_api_v1_period_record_counts_stream",
    "api.series.count_records_per_interval",
)


def generate(document: Path, out: Path) -> Path:
    """Run openapi-python-client on `document`; the package it wrote."""
    ruff = f"{shlex.quote(sys.executable)} -m ruff"
    config = out / "config.yaml"
    config.write_text(
        f"package_name_override: {PACKAGE}\n"
        "post_hooks:\n"
        f"  - {ruff} check . --fix-only --quiet\n"
        f"  - {ruff} format . --quiet\n"
    )
    package = out / PACKAGE
    subprocess.run(
        [
            *(sys.executable, "-m", "openapi_python_client", "generate"),
            *("--path", str(document), "--config", str(config)),
            *("--meta", "none", "--output-path", str(package), "--fail-on-warning"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return package


@pytest.fixture
def generated(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> Iterator[SimpleNamespace]:
    """The generated package's modules and clients of it (with and without the token), and a
    server for them (with API_TOKEN set)."""
    settings = replace(settings, port=free_port(), api_token=TOKEN)
    base_url = f"http://127.0.0.1:{settings.port}"
    with api_running(settings):
        document = tmp_path / "openapi.json"
        with urllib.request.urlopen(f"{base_url}/api/v1/openapi.json", timeout=10) as response:
            document.write_bytes(response.read())
        generate(document, tmp_path)
        sys.path.insert(0, str(tmp_path))
        try:
            modules = {
                name.rpartition(".")[2]: importlib.import_module(f"{PACKAGE}.{name}")
                for name in MODULES
            }
            client = modules["client"]
            with (
                client.Client(base_url=base_url, raise_on_unexpected_status=True) as anonymous,
                client.AuthenticatedClient(
                    base_url=base_url, token=TOKEN, raise_on_unexpected_status=True
                ) as authed,
            ):
                yield SimpleNamespace(anonymous=anonymous, authed=authed, **modules)
        finally:
            sys.path.remove(str(tmp_path))
            for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
                del sys.modules[name]


def bounds(models: ModuleType, window: tuple[datetime, datetime]) -> Any:
    return models.Range(start=window[0], end=window[1])


def test_generated_client_calls_every_endpoint(generated: SimpleNamespace) -> None:
    g = generated
    models, anonymous, authed = g.models, g.anonymous, g.authed

    health = g.health.sync_detailed(client=anonymous)
    assert health.status_code == 200 and health.parsed.status == models.HealthStatus.OK
    ready = g.readiness.sync_detailed(client=anonymous)
    assert ready.status_code == 200 and ready.parsed.status == models.ReadyStatus.READY
    metrics = g.metrics.sync_detailed(client=anonymous)
    assert metrics.status_code == 200 and b"prc_api_request_duration_seconds" in metrics.content

    # POST: created, then refreshed; without the token a 401; a reversed range a 422.
    request = models.CountRequest(org_id=ORG, range_=bounds(models, JANUARY))
    created = g.count_records.sync_detailed(client=authed, body=request)
    assert created.status_code == 201, created.content
    result = created.parsed
    assert isinstance(result, models.CountResult)
    assert (result.org_id, result.record_count, result.is_complete) == (ORG, 0, False)
    assert (result.range_.start, result.range_.end) == JANUARY
    assert created.headers["Location"].endswith(result.id)
    refreshed = g.count_records.sync_detailed(client=authed, body=request)
    assert refreshed.status_code == 200 and refreshed.parsed.id == result.id
    assert refreshed.parsed.computed_at >= result.computed_at

    refused = g.count_records.sync_detailed(client=anonymous, body=request)
    assert refused.status_code == 401
    assert isinstance(refused.parsed, models.Problem) and refused.parsed.status == 401
    reversed_range = models.CountRequest(
        org_id=ORG, range_=models.Range(start=JANUARY[1], end=JANUARY[0])
    )
    invalid = g.count_records.sync_detailed(client=authed, body=reversed_range)
    assert invalid.status_code == 422
    assert invalid.parsed.errors.additional_properties == {"range": ["start must not be after end"]}

    # GET /: the list, filtered; a bad query is a 400 problem.
    listed = g.list_count_snapshots.sync_detailed(client=anonymous, org_id=ORG, limit=5)
    assert listed.status_code == 200
    page = listed.parsed
    assert isinstance(page, models.SnapshotPage)
    assert [snapshot.id for snapshot in page.data] == [result.id]
    assert (page.pagination.page, page.pagination.limit, page.pagination.total) == (1, 5, 1)
    assert page.data[0].range_start == JANUARY[0]
    bad_query = g.list_count_snapshots.sync_detailed(client=anonymous, limit=1000)
    assert bad_query.status_code == 400 and "limit" in bad_query.parsed.errors.additional_properties

    # GET /{id}: the snapshot; an unknown id is a 404 problem.
    fetched = g.get_count_snapshot.sync_detailed(result.id, client=anonymous)
    assert fetched.status_code == 200
    assert isinstance(fetched.parsed, models.Snapshot)
    assert (fetched.parsed.org_id, fetched.parsed.range_end) == (ORG, JANUARY[1])
    missing = g.get_count_snapshot.sync_detailed(UNKNOWN_ID, client=anonymous)
    assert missing.status_code == 404 and missing.parsed.status == 404

    # PUT /{id}: recount over February; onto a range another snapshot holds, a 409.
    update = models.UpdateRequest(range_=bounds(models, FEBRUARY))
    moved = g.refresh_count_snapshot.sync_detailed(result.id, client=authed, body=update)
    assert moved.status_code == 200
    assert (moved.parsed.id, moved.parsed.range_start, moved.parsed.range_end) == (
        result.id,
        *FEBRUARY,
    )
    other = g.count_records.sync_detailed(client=authed, body=request)  # January again
    assert other.status_code == 201 and other.parsed.id != result.id
    taken = g.refresh_count_snapshot.sync_detailed(other.parsed.id, client=authed, body=update)
    assert taken.status_code == 409
    assert isinstance(taken.parsed, models.Problem) and taken.parsed.status == 409

    # GET /series: January per day in Oslo (31 buckets, local edges); per hour over a year is
    # more than 1,000 buckets, a 422 problem.
    series = g.count_records_per_interval.sync_detailed(
        client=anonymous,
        org_id=ORG,
        start=JANUARY[0],
        end=JANUARY[1],
        interval=models.CountRecordsPerIntervalInterval.DAY,
        tz=models.CountRecordsPerIntervalTz.EUROPE_OSLO,
    )
    assert series.status_code == 200, series.content
    assert isinstance(series.parsed, models.Series)
    assert len(series.parsed.buckets) == 32  # 01:00 Jan 1 to 00:59:59 Feb 1, Oslo time
    assert series.parsed.record_count == 0 and series.parsed.buckets[1].start.hour == 0
    too_many = g.count_records_per_interval.sync_detailed(
        client=anonymous,
        org_id=ORG,
        start=datetime(2025, 1, 1, tzinfo=UTC),
        end=datetime(2025, 12, 31, tzinfo=UTC),
        interval=models.CountRecordsPerIntervalInterval.HOUR,
    )
    assert too_many.status_code == 422 and too_many.parsed.status == 422

    # The stream: an unknown snapshot is a 404 problem (a known one would stream forever).
    no_stream = g.get_api_v1_period_record_counts_stream.sync_detailed(
        client=anonymous, id=UNKNOWN_ID
    )
    assert no_stream.status_code == 404 and no_stream.parsed.status == 404

    # DELETE /{id}: deleted, then a 404.
    deleted = g.delete_count_snapshot.sync_detailed(result.id, client=authed)
    assert deleted.status_code == 200
    assert isinstance(deleted.parsed, models.Deleted)
    assert (deleted.parsed.deleted, deleted.parsed.id) == (True, result.id)
    gone = g.delete_count_snapshot.sync_detailed(result.id, client=authed)
    assert gone.status_code == 404 and gone.parsed.status == 404
