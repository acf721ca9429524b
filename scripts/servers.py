"""Server processes of ours on given ports and a given home folder; Redis among them.

Each server runs in its own session, its pid recorded in `<home>/<name>.pid`, and is stopped
(SIGTERM), killed (SIGKILL) and restarted by that pid. `scripts/stack.py` runs the default
pair for `make run` / `make test`; the reliability drills run private ones on free ports.
The Kafka broker is `scripts/kafka_broker.py`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scripts.tls import TlsFiles

HOST = "127.0.0.1"


class StackError(RuntimeError):
    """A local service could not be installed, started or stopped."""


def log(message: str) -> None:
    """Progress for the person at the terminal."""
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def port_open(port: int) -> bool:
    """Whether something listens on loopback `port`."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _bindable(port: int) -> bool:
    """Whether a server could listen on loopback `port` now: no listener on it, and no
    connection's local end either (a port of the ephemeral range may be one)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as redis-server does
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def ports_taken(ports: Iterable[int], wait: float = 65.0) -> list[int]:
    """Which of `ports` a server of ours cannot listen on: a listener's are taken at once; one
    held by a connection's local end is taken if it is still held after `wait` seconds (the
    default outlasts Linux's 60 s TIME_WAIT of a closed connection)."""
    held = [port for port in ports if not _bindable(port)]
    if held and not any(port_open(port) for port in held) and wait > 0:
        log(f"port(s) {', '.join(map(str, held))} held by a connection; waiting up to {wait:.0f}s")
    deadline = time.monotonic() + wait
    while held and not any(port_open(port) for port in held) and time.monotonic() < deadline:
        time.sleep(0.5)
        held = [port for port in held if not _bindable(port)]
    return held


def apt_install(binary: str, package: str) -> str:
    """The path of `binary`, installing Debian's `package` first when it is missing."""
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(
            f"{binary} is not installed; install Debian's package (apt-get install {package})"
        )
    log(f"installing {package} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        check=True,
        env=env,
    )
    found = shutil.which(binary)
    if not found:
        raise StackError(f"apt-get installed {package} but {binary} is not on PATH")
    return found


