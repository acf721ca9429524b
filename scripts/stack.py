"""The local stack without Docker: a single-node Kafka (KRaft) and Redis with AOF.

Kafka's jars come from Maven Central through `scripts/kafka/pom.xml` into a cache folder
that outlives clones (`~/.cache/prc`); the storage is formatted once; Redis is Debian's
`redis-server`, installed with apt-get when missing. Every process is started in its own
session with its pid recorded under the state folder, and stopped by that pid.

    python -m scripts.stack start|stop|status
    python -m scripts.stack run -- CMD...  # start what is missing, run CMD, stop what it started
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POM = ROOT / "scripts" / "kafka" / "pom.xml"
STATE = Path(os.environ.get("PRC_STATE_DIR", ROOT / ".state"))
CACHE = Path(os.environ.get("PRC_CACHE_DIR", Path.home() / ".cache" / "prc"))
HOST = "127.0.0.1"
KAFKA_PORT = int(os.environ.get("STACK_KAFKA_PORT", "9092"))
CONTROLLER_PORT = int(os.environ.get("STACK_KAFKA_CONTROLLER_PORT", str(KAFKA_PORT + 1)))
REDIS_PORT = int(os.environ.get("STACK_REDIS_PORT", "6379"))
PARTITIONS = int(os.environ.get("STACK_TOPIC_PARTITIONS", "6"))
TOPIC = os.environ.get("RECORD_EVENTS_TOPIC", "record-events")
KAFKA_HEAP = os.environ.get("STACK_KAFKA_HEAP", "768m")


class StackError(RuntimeError):
    """A local service could not be installed, started or stopped."""


@dataclass(frozen=True)
class StackInfo:
    """Where the local services answer."""

    kafka_bootstrap_servers: str
    redis_url: str


def info() -> StackInfo:
    """The addresses of the local stack."""
    return StackInfo(f"{HOST}:{KAFKA_PORT}", f"redis://{HOST}:{REDIS_PORT}/0")


def log(message: str) -> None:
    """Progress for the person at the terminal."""
    print(f"[stack] {message}", file=sys.stderr, flush=True)


# -- processes ---------------------------------------------------------------------------


def _pidfile(name: str) -> Path:
    return STATE / name / f"{name}.pid"


def running_pid(name: str) -> int | None:
    """The pid of our running `name` service, or None."""
    path = _pidfile(name)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return None
    # A recycled pid belongs to something else: check it is still our command.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    marker = b"redis-server" if name == "redis" else b"kafka.Kafka"
    return pid if marker in cmdline else None


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _spawn(name: str, argv: list[str], logfile: Path) -> subprocess.Popen[bytes]:
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=logfile.parent,
        )
    _pidfile(name).write_text(str(proc.pid))
    return proc


def _stop(name: str, timeout: float = 30.0) -> bool:
    pid = running_pid(name)
    if pid is None:
        return False
    log(f"stopping {name} (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        log(f"{name} did not stop in {timeout:.0f}s; sending SIGKILL")
        os.kill(pid, signal.SIGKILL)
    _pidfile(name).unlink(missing_ok=True)
    return True


def _wait(what: str, check, timeout: float, logfile: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = logfile.read_text(errors="replace")[-3000:] if logfile.exists() else ""
            raise StackError(
                f"{what} exited ({proc.returncode}) during start-up; log {logfile}:\n{tail}"
            )
        try:
            if check():
                return
        except Exception as exc:  # any failure means "not ready yet"
            last = exc
        time.sleep(0.3)
    raise StackError(f"{what} not ready after {timeout:.0f}s ({last}); see {logfile}")


# -- Redis -------------------------------------------------------------------------------


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


def _redis_binary() -> str:
    try:
        return apt_install("redis-server", "redis-server")
    except StackError as error:
        raise StackError(f"{error}, or set REDIS_URL to a Redis you run") from None


def start_redis() -> bool:
    """Start Redis with AOF (everysec) unless ours runs; True when this call started it."""
    if running_pid("redis"):
        return False
    if _port_open(REDIS_PORT):
        raise StackError(
            f"port {REDIS_PORT} is taken by a Redis this stack did not start; set "
            "REDIS_URL to use it, or STACK_REDIS_PORT to run ours elsewhere"
        )
    binary = _redis_binary()
    home = STATE / "redis"
    (home / "data").mkdir(parents=True, exist_ok=True)
    conf = home / "redis.conf"
    conf.write_text(
        f"bind {HOST}\nport {REDIS_PORT}\nprotected-mode yes\ndaemonize no\n"
        f"dir {home / 'data'}\nappendonly yes\nappendfsync everysec\n"
        'save ""\n'
        # Our counter hashes stay listpack-encoded up to this size (see projector/keys.py).
        "hash-max-listpack-entries 512\n"
        "maxclients 10000\n"
    )
    logfile = home / "redis.log"
    proc = _spawn("redis", [binary, str(conf)], logfile)

    def ping() -> bool:
        with socket.create_connection((HOST, REDIS_PORT), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    _wait("redis", ping, 30, logfile, proc)
    log(f"redis ready on {HOST}:{REDIS_PORT} (pid {running_pid('redis')})")
    return True


# -- Kafka -------------------------------------------------------------------------------


def kafka_libs() -> Path:
    """The broker's jar folder, fetched with Maven into the cache once per pom."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    libs = CACHE / f"kafka-libs-{digest}"
    stamp = libs / ".complete"
    if stamp.exists():
        return libs
    if shutil.which("mvn") is None:
        raise StackError("Maven (mvn) is needed to fetch Kafka's jars; install Java 17+ and Maven")
    log(f"fetching Kafka jars from Maven Central into {libs} (first run only)")
    shutil.rmtree(libs, ignore_errors=True)
    subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ],
        check=True,
    )
    stamp.write_text(digest)
    return libs


