"""docker-compose.yml cannot run here (no Docker engine): check its shape instead."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_names_every_service_the_readme_mentions() -> None:
    readme = (ROOT / "README.md").read_text()
    assert set(SERVICES) == {"kafka", "redis", "topic-init", "projector", "api"}
    for name in SERVICES:
        assert f"`{name}`" in readme, f"README does not mention compose service {name}"


@pytest.mark.parametrize("name", ["kafka", "redis", "projector", "api"])
def test_long_running_services_have_healthchecks(name: str) -> None:
    check = SERVICES[name]["healthcheck"]
    assert check["test"] and check["interval"]


def test_kafka_runs_kraft_single_node() -> None:
    kafka = SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1


def test_redis_has_aof_and_a_volume() -> None:
    redis = SERVICES["redis"]
    assert "--appendonly" in redis["command"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_topic_init_keeps_events_forever() -> None:
    script = SERVICES["topic-init"]["command"][0]
    assert "--topic record-events " in script and "--topic record-events.dlq " in script
    assert script.count("retention.ms=-1") == 2
    assert SERVICES["topic-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["projector", "api"])
def test_app_services_wait_for_their_dependencies(name: str) -> None:
    service = SERVICES[name]
    assert service["build"] == "."
    deps = service["depends_on"]
    assert deps["redis"]["condition"] == "service_healthy"
    assert deps["topic-init"]["condition"] == "service_completed_successfully"
    assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_dockerfile_installs_the_three_packages() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("api", "projector", "events"):
        assert f"COPY {package} ./{package}" in dockerfile