def _gone(pid: int) -> bool:
    """True when `pid` has exited (a zombie counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


class Server:
    """A server process of ours living in `home`: started, stopped and killed by its pid."""

    name = "server"
    marker = b""  # found in /proc/<pid>/cmdline of a live server of this kind

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pidfile(self) -> Path:
        """Where the pid is recorded."""
        return self.home / f"{self.name}.pid"

    def pid(self) -> int | None:
        """The pid of this running server, or None."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        if _gone(pid):
            self._reap(pid)
            self.pidfile.unlink(missing_ok=True)
            return None
        # A recycled pid belongs to something else: check it is still our command.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if self.marker in cmdline else None

    def start(self) -> bool:
        """Start the server unless it runs; True when this call started it."""
        raise NotImplementedError

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM (a clean shutdown), then SIGKILL after `timeout`; True if it was running."""
        pid = self.pid()
        if pid is None:
            return False
        log(f"stopping {self.name} (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout):
            log(f"{self.name} did not stop in {timeout:.0f}s; sending SIGKILL")
            os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 10.0)
        self.pidfile.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """SIGKILL, as a crash would; True if it was running. Returns once it is gone."""
        pid = self.pid()
        if pid is None:
            return False
        log(f"killing {self.name} (pid {pid})")
        os.kill(pid, signal.SIGKILL)
        if not self._wait_gone(pid, 10.0):
            raise StackError(f"{self.name} (pid {pid}) still runs 10 s after SIGKILL")
        self.pidfile.unlink(missing_ok=True)
        return True

    def restart(self) -> None:
        """Stop cleanly, then start again on the same ports and data."""
        self.stop()
        self.start()

    def _reap(self, pid: int) -> None:
        if self._proc is not None and self._proc.pid == pid:
            self._proc.poll()

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:  # our own child: wait for it, so it does not linger as a zombie
                self._proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _gone(pid):
                return True
            time.sleep(0.05)
        return False

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

    def _check_ports(self, *ports: int) -> None:
        taken = ports_taken(ports)
        if taken:
            listed = ", ".join(map(str, taken))
            raise StackError(f"port(s) {listed} taken by something we did not start")


def service_acl(prefix: str) -> str:
    """ACL rules of a user that may only touch `prefix:*` keys and channels, as the service does.

    Commands: what the projector, the API and the streams send (reads, writes, Lua by EVALSHA
    and SCRIPT LOAD, pub/sub, naming their connections); nothing of @admin or @dangerous.
    """
    return (
        f"~{prefix}:* &{prefix}:* "
        "+@read +@write +@scripting +@pubsub +@connection +@transaction "
        "-@admin -@dangerous +client|setname +client|id"
    )


@dataclass(frozen=True)
class RedisSecurity:
    """TLS from `tls` (no plaintext port) and ACL users; `default` is an admin with a password.

    `users` maps name to (password, ACL rules).
    """

    tls: TlsFiles
    admin_password: str
    users: dict[str, tuple[str, str]] = field(default_factory=dict)

    def config(self, port: int) -> str:
        """redis.conf lines for TLS on `port` and the users."""
        lines = [
            "port 0",
            f"tls-port {port}",
            f"tls-cert-file {self.tls.server_chain}",
            f"tls-key-file {self.tls.server_key}",
            f"tls-ca-cert-file {self.tls.ca}",
            "tls-auth-clients no",
            f"user default on >{self.admin_password} ~* &* +@all",
        ]
        lines += [f"user {name} reset on >{pw} {rules}" for name, (pw, rules) in self.users.items()]
        return "\n".join(lines) + "\n"


class RedisServer(Server):
    """Debian's redis-server with AOF on (`appendfsync` everysec by default)."""

    name = "redis"
    marker = b"redis-server"

    def __init__(
        self,
        home: Path,
        port: int,
        appendfsync: str = "everysec",
        security: RedisSecurity | None = None,
    ) -> None:
        super().__init__(home)
        self.port = port
        self.appendfsync = appendfsync
        self.security = security

    @property
    def url(self) -> str:
        """URL of database 0 (the admin's, with its password, when secured)."""
        if self.security is None:
            return f"redis://{HOST}:{self.port}/0"
        return f"rediss://default:{self.security.admin_password}@{HOST}:{self.port}/0"

    def url_for(self, user: str) -> str:
        """rediss:// URL of database 0 as the ACL user `user`."""
        assert self.security is not None, "only a secured server has users"
        password = self.security.users[user][0]
        return f"rediss://{user}:{password}@{HOST}:{self.port}/0"

    @property
    def data_dir(self) -> Path:
        """Where the AOF lives."""
        return self.home / "data"

    @property
    def ports(self) -> tuple[int, ...]:
        """Every port this server listens on."""
        return (self.port,)

    def config(self) -> str:
        """The text of its redis.conf."""
        return (
            f"bind {HOST}\nport {self.port}\nprotected-mode yes\ndaemonize no\n"
            f"dir {self.data_dir}\nappendonly yes\nappendfsync {self.appendfsync}\n"
            'save ""\n'
            # Our counter hashes stay listpack-encoded up to this size (see projector/keys.py).
            "hash-max-listpack-entries 512\n"
            "maxclients 10000\n" + (self.security.config(self.port) if self.security else "")
        )

    def start(self) -> bool:
        """Start unless it runs (same data on a restart); True when this call started it."""
        if self.pid():
            return False
        self._check_ports(*self.ports)
        try:
            binary = apt_install("redis-server", "redis-server")
        except StackError as error:
            raise StackError(f"{error}, or set REDIS_URL to a Redis you run") from None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.home / "redis.conf"
        conf.write_text(self.config())
        if self.security:
            conf.chmod(0o600)  # it holds the passwords
        logfile = self.home / "redis.log"
        self._spawn([binary, str(conf)], logfile)

        def ping() -> bool:
            with socket.create_connection((HOST, self.port), timeout=1) as raw:
                sock: socket.socket = raw
                if self.security:
                    context = ssl.create_default_context(cafile=str(self.security.tls.ca))
                    sock = context.wrap_socket(raw, server_hostname=HOST)
                sock.sendall(b"PING\r\n")
                # Secured, PING without AUTH is refused: that refusal is an answer too.
                return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))

        self._wait_ready(ping, 30, logfile)
        log(f"redis ready on {HOST}:{self.port} (pid {self.pid()})")
        return True