def _kafka_config(home: Path) -> Path:
    props = home / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers={HOST}:{CONTROLLER_PORT}",
                f"listeners=PLAINTEXT://{HOST}:{KAFKA_PORT},CONTROLLER://{HOST}:{CONTROLLER_PORT}",
                f"advertised.listeners=PLAINTEXT://{HOST}:{KAFKA_PORT}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={home / 'data'}",
                f"num.partitions={PARTITIONS}",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=6",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "log.retention.ms=-1",
                "",
            ]
        )
    )
    (home / "log4j2.properties").write_text(
        "status = warn\n"
        "appender.file.type = File\nappender.file.name = FILE\n"
        f"appender.file.fileName = {home / 'server.log'}\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\nrootLogger.appenderRef.file.ref = FILE\n"
        "logger.kafka.name = kafka\nlogger.kafka.level = INFO\n"
        "logger.apache.name = org.apache.kafka\nlogger.apache.level = WARN\n"
    )
    return props


def _kafka_answers() -> bool:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=f"{HOST}:{KAFKA_PORT}",
        request_timeout_ms=5000,
        client_id="stack-readiness",
    )
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()


def start_kafka() -> bool:
    """Start the KRaft broker unless ours runs; True when this call started it."""
    if running_pid("kafka"):
        return False
    for port in (KAFKA_PORT, CONTROLLER_PORT):
        if _port_open(port):
            raise StackError(
                f"port {port} is taken by something this stack did not start; set "
                "KAFKA_BOOTSTRAP_SERVERS to use it, or STACK_KAFKA_PORT to run ours elsewhere"
            )
    libs = kafka_libs()
    java = shutil.which("java")
    if java is None:
        raise StackError("Java 17+ is needed to run the Kafka broker")
    home = STATE / "kafka"
    (home / "data").mkdir(parents=True, exist_ok=True)
    props = _kafka_config(home)
    cp = f"{libs}/*"
    tmp = home / "tmp"
    tmp.mkdir(exist_ok=True)
    jvm = [
        java,
        "-Xms256m",
        f"-Xmx{KAFKA_HEAP}",
        "-XX:+UseG1GC",
        f"-Djava.io.tmpdir={tmp}",
        f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
        "-cp",
        cp,
    ]
    if not (home / "data" / "meta.properties").exists():
        cluster_id = uuid.uuid4().hex[:22]
        log("formatting Kafka storage")
        subprocess.run(
            [
                *jvm,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(props),
                "--standalone",
                "-g",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    logfile = home / "kafka.out"
    proc = _spawn("kafka", [*jvm, "kafka.Kafka", str(props)], logfile)
    _wait("kafka", _kafka_answers, 120, logfile, proc)
    log(f"kafka ready on {HOST}:{KAFKA_PORT} (pid {running_pid('kafka')})")
    return True


def ensure_topics() -> None:
    """Create the record-events topic and its DLQ (retention forever)."""
    from events.topics import ensure_topics as create

    create(f"{HOST}:{KAFKA_PORT}", TOPIC, partitions=PARTITIONS)


# -- commands ----------------------------------------------------------------------------


def ensure_started() -> StackInfo:
    """Start whatever is not running yet; return the addresses."""
    start()
    return info()


def start() -> list[str]:
    """Start Redis and Kafka as needed (honouring REDIS_URL / KAFKA_BOOTSTRAP_SERVERS)."""
    started = []
    if not os.environ.get("REDIS_URL") and start_redis():
        started.append("redis")
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        if start_kafka():
            started.append("kafka")
        ensure_topics()
    return started


def stop(names: list[str] | None = None) -> None:
    """Stop our services by pid (Kafka first, so it can flush while Redis still runs)."""
    for name in names or ["kafka", "redis"]:
        _stop(name)


def status() -> dict[str, int | None]:
    """Which of our services run, by pid."""
    return {name: running_pid(name) for name in ("kafka", "redis")}


def _run_child(cmd: list[str], env: dict[str, str]) -> int:
    """Run cmd to its end; Ctrl-C reaches it directly, SIGTERM is passed on to it."""
    proc = subprocess.Popen(cmd, env=env)
    # The terminal's SIGINT goes to the whole process group, child included: wait for the
    # child to finish its own clean shutdown rather than dying half-way through ours.
    signal.signal(signal.SIGINT, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
    return proc.wait()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m scripts.stack", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "run", "test-deps"])
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "start":
        start()
        print(info())
    elif args.command == "stop":
        stop()
    elif args.command == "test-deps":
        # The browser test drives Debian's Chromium (no browser download is possible here).
        apt_install("chromium", "chromium")
    elif args.command == "status":
        for name, pid in status().items():
            print(f"{name}: {'running, pid ' + str(pid) if pid else 'stopped'}")
    else:
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            parser.error("run needs a command after --")
        started = start()
        env = dict(os.environ)
        env.setdefault("KAFKA_BOOTSTRAP_SERVERS", info().kafka_bootstrap_servers)
        env.setdefault("REDIS_URL", info().redis_url)
        try:
            return _run_child(cmd, env)
        finally:
            stop([name for name in ("kafka", "redis") if name in started])
    return 0


if __name__ == "__main__":
    sys.exit(main())
