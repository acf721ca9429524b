"""Debian's redis-server as a server of ours: AOF on, optionally TLS-only with ACL users.

`scripts/stack.py` runs one for `make run` / `make test`; the reliability drills and the
benches run private ones on free ports; `scripts/redis_cluster.py` runs N of them in cluster
mode. Each is started, stopped and killed by its recorded pid (`scripts/processes.py`).
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from scripts.apt import apt_install
from scripts.ports import HOST, check_ports
from scripts.processes import Server, StackError, log

if TYPE_CHECKING:
    from scripts.tls import TlsFiles


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
    marker = "redis-server"

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
        check_ports(*self.ports)
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
