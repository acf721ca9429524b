"""Server processes of ours on given ports and a given home folder: the names in one place.

Each server runs in its own session, its pid (and start time) recorded in `<home>/<name>.pid`,
and is stopped (SIGTERM), killed (SIGKILL) and restarted by that pid, never by name
(`scripts/processes.py`); a port already taken is reported with who holds it, not fought
over (`scripts/ports.py`). The servers: Redis (`scripts/redis_server.py`), a Redis Cluster
of them (`scripts/redis_cluster.py`) and the Kafka broker (`scripts/kafka_broker.py`).
`scripts/stack.py` runs the default pair for `make run` / `make test`; the reliability drills
run private ones on free ports.
"""

from scripts.apt import apt_install
from scripts.ports import HOST, check_ports, held_by, holder, port_open, ports_taken
from scripts.processes import Server, StackError, log, running
from scripts.redis_server import RedisSecurity, RedisServer, service_acl

__all__ = [
    "HOST",
    "RedisSecurity",
    "RedisServer",
    "Server",
    "StackError",
    "apt_install",
    "check_ports",
    "held_by",
    "holder",
    "log",
    "port_open",
    "ports_taken",
    "running",
    "service_acl",
]
