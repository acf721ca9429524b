"""A secured stack of the tests' own: `STACK_SECURE=1 python -m scripts.stack` on private ports.

Kafka with a SASL_SSL listener (SCRAM-SHA-512 user `prc`) and Redis with TLS only and an ACL
user `prc` held to one key prefix, with a private state folder; started once per test module
and stopped by pid (`scripts.stack stop` reads the pid files). The client settings come from
`scripts.stack env`, with the secrets as `*_FILE` paths, as a container would get them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import redis

from config import Settings
from scripts.harness import ROOT, free_port

# What the tests' own environment must not pass on: make test points it at the plain stack.
_OURS = ("KAFKA_", "REDIS_", "STACK_", "PRC_STATE_DIR", "PYTEST")


@dataclass(frozen=True)
class SecuredStack:
    """Where the secured servers are and how to reach them."""

    state: Path
    stack_env: dict[str, str]  # PRC_STATE_DIR, STACK_* for `python -m scripts.stack`
    client_env: dict[str, str]  # the service's settings (secrets as *_FILE paths)
    prefix: str

    @property
    def secrets_dir(self) -> Path:
        """Where the passwords are kept."""
        return self.state / "secure" / "secrets"

    def secrets(self) -> dict[str, str]:
        """Every password of the stack, by file name: none may ever show in output."""
        return {p.name: p.read_text() for p in self.secrets_dir.iterdir() if p.name != "redis-url"}

    def settings(self, **changes: object) -> Settings:
        """The service's settings for this stack, with `changes`."""
        from dataclasses import replace

        return replace(Settings.from_env(self.client_env), **changes)

    def admin_redis(self) -> redis.Redis:
        """A client as Redis's admin (the `default` user)."""
        password = (self.secrets_dir / "redis-default").read_text()
        port = self.stack_env["STACK_REDIS_PORT"]
        return redis.Redis.from_url(
            f"rediss://default:{password}@127.0.0.1:{port}/0",
            ssl_ca_certs=self.client_env["REDIS_SSL_CAFILE"],
        )

    def process_env(self, **settings: str) -> dict[str, str]:
        """An environment for a service process: the stack's client settings plus `settings`."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
        return env | self.client_env | {"REDIS_KEY_PREFIX": self.prefix} | settings


def _stack(command: str, stack_env: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)} | stack_env
    done = subprocess.run(
        [sys.executable, "-m", "scripts.stack", command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts.stack {command} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def start_secured_stack(state: Path, prefix: str) -> SecuredStack:
    """Start the secured Kafka and Redis on free ports with their state under `state`."""
    stack_env = {
        "PRC_STATE_DIR": str(state),
        "STACK_SECURE": "1",
        "STACK_KAFKA_PORT": str(free_port()),
        "STACK_KAFKA_CONTROLLER_PORT": str(free_port()),
        "STACK_REDIS_PORT": str(free_port()),
        "STACK_TOPIC_PARTITIONS": "3",
        "STACK_KAFKA_HEAP": "512m",
        "REDIS_KEY_PREFIX": prefix,
    }
    out = _stack("start", stack_env)
    client_env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return SecuredStack(state, stack_env, client_env, prefix)


def stop_secured_stack(stack: SecuredStack) -> None:
    """Stop both servers by their recorded pids."""
    _stack("stop", stack.stack_env)


def leaked(secrets: dict[str, str], texts: Iterable[str]) -> list[str]:
    """Which secrets appear in any of `texts` (by name, never the value)."""
    joined = "\n".join(texts)
    return sorted(name for name, value in secrets.items() if value and value in joined)
