"""The service against a secured Kafka (SASL_SSL, SCRAM-SHA-512) and a TLS Redis with an ACL user.

One secured stack serves the module (`tests/integration/secured.py`). The processes are the
real entry points (`python -m projector`, `python -m api`, `python -m events.produce`) given
their secrets as `*_FILE` paths. Every output and response of these runs is searched for
every secret value, the rejected wrong passwords included.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from api.middleware import BASE_PATH
from events.redis_client import connect
from events.topics import end_offsets, ensure_topics
from scripts.harness import ROOT, Proc, free_port, log_dir, wait_until
from scripts.tls import other_ca
from tests.integration.secured import (
    SecuredStack,
    leaked,
    start_secured_stack,
    stop_secured_stack,
)
from tests.support.api_inputs import stream_path
from tests.support.live_client import LiveClient

pytestmark = pytest.mark.integration

START, END = "2026-01-01T00:00:00Z", "2026-01-31T23:59:59Z"
EXIT_WITHIN_SECONDS = 15.0
WRONG_PASSWORD = f"wrong-{uuid.uuid4().hex}"  # a secret too: it must not be echoed either


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredStack]:
    """The module's secured Kafka and Redis; stopped by pid afterwards."""
    stack = start_secured_stack(tmp_path_factory.mktemp("secured"), f"sec{uuid.uuid4().hex[:8]}")
    try:
        yield stack
    finally:
        stop_secured_stack(stack)


def names() -> dict[str, str]:
    """Per-test topic and group, so tests share the ACL user's prefix and nothing else."""
    topic = f"sec-events-{uuid.uuid4().hex[:8]}"
    return {
        "RECORD_EVENTS_TOPIC": topic,
        "PROJECTOR_GROUP_ID": f"{topic}-projector",
        "PROJECTOR_INSTANCE_ID": f"{topic}-projector-1",
        "PROJECTOR_METRICS_PORT": "0",
        "BIND_HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "1",
    }


