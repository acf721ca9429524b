"""A single-node Kafka (broker and controller, KRaft) of ours, from Maven Central's jars.

The jars are fetched with Maven through `scripts/kafka/pom.xml` into a cache folder that
outlives clones (`~/.cache/prc`); a broker's storage is formatted on its first start.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from scripts.servers import HOST, Server, StackError, log, port_open

ROOT = Path(__file__).resolve().parent.parent
POM = ROOT / "scripts" / "kafka" / "pom.xml"
CACHE = Path(os.environ.get("PRC_CACHE_DIR", Path.home() / ".cache" / "prc"))


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
        ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         "-DincludeScope=runtime", f"-DoutputDirectory={libs}"],
        check=True,
    )  # fmt: skip
    stamp.write_text(digest)
    return libs


class KafkaBroker(Server):
    """A single-node Kafka (broker and controller, KRaft) from the cached Maven jars."""

    name = "kafka"
    marker = b"kafka.Kafka"

    def __init__(
        self,
        home: Path,
        port: int,
        controller_port: int,
        partitions: int = 6,
        heap: str = "768m",
    ) -> None:
        super().__init__(home)
        self.port, self.controller_port = port, controller_port
        self.partitions, self.heap = partitions, heap

    @property
    def bootstrap_servers(self) -> str:
        """host:port for clients."""
        return f"{HOST}:{self.port}"

    def _config(self) -> Path:
        listen, control = f"{HOST}:{self.port}", f"{HOST}:{self.controller_port}"
        props = self.home / "server.properties"
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers={control}",
                    f"listeners=PLAINTEXT://{listen},CONTROLLER://{control}",
                    f"advertised.listeners=PLAINTEXT://{listen}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={self.home / 'data'}",
                    f"num.partitions={self.partitions}",
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
        (self.home / "log4j2.properties").write_text(
            "status = warn\n"
            "appender.file.type = File\nappender.file.name = FILE\n"
            f"appender.file.fileName = {self.home / 'server.log'}\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = INFO\nrootLogger.appenderRef.file.ref = FILE\n"
            "logger.kafka.name = kafka\nlogger.kafka.level = INFO\n"
            "logger.apache.name = org.apache.kafka\nlogger.apache.level = WARN\n"
        )
        return props

    def answers(self) -> bool:
        """Whether the broker serves metadata requests now."""
        from kafka import KafkaAdminClient

        if not port_open(self.port):
            return False  # kafka-python 3.0.12 leaks the socket of a refused connection

        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers,
            request_timeout_ms=5000,
            client_id="stack-readiness",
        )
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()

    def start(self) -> bool:
        """Start unless it runs (formatting the storage once); True when this call started it."""
        if self.pid():
            return False
        self._check_ports(self.port, self.controller_port)
        libs = kafka_libs()
        java = shutil.which("java")
        if java is None:
            raise StackError("Java 17+ is needed to run the Kafka broker")
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        props = self._config()
        tmp = self.home / "tmp"
        tmp.mkdir(exist_ok=True)
        jvm = [
            java, "-Xms256m", f"-Xmx{self.heap}", "-XX:+UseG1GC", f"-Djava.io.tmpdir={tmp}",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}", "-cp", f"{libs}/*",
        ]  # fmt: skip
        if not (self.home / "data" / "meta.properties").exists():
            log("formatting Kafka storage")
            subprocess.run(
                [*jvm, "kafka.tools.StorageTool", "format", "-t", uuid.uuid4().hex[:22],
                 "-c", str(props), "--standalone", "-g"],
                check=True,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
        logfile = self.home / "kafka.out"
        self._spawn([*jvm, "kafka.Kafka", str(props)], logfile)
        self._wait_ready(self.answers, 120, logfile)
        log(f"kafka ready on {self.bootstrap_servers} (pid {self.pid()})")
        return True
