"""The one settings module: env beats defaults, bad values fail at start-up."""

from __future__ import annotations

import pytest

from events.settings import ConfigError, Settings


def test_defaults_are_the_spec_defaults() -> None:
    s = Settings.from_env({})
    assert (s.kafka_bootstrap_servers, s.redis_url, s.record_events_topic) == (
        "127.0.0.1:9092",
        "redis://127.0.0.1:6379/0",
        "record-events",
    )
    assert (s.count_grace_seconds, s.port, s.api_token, s.cors_origins) == (300, 8000, None, ())
    assert s.dlq_topic == "record-events.dlq"


def test_environment_overrides_and_parses() -> None:
    s = Settings.from_env(
        {
            "RECORD_EVENTS_TOPIC": "t",
            "COUNT_GRACE_SECONDS": "5",
            "API_TOKEN": "sekret",
            "CORS_ORIGINS": "https://a.example, https://b.example,",
            "LOG_LEVEL": "debug",
        }
    )
    assert s.dlq_topic == "t.dlq" and s.count_grace_seconds == 5 and s.api_token == "sekret"
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert s.log_level == "DEBUG"


def test_round_trips_through_the_environment() -> None:
    s = Settings.from_env({"API_TOKEN": "x", "CORS_ORIGINS": "https://a.example", "PORT": "9"})
    assert Settings.from_env(s.to_env()) == s


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "0"),
        ("COUNT_GRACE_SECONDS", "-1"),
        ("SSE_MAX_STREAMS", "0"),
        ("DEDUP_WINDOW_SECONDS", "1.5"),
        ("PROJECTOR_ASSIGNOR", "sticky"),
    ],
)
def test_bad_values_fail_at_start_up(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize("name", ["range", "roundrobin", "cooperative-sticky"])
def test_every_assignor_is_accepted(name: str) -> None:
    assert Settings.from_env({"PROJECTOR_ASSIGNOR": name}).projector_assignor == name
