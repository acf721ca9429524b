"""make test's passes (scripts/suite.py) and the environment the stack hands its child."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scripts import stack
from scripts.harness import ROOT
from scripts.suite import CLUSTER_MARKS, cluster_args, passes_wanted


@pytest.mark.parametrize(
    ("raw", "passes"),
    [
        (None, ["single", "cluster"]),
        ("", ["single", "cluster"]),
        ("cluster", ["cluster"]),
        ("cluster, single", ["single", "cluster"]),
        ("single", ["single"]),
    ],
)
def test_passes_run_in_a_fixed_order(raw: str | None, passes: list[str]) -> None:
    assert passes_wanted(raw) == passes


@pytest.mark.parametrize("raw", ["both", "single,clusters", ","])
def test_unknown_passes_are_refused(raw: str) -> None:
    with pytest.raises(SystemExit, match="TEST_PASSES"):
        passes_wanted(raw)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["tests/integration"]),
        (["-x", "-k", "store"], ["tests/integration", "-x", "-k", "store"]),
        (["tests/integration/test_store.py", "-x"], ["tests/integration/test_store.py", "-x"]),
        (
            ["tests/integration/test_store.py::test_scripts_reload_after_a_flush"],
            ["tests/integration/test_store.py::test_scripts_reload_after_a_flush"],
        ),
    ],
)
def test_the_cluster_pass_runs_the_integration_tests_unless_told_which(
    args: list[str], expected: list[str]
) -> None:
    assert cluster_args(args) == ["-m", CLUSTER_MARKS, *expected]


# Killing / restarting a private redis-server, running clusters or stacks of their own:
OWN = ["test_drill_redis_kill.py", "test_drill_redis_restart.py", "test_make_run.py"]
OWN += ["test_projector_assignment.py", "test_redis_cluster_servers.py"]
OWN += ["test_secured_connections.py", "test_bench_smoke.py"]
# ... and drills that only need isolation, a long drill, and tests of the session's Redis.
SHARED = ["test_drill_api_worker.py", "test_drill_overload.py", "test_store.py"]


def test_the_cluster_pass_leaves_out_drills_and_tests_with_a_redis_of_their_own() -> None:
    paths = [f"tests/integration/{name}" for name in [*OWN, *SHARED, "test_drill_soak.py"]]
    collect = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*collect, *cluster_args(paths)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    files = {line.split("::")[0].rsplit("/", 1)[-1] for line in done.stdout.splitlines()}
    assert not set(OWN) & files
    assert set(SHARED) <= files
    assert "test_drill_soak.py" not in files and "test_bad_input_flood" not in done.stdout


def test_a_stack_redis_is_handed_over_with_its_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL_FILE", raising=False)
    monkeypatch.setattr(stack, "SECURE", False)
    monkeypatch.setenv("REDIS_CLUSTER", "true")  # inherited, but wrong for the stack's Redis
    single = stack.child_env(cluster_nodes=0)
    assert (single["REDIS_URL"], single["REDIS_CLUSTER"]) == (stack.info(0).redis_url, "false")
    cluster = stack.child_env(cluster_nodes=3)
    assert cluster["REDIS_URL"] == f"redis://127.0.0.1:{stack.CLUSTER_PORT}/0"
    assert cluster["REDIS_CLUSTER"] == "true"


def test_a_redis_of_ones_own_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://10.0.0.1:6379/0")
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    env = stack.child_env(cluster_nodes=0)
    assert (env["REDIS_URL"], env["REDIS_CLUSTER"]) == ("redis://10.0.0.1:6379/0", "true")
