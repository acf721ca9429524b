"""A single-node Kafka (broker and controller, KRaft) of ours, from Maven Central's jars.

The jars are fetched with Maven through `scripts/kafka/pom.xml` into a cache folder that
outlives clones (`~/.cache/prc`); a broker's storage is formatted on its first start.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from config import Settings, StackSettings
from scripts.ports import HOST, check_ports, port_open
from scripts.processes import Server, StackError, log
from scripts.tls import TlsFiles

ROOT = Path(__file__).resolve().parent.parent
POM = ROOT / "scripts" / "kafka" / "pom.xml"
CACHE = StackSettings.from_env().cache_dir


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


SCRAM = "SCRAM-SHA-512"


def _pem_property(path: Path) -> str:
    """A PEM file as one properties value (Java reads `\\n` as a line break)."""
    return path.read_text().strip().replace("\n", "\\n")


@dataclass(frozen=True)
class KafkaSecurity:
    """A SASL_SSL listener: TLS from `tls`, SCRAM-SHA-512 users created at format time.

    The controller listener stays PLAINTEXT on loopback. `users` maps name to password; the
    broker's own inter-broker user is `broker` and must be among them.
    """

    tls: TlsFiles
    users: dict[str, str] = field(default_factory=dict)
    client_auth: bool = False  # require a client certificate (mutual TLS) as well

    def properties(self) -> list[str]:
        """The broker's TLS and SASL settings."""
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="broker" password="{self.users["broker"]}";'
        )
        return [
            f"sasl.enabled.mechanisms={SCRAM}",
            f"sasl.mechanism.inter.broker.protocol={SCRAM}",
            f"listener.name.sasl_ssl.{SCRAM.lower()}.sasl.jaas.config={jaas}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.certificate.chain={_pem_property(self.tls.server_chain)}",
            f"ssl.keystore.key={_pem_property(self.tls.server_key)}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.certificates={_pem_property(self.tls.ca)}",
            f"listener.name.sasl_ssl.ssl.client.auth={'required' if self.client_auth else 'none'}",
        ]

    def format_args(self) -> list[str]:
        """StorageTool arguments that create the SCRAM users."""
        args = []
        for name, password in self.users.items():
            args += ["--add-scram", f"{SCRAM}=[name={name},password={password}]"]
        return args

    def client_settings(self, bootstrap: str, user: str) -> Settings:
        """Settings of a client that connects as `user` (the client certificate included)."""
        return Settings(
            kafka_bootstrap_servers=bootstrap,
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism=SCRAM,
            kafka_sasl_username=user,
            kafka_sasl_password=self.users[user],
            kafka_ssl_cafile=str(self.tls.ca),
            kafka_ssl_certfile=str(self.tls.client_chain) if self.client_auth else None,
            kafka_ssl_keyfile=str(self.tls.client_key) if self.client_auth else None,
        )


class KafkaBroker(Server):
    """A single-node Kafka (broker and controller, KRaft) from the cached Maven jars."""

    name = "kafka"
    marker = "kafka.Kafka"

    def __init__(
        self,
        home: Path,
        port: int,
        controller_port: int,
        partitions: int = 6,
        heap: str = "768m",
        security: KafkaSecurity | None = None,
    ) -> None:
        super().__init__(home)
        self.port, self.controller_port = port, controller_port
        self.partitions, self.heap = partitions, heap
        self.security = security

    @property
    def bootstrap_servers(self) -> str:
        """host:port for clients."""
        return f"{HOST}:{self.port}"

    @property
    def listener(self) -> str:
        """The client listener's name, which is also its security protocol."""
        return "PLAINTEXT" if self.security is None else "SASL_SSL"

    def _config(self) -> Path:
        listen, control = f"{HOST}:{self.port}", f"{HOST}:{self.controller_port}"
        name = self.listener
        props = self.home / "server.properties"
        props.touch(mode=0o600)  # a secured broker's file holds its SCRAM password
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers={control}",
                    f"listeners={name}://{listen},CONTROLLER://{control}",
                    f"advertised.listeners={name}://{listen}",
                    "controller.listener.names=CONTROLLER",
                    f"inter.broker.listener.name={name}",
                    f"listener.security.protocol.map=CONTROLLER:PLAINTEXT,{name}:{name}",
                    *(self.security.properties() if self.security else []),
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

        from events.connections import kafka_config

        if not port_open(self.port):
            return False  # kafka-python 3.0.12 leaks the socket of a refused connection

        target: Settings | str = self.bootstrap_servers
        if self.security is not None:
            target = self.security.client_settings(self.bootstrap_servers, "broker")
        admin = KafkaAdminClient(
            **kafka_config(target),
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
        check_ports(self.port, self.controller_port)
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
                 "-c", str(props), "--standalone", "-g",
                 *(self.security.format_args() if self.security else [])],
                check=True,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
        logfile = self.home / "kafka.out"
        self._spawn([*jvm, "kafka.Kafka", str(props)], logfile)
        self._wait_ready(self.answers, 120, logfile)
        log(f"kafka ready on {self.bootstrap_servers} (pid {self.pid()})")
        return True
