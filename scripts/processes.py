"""Server processes of ours, found, stopped and killed by the pid we recorded, never by name.

A server runs in its own session; its pid file `<home>/<name>.pid` holds its pid, and
`<home>/<name>.started` beside it the process's start time (psutil's `create_time`). A pid is
taken for ours only while a process with that pid and that start time runs with the server's
marker in its command line, so a recycled pid is never signalled (psutil itself refuses to
signal a pid whose process is not the one it looked up). A pid file without its start time (one
written before start times were kept) is judged by the marker alone. Stopping is SIGTERM (a
clean shutdown), then SIGKILL after a timeout.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

# Two readings of one process's start time differ by less than one clock tick (10 ms).
SAME_START = 0.01


class StackError(RuntimeError):
    """A local service could not be installed, started or stopped."""


def log(message: str) -> None:
    """Progress for the person at the terminal."""
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def running(proc: psutil.Process) -> bool:
    """Whether `proc` still runs as the process it was looked up as (a zombie has exited)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Server:
    """A server process of ours living in `home`: started, stopped and killed by its pid."""

    name = "server"
    marker = ""  # found in the command line of a live server of this kind

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pidfile(self) -> Path:
        """Where the pid is recorded."""
        return self.home / f"{self.name}.pid"

    @property
    def startfile(self) -> Path:
        """Where the start time of the process of the pid file is recorded."""
        return self.home / f"{self.name}.started"

    def process(self) -> psutil.Process | None:
        """This running server, the very process we started, or None."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            started: float | None = float(self.startfile.read_text())
        except (OSError, ValueError):
            started = None
        try:
            proc = psutil.Process(pid)
        except psutil.Error:
            proc = None
        if proc is None or not running(proc):
            self._reap(pid)
            self._forget()
            return None
        try:
            same = started is None or abs(proc.create_time() - started) < SAME_START
            ours = same and self.marker in " ".join(proc.cmdline())
        except psutil.Error:
            return None
        if not same:  # the pid was recycled: ours has gone
            self._forget()
        return proc if ours else None

    def pid(self) -> int | None:
        """The pid of this running server, or None."""
        proc = self.process()
        return None if proc is None else proc.pid

    def start(self) -> bool:
        """Start the server unless it runs; True when this call started it."""
        raise NotImplementedError

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM (a clean shutdown), then SIGKILL after `timeout`; True if it was running."""
        proc = self.process()
        if proc is None:
            return False
        log(f"stopping {self.name} (pid {proc.pid})")
        _signal(proc, signal.SIGTERM)
        if not self._wait_gone(proc, timeout):
            log(f"{self.name} did not stop in {timeout:.0f}s; sending SIGKILL")
            _signal(proc, signal.SIGKILL)
            self._wait_gone(proc, 10.0)
        self._forget()
        return True

    def kill(self) -> bool:
        """SIGKILL, as a crash would; True if it was running. Returns once it is gone."""
        proc = self.process()
        if proc is None:
            return False
        log(f"killing {self.name} (pid {proc.pid})")
        _signal(proc, signal.SIGKILL)
        if not self._wait_gone(proc, 10.0):
            raise StackError(f"{self.name} (pid {proc.pid}) still runs 10 s after SIGKILL")
        self._forget()
        return True

    def restart(self) -> None:
        """Stop cleanly, then start again on the same ports and data."""
        self.stop()
        self.start()

    def _forget(self) -> None:
        """Remove the record of a process that has gone."""
        self.pidfile.unlink(missing_ok=True)
        self.startfile.unlink(missing_ok=True)

    def _reap(self, pid: int) -> None:
        if self._proc is not None and self._proc.pid == pid:
            self._proc.poll()

    def _wait_gone(self, proc: psutil.Process, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == proc.pid:
            try:  # our own child: wait for it, so it does not linger as a zombie
                self._proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        # Another's child (an earlier `scripts.stack start` made it): it has exited once it is
        # gone or a zombie, which psutil's wait would not see until its parent reaps it.
        deadline = time.monotonic() + timeout
        while running(proc):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _spawn(self, argv: list[str], logfile: Path) -> subprocess.Popen[bytes]:
        logfile.parent.mkdir(parents=True, exist_ok=True)
        with open(logfile, "ab") as out:
            self._proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=logfile.parent,
            )
        # Not reaped before we wait for it, so the pid is the child's however soon it exits.
        self.startfile.write_text(repr(psutil.Process(self._proc.pid).create_time()))
        self.pidfile.write_text(str(self._proc.pid))
        return self._proc

    def _wait_ready(self, check: Callable[[], bool], timeout: float, logfile: Path) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = logfile.read_text(errors="replace")[-3000:] if logfile.exists() else ""
                raise StackError(
                    f"{self.name} exited ({proc.returncode}) during start-up; "
                    f"log {logfile}:\n{tail}"
                )
            try:
                if check():
                    return
            except Exception as exc:  # any failure means "not ready yet"
                last = exc
            time.sleep(0.3)
        raise StackError(f"{self.name} not ready after {timeout:.0f}s ({last}); see {logfile}")


def _signal(proc: psutil.Process, sig: int) -> None:
    """Send `sig` to `proc` unless it has gone (psutil refuses a pid that was recycled)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(sig)


def run_child(cmd: list[str], env: dict[str, str]) -> int:
    """Run cmd to its end; Ctrl-C reaches it directly, SIGTERM is passed on to it."""
    proc = subprocess.Popen(cmd, env=env)
    # The terminal's SIGINT goes to the whole process group, child included: wait for the
    # child to finish its own clean shutdown rather than dying half-way through ours.
    signal.signal(signal.SIGINT, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
    return proc.wait()
