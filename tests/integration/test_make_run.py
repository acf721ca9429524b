"""`make run`'s chain (stack + projector + API) comes up, answers, and Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from scripts.harness import ROOT, free_port, wait_until


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; it only waits for its parent to read its status.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def test_run_chain_starts_everything_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    ports = {name: str(free_port()) for name in ("kafka", "controller", "redis", "api", "metrics")}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL") and not k.startswith("PYTEST")
    }
    env.update(
        STACK_KAFKA_PORT=ports["kafka"],
        STACK_KAFKA_CONTROLLER_PORT=ports["controller"],
        STACK_REDIS_PORT=ports["redis"],
        PORT=ports["api"],
        PROJECTOR_METRICS_PORT=ports["metrics"],
        PRC_STATE_DIR=str(tmp_path / "state"),
        WEB_CONCURRENCY="1",
        BIND_HOST="127.0.0.1",
    )
    # What `make run` runs, in a process group of its own so "Ctrl-C" reaches all of it.
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scripts.stack",
                "run",
                "--",
                sys.executable,
                "-m",
                "scripts.serve",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def healthy() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            url = f"http://127.0.0.1:{ports['api']}/healthz"
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200

        wait_until(healthy, 120, "the API behind make run")
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['metrics']}/metrics") as response:
            assert b"projector_events_applied_total" in response.read()
        state = tmp_path / "state"
        pids = [int((state / n / f"{n}.pid").read_text()) for n in ("kafka", "redis")]
        pids += _group_members(proc.pid)
        assert all(_alive(pid) for pid in pids)

        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert proc.wait(timeout=60) in (0, 130, -signal.SIGINT)
        wait_until(lambda: not any(_alive(pid) for pid in pids), 30, "every process to exit")
        assert not (state / "kafka" / "kafka.pid").exists()
        assert not (state / "redis" / "redis.pid").exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("make run's chain did not stop on Ctrl-C")