def http(port: int, method: str, path: str, body: object = None) -> tuple[int, str]:
    """One request to the API; (status, body text)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def start_api(env: dict[str, str], procs: list[Proc]) -> int:
    """`python -m api` with `env`, once /healthz answers; returns its port."""
    port = free_port()
    proc = Proc("api", [sys.executable, "-m", "api"], env | {"PORT": str(port)}, log_dir())
    procs.append(proc)
    wait_until(lambda: proc.alive() and http(port, "GET", "/healthz")[0] == 200, 30, "healthz")
    return port


def produce(env: dict[str, str], *orgs: str, count: int) -> tuple[dict[str, object], str]:
    """`python -m events.produce` with `env`; its JSON summary and all it printed."""
    argv = [sys.executable, "-m", "events.produce", "--topic", env["RECORD_EVENTS_TOPIC"]]
    for org in orgs:
        argv += ["--org", org]
    argv += ["--count", str(count), "--start", START, "--end", END, "--seed", "17"]
    argv += ["--duplicate-ratio", "0.1", "--invalid-ratio", "0.05", "--json"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stdout + done.stderr


def test_projector_api_stream_and_produce_run_over_secured_connections(
    secured: SecuredStack, procs: list[Proc]
) -> None:
    env = secured.process_env(**names(), SSE_KEEPALIVE_SECONDS="2")
    settings = secured.settings(record_events_topic=env["RECORD_EVENTS_TOPIC"])
    ensure_topics(settings, settings.record_events_topic, partitions=3)
    projector = Proc("projector", [sys.executable, "-m", "projector"], env, log_dir())
    procs.append(projector)
    port = start_api(env, procs)
    org_a, org_b = f"org-sec-{uuid.uuid4().hex[:6]}", f"org-sec-{uuid.uuid4().hex[:6]}"
    stream = LiveClient(port, stream_path(org_a, 1767225600, 1769903999))
    stream.start()
    responses = []
    try:
        stream.wait_count(0, timeout=20)
        summary, printed = produce(env, org_a, org_b, count=400)
        valid = summary["valid_by_org"]
        assert isinstance(valid, dict) and set(valid) == {org_a, org_b}
        live = stream.wait_count(valid[org_a], timeout=30)  # the stream follows, live
        assert live.data["org_id"] == org_a
        for org in (org_a, org_b):
            status, body = http(
                port, "POST", BASE_PATH, {"org_id": org, "range": {"start": START, "end": END}}
            )
            responses.append(body)
            assert status == 201, body
            assert json.loads(body)["record_count"] == valid[org]
        # The bad events went to the dead-letter topic through the projector's own producer.
        dead = sum(end_offsets(settings, settings.dlq_topic).values())
        assert dead == summary["invalid"]
        status, body = http(port, "GET", "/readyz")
        responses.append(body)
        assert status == 200, body
    finally:
        stream.close()
    outputs = [projector.output(), procs[-1].output(), printed, *responses]
    outputs += [json.dumps(e.data) for e in stream.events]
    assert "connections checked" in projector.output()
    assert leaked(secured.secrets(), outputs) == []


def test_the_service_user_may_only_touch_its_own_keys_and_channels(
    secured: SecuredStack,
) -> None:
    client = connect(secured.settings())
    try:
        client.set(f"{secured.prefix}:acl-probe", "1")
        assert client.get(f"{secured.prefix}:acl-probe") == b"1"
        for forbidden in (
            lambda: client.get("elsewhere:acl-probe"),
            lambda: client.publish("elsewhere:changes", "x"),
            lambda: client.keys("*"),
            lambda: client.flushdb(),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                forbidden()
    finally:
        client.delete(f"{secured.prefix}:acl-probe")
        client.close()


def _kafka_plaintext(env: dict[str, str], _: SecuredStack) -> dict[str, str]:
    dropped = ("KAFKA_SASL_", "KAFKA_SSL_")
    return {k: v for k, v in env.items() if not k.startswith(dropped)} | {
        "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"
    }


def _kafka_password(env: dict[str, str], _: SecuredStack) -> dict[str, str]:
    env = {k: v for k, v in env.items() if k != "KAFKA_SASL_PASSWORD_FILE"}
    return env | {"KAFKA_SASL_PASSWORD": WRONG_PASSWORD}


def _kafka_ca(env: dict[str, str], stack: SecuredStack) -> dict[str, str]:
    return env | {"KAFKA_SSL_CAFILE": str(other_ca(stack.state / "other"))}


def _redis_url(env: dict[str, str], url: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "REDIS_URL_FILE"} | {"REDIS_URL": url}


def _redis_password(env: dict[str, str], stack: SecuredStack) -> dict[str, str]:
    port = stack.stack_env["STACK_REDIS_PORT"]
    return _redis_url(env, f"rediss://prc:{WRONG_PASSWORD}@127.0.0.1:{port}/0")


def _redis_ca(env: dict[str, str], stack: SecuredStack) -> dict[str, str]:
    return env | {"REDIS_SSL_CAFILE": str(other_ca(stack.state / "other"))}


def _redis_plaintext(env: dict[str, str], stack: SecuredStack) -> dict[str, str]:
    password = (stack.secrets_dir / "redis-prc").read_text()
    port = stack.stack_env["STACK_REDIS_PORT"]
    env = {k: v for k, v in env.items() if k != "REDIS_SSL_CAFILE"}
    return _redis_url(env, f"redis://prc:{password}@127.0.0.1:{port}/0")


PROCESSES = {
    "projector": [sys.executable, "-m", "projector"],
    "api": [sys.executable, "-m", "api"],
    "produce": [sys.executable, "-m", "events.produce", "--count", "10"],
}
MISCONFIGURED = [
    (process, change, expected)
    for change, expected, processes in [
        (_kafka_password, "wrong password", ("projector", "produce")),
        (_kafka_ca, "untrusted certificate", ("projector", "produce")),
        (_kafka_plaintext, "wrong protocol", ("projector", "produce")),
        (_redis_password, "wrong password", ("projector", "api")),
        (_redis_ca, "untrusted certificate", ("projector", "api")),
        (_redis_plaintext, "wrong protocol", ("projector", "api")),
    ]
    for process in processes
]


@pytest.mark.parametrize(
    ("process", "change", "expected"),
    MISCONFIGURED,
    ids=[f"{p}-{c.__name__.strip('_')}" for p, c, _ in MISCONFIGURED],
)
def test_a_misconfiguration_stops_the_process_with_one_clear_line(
    secured: SecuredStack, process: str, change: object, expected: str
) -> None:
    env = change(secured.process_env(**names(), PORT=str(free_port())), secured)  # type: ignore[operator]
    topic = env["RECORD_EVENTS_TOPIC"]
    ensure_topics(secured.settings(), topic, partitions=1)
    started = time.monotonic()
    proc = Proc(
        process, PROCESSES[process] + ["--topic", topic] * (process == "produce"), env, log_dir()
    )
    try:
        wait_until(lambda: not proc.alive(), EXIT_WITHIN_SECONDS, f"{process} to exit")
    finally:
        code = proc.stop(timeout=5)
    took = time.monotonic() - started
    output = proc.output()
    lines = [line for line in output.splitlines() if "configuration rejected" in line]
    assert code != 0 and took < EXIT_WITHIN_SECONDS, output
    assert len(lines) == 1, output
    assert expected in lines[0], lines[0]
    assert "Traceback" not in output, output
    assert leaked(secured.secrets() | {"wrong": WRONG_PASSWORD}, [output]) == []


def test_readyz_says_why_while_redis_refuses_the_service(
    secured: SecuredStack, procs: list[Proc]
) -> None:
    port = start_api(secured.process_env(**names()), procs)
    admin = secured.admin_redis()
    bodies = []
    try:
        assert http(port, "GET", "/readyz")[0] == 200
        admin.execute_command("ACL", "SETUSER", "prc", "off")
        admin.execute_command("CLIENT", "KILL", "USER", "prc")

        def refused() -> bool:
            status, body = http(port, "GET", "/readyz")
            bodies.append(body)
            return status == 503 and "wrong password or user" in json.loads(body)["detail"]

        wait_until(refused, 15, "/readyz to report the refusal")
    finally:
        admin.execute_command("ACL", "SETUSER", "prc", "on")
        admin.close()
    wait_until(lambda: http(port, "GET", "/readyz")[0] == 200, 15, "/readyz to recover")
    assert leaked(secured.secrets(), [procs[-1].output(), *bodies]) == []


def test_settings_of_the_stack_are_the_secured_ones(secured: SecuredStack) -> None:
    settings = secured.settings()
    assert (settings.kafka_security_protocol, settings.kafka_sasl_mechanism) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    assert settings.redis_url.startswith("rediss://prc:")
    assert Path(settings.kafka_ssl_cafile or "").is_file()
    assert leaked(secured.secrets(), [repr(settings)]) == []
