"""`python -m scripts.stack start|stop|status|run|env|test-deps`: the local stack's commands.

What each does is `scripts/stack.py`'s (its docstring is the command's help). A server that
cannot start (a port taken, a tool missing) is reported in one line, not a traceback, and
the command exits 1.
"""

from __future__ import annotations

import argparse

from scripts import stack
from scripts.asyncapi_spec import schema_path as asyncapi_schema_path
from scripts.ports import HOST
from scripts.processes import StackError, log, run_child

COMMANDS = ("start", "stop", "status", "run", "env", "test-deps")


def _state(pid: int | None) -> str:
    return f"running, pid {pid}" if pid else "stopped"


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code."""
    parser = argparse.ArgumentParser(prog="python -m scripts.stack", description=stack.__doc__)
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        return _run(parser, args)
    except StackError as error:
        log(f"error: {error}")
        return 1


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command in ("start", "env"):
        if args.command == "start":
            stack.start()
        for name, value in stack.client_env().items():
            print(f"{name}={value}")
    elif args.command == "stop":
        stack.stop()
    elif args.command == "test-deps":
        # The browser test drives Debian's Chromium (no browser download is possible here).
        stack.apt_install("chromium", "chromium")
        # The AsyncAPI document's test validates it against the official AsyncAPI schema.
        log(f"AsyncAPI 3.0.0 schema: {asyncapi_schema_path('3.0.0')}")
    elif args.command == "status":
        for name, pid in stack.status().items():
            print(f"{name}: {_state(pid)}")
        if stack.cluster_ports_on_disk():
            for port, pid in stack.redis_cluster().pids().items():
                print(f"  node {HOST}:{port}: {_state(pid)}")
    else:
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            parser.error("run needs a command after --")
        started = stack.start()
        try:
            return run_child(cmd, stack.child_env())
        finally:
            stack.stop([name for name in stack.SERVICES if name in started])
    return 0
