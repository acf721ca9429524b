"""A throw-away PostgreSQL for benchmarks: Debian's server in a temp folder, stopped by pid.

The server runs as the `postgres` OS user (it refuses root), listens on a free loopback
port only (no TCP outside 127.0.0.1; its Unix socket sits in the temp folder), and trusts
local connections. Durability is off (fsync, full-page writes): the benchmarks measure
reads, and loading millions of rows should not wait on the disk. Reads get PostgreSQL at
its best: 1 GB of shared buffers and a table whose every page is all-visible.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from scripts.harness import free_port, wait_until

PG_USER = "postgres"
SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "shared_buffers": "1GB",  # table and index stay cached: PostgreSQL at its best
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_wal_size": "4GB",
    "maintenance_work_mem": "512MB",
}


class PgError(RuntimeError):
    """PostgreSQL could not be found, installed, started or stopped."""


def bin_dir() -> Path:
    """The newest Debian PostgreSQL bin folder, installing the `postgresql` package if none."""

    def newest() -> Path | None:
        found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
        found.sort(key=lambda p: int(Path(p).parent.parent.name))
        return Path(found[-1]).parent if found else None

    folder = newest()
    if folder is None:
        from scripts import stack

        # initdb is not on PATH on Debian; pg_ctlcluster (postgresql-common) is.
        stack.apt_install("pg_ctlcluster", "postgresql")
        folder = newest()
    if folder is None:
        raise PgError("no /usr/lib/postgresql/*/bin/initdb after installing postgresql")
    return folder


def _as_postgres(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Run argv as the postgres OS user (runuser when we are root)."""
    if os.geteuid() == 0:
        argv = ["runuser", "-u", PG_USER, "--", *argv]
    return subprocess.run(argv, check=True, capture_output=True, **kwargs)


class PgServer:
    """One temporary PostgreSQL server: `start()`, `connect()`, `stop()`."""

    def __init__(self) -> None:
        self.port = 0
        self.pid: int | None = None
        self.folder: Path | None = None
        self.version = ""

    @property
    def conninfo(self) -> str:
        """libpq connection string for the server."""
        return f"host=127.0.0.1 port={self.port} user={PG_USER} dbname=postgres"

    def start(self, timeout: float = 60.0) -> None:
        """initdb a temp folder and start the server on a free loopback port."""
        bins = bin_dir()
        self.folder = Path(tempfile.mkdtemp(prefix="prc-bench-pg-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam(PG_USER)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        data = self.folder / "data"
        try:
            _as_postgres(
                [
                    str(bins / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    PG_USER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                timeout=timeout,
            )
        except subprocess.CalledProcessError as exc:
            raise PgError(f"initdb failed: {exc.stderr.decode(errors='replace')}") from exc
        self.port = free_port()
        options = dict(
            SERVER_OPTIONS, port=str(self.port), unix_socket_directories=str(self.folder)
        )
        opts = " ".join(f"-c {k}={v}" for k, v in options.items())
        try:
            _as_postgres(
                [
                    str(bins / "pg_ctl"),
                    "start",
                    "-D",
                    str(data),
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "-l",
                    str(self.folder / "server.log"),
                    "-o",
                    opts,
                ],
                timeout=timeout + 10,
            )
        except subprocess.CalledProcessError as exc:
            raise PgError(f"pg_ctl start failed: {self.log_tail()}") from exc
        # The postmaster's pid is the first line of postmaster.pid: we stop it by that pid.
        self.pid = int((data / "postmaster.pid").read_text().split()[0])
        with self.connect() as conn:
            self.version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server log."""
        if self.folder is None:
            return ""
        try:
            return (self.folder / "server.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def connect(self) -> psycopg.Connection[Any]:
        """A new autocommit connection."""
        return psycopg.connect(self.conninfo, autocommit=True)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown by pid (SIGINT), then SIGQUIT if it lingers; remove the folder."""
        pid, self.pid = self.pid, None
        if pid is not None:
            for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                try:
                    wait_until(lambda: not _alive(pid), timeout, f"postgres {pid} to stop")
                    break
                except TimeoutError:
                    continue
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # The postmaster is not our child: once it exits it is gone (no zombie to reap here).
    return True


def load_records(conn: psycopg.Connection[Any], events: Iterable[tuple[str, int]]) -> int:
    """Create and fill `records`, index it, VACUUM until every page is all-visible."""
    conn.execute("DROP TABLE IF EXISTS records")
    conn.execute("CREATE TABLE records (org_id text NOT NULL, occurred_at timestamptz NOT NULL)")
    rows = 0
    days: dict[int, str] = {}
    with conn.cursor() as cur, cur.copy("COPY records (org_id, occurred_at) FROM STDIN") as copy:
        lines: list[str] = []
        for org, second in events:
            day, rest = divmod(second, 86400)
            text = days.get(day)
            if text is None:
                text = days[day] = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
            hour, rest = divmod(rest, 3600)
            lines.append(f"{org}\t{text} {hour:02d}:{rest // 60:02d}:{rest % 60:02d}+00\n")
            if len(lines) >= 50_000:
                copy.write("".join(lines))
                rows += len(lines)
                lines.clear()
        if lines:
            copy.write("".join(lines))
            rows += len(lines)
    conn.execute("CREATE INDEX records_org_occurred_at ON records (org_id, occurred_at)")
    # A plain VACUUM ANALYZE right after the load left most heap pages not all-visible (291
    # of 12,739 once), and COUNT(*) then read the heap: 3x slower than PostgreSQL can be.
    # FREEZE marks every page, so the counts are index-only scans; checked, not assumed.
    for _ in range(3):
        conn.execute("VACUUM (FREEZE, ANALYZE) records")
        pages, visible = conn.execute(
            "SELECT relpages, relallvisible FROM pg_class WHERE relname = 'records'"
        ).fetchone()  # type: ignore[misc]
        if visible >= pages:
            return rows
    raise PgError(f"only {visible} of {pages} pages of records are all-visible after VACUUM")
