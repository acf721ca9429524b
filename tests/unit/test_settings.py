"""The one settings module: env beats defaults, bad values fail at start-up."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from config import FILE_VARIANTS, PROCESSES, ConfigError, Settings, mask_url


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


# -- secured connections ---------------------------------------------------------------------

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = (None, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
CREDENTIALS = {"KAFKA_SASL_USERNAME": "svc", "KAFKA_SASL_PASSWORD": "pw-1"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_every_protocol_and_mechanism_combination(protocol: str, mechanism: str | None) -> None:
    env = {"KAFKA_SECURITY_PROTOCOL": protocol.lower()}  # case does not matter
    if mechanism is not None:
        env |= {"KAFKA_SASL_MECHANISM": mechanism.lower()} | CREDENTIALS
    sasl = protocol.startswith("SASL_")
    if sasl == (mechanism is not None):
        s = Settings.from_env(env)
        assert (s.kafka_security_protocol, s.kafka_sasl_mechanism) == (protocol, mechanism)
        assert s.kafka_uses_sasl == sasl and s.kafka_uses_tls == protocol.endswith("SSL")
    elif sasl:
        with pytest.raises(ConfigError, match="needs KAFKA_SASL_MECHANISM"):
            Settings.from_env(env)
    else:
        with pytest.raises(ConfigError, match="does not use SASL"):
            Settings.from_env(env)


@pytest.mark.parametrize("mechanism", MECHANISMS[1:])
@pytest.mark.parametrize("missing", ["KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"])
def test_a_mechanism_without_credentials_fails(mechanism: str, missing: str) -> None:
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": mechanism}
    env |= {k: v for k, v in CREDENTIALS.items() if k != missing}
    with pytest.raises(ConfigError, match=f"{mechanism} needs KAFKA_SASL_USERNAME"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL must be one of"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI"},
            "KAFKA_SASL_MECHANISM must be one of",
        ),
        ({"KAFKA_SASL_USERNAME": "svc"}, "PLAINTEXT does not use SASL"),
        ({"KAFKA_SSL_CAFILE": "/etc/hostname"}, "KAFKA_SSL_CAFILE set but .* does not use TLS"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
            "KAFKA_SSL_CAFILE: no readable file at '/nonexistent/ca.pem'",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": "/nonexistent/c.pem"},
            "KAFKA_SSL_CERTFILE: no readable file",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "/etc/hostname"},
            "KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE",
        ),
        ({"REDIS_URL": "http://x:6379/0"}, "REDIS_URL must be a redis://, rediss://"),
        (
            {"REDIS_URL": "rediss://h:6380/0", "REDIS_SSL_CAFILE": "/nonexistent/ca.pem"},
            "REDIS_SSL_CAFILE: no readable file at '/nonexistent/ca.pem'",
        ),
        (
            {"REDIS_URL": "redis://h:6379/0", "REDIS_SSL_CAFILE": "/etc/hostname"},
            "REDIS_SSL_CAFILE is set but REDIS_URL is not a rediss:// URL",
        ),
    ],
)
def test_bad_security_settings_fail_at_start_up(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_tls_files_are_taken_when_readable(tmp_path: Path) -> None:
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    for path in files.values():
        path.write_text("-----BEGIN CERTIFICATE-----\n")
    s = Settings.from_env(
        {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CAFILE": str(files["ca"]),
            "KAFKA_SSL_CERTFILE": str(files["cert"]),
            "KAFKA_SSL_KEYFILE": str(files["key"]),
            "REDIS_URL": "rediss://svc:pw@h:6380/0",
            "REDIS_SSL_CAFILE": str(files["ca"]),
        }
    )
    assert (s.kafka_ssl_cafile, s.kafka_ssl_keyfile) == (str(files["ca"]), str(files["key"]))
    assert s.redis_uses_tls and s.redis_ssl_cafile == str(files["ca"])


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("API_TOKEN", "api_token"),
        ("KAFKA_SASL_USERNAME", "kafka_sasl_username"),
        ("KAFKA_SASL_PASSWORD", "kafka_sasl_password"),
        ("KAFKA_SSL_KEY_PASSWORD", "kafka_ssl_key_password"),
        ("REDIS_URL", "redis_url"),
    ],
)
def test_every_secret_can_come_from_a_file(tmp_path: Path, name: str, field: str) -> None:
    value = "rediss://svc:p%40ss@h:6380/0" if name == "REDIS_URL" else "s3cret value"
    secret = tmp_path / "secret"
    secret.write_text(value + "\n")  # as `echo` writes it: the newline is not part of it
    env = {f"{name}_FILE": str(secret)}
    if name.startswith("KAFKA_SASL"):
        env |= {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN"}
        env |= {k: "x" for k in CREDENTIALS if k != name}
    if name == "KAFKA_SSL_KEY_PASSWORD":
        cert = tmp_path / "cert.pem"
        cert.write_text("pem")
        env |= {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": str(cert)}
    assert getattr(Settings.from_env(env), field) == value


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), ("", "is empty"), ("\n", "is empty")],
)
def test_a_secret_file_that_cannot_serve_fails(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=f"API_TOKEN_FILE: .*{message}"):
        Settings.from_env({"API_TOKEN_FILE": str(path)})


def test_a_secret_and_its_file_together_fail(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("a")
    with pytest.raises(ConfigError, match="set API_TOKEN or API_TOKEN_FILE, not both"):
        Settings.from_env({"API_TOKEN": "b", "API_TOKEN_FILE": str(path)})


def test_repr_and_errors_never_show_a_secret() -> None:
    s = Settings.from_env(
        {
            "API_TOKEN": "tok-SECRET1",
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "svc",
            "KAFKA_SASL_PASSWORD": "pw-SECRET2",
            "REDIS_URL": "rediss://svc:pw-SECRET3@h:6380/0",
        }
    )
    shown = repr(s) + str(s)
    assert "SECRET" not in shown
    assert "rediss://svc:***@h:6380/0" in shown and "kafka_sasl_username='svc'" in shown
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"REDIS_URL": "http://svc:pw-SECRET4@h/0"})
    assert "SECRET" not in str(error.value) and "***" in str(error.value)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("rediss://svc:pw@h:6380/0", "rediss://svc:***@h:6380/0"),
        ("rediss://:pw@h:6380/0", "rediss://:***@h:6380/0"),
        ("redis://svc@h/0", "redis://svc@h/0"),
        ("redis://svc:p@ss:w@rd@h:6379/2", "redis://svc:***@h:6379/2"),
        ("redis://svc:pw@h:notaport/0", "redis://svc:***@h:notaport/0"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_secured_settings_round_trip_through_the_environment(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    s = Settings.from_env(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
            "KAFKA_SASL_USERNAME": "svc",
            "KAFKA_SASL_PASSWORD": "pw",
            "KAFKA_SSL_CAFILE": str(ca),
            "REDIS_URL": "rediss://svc:pw@h:6380/0",
            "REDIS_SSL_CAFILE": str(ca),
        }
    )
    assert Settings.from_env(s.to_env()) == s


def test_every_setting_and_secret_file_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    names = [f.name.upper() for f in fields(Settings)]
    names += [f"{name}_FILE" for name in FILE_VARIANTS]
    assert [name for name in names if f"`{name}" not in readme] == []


def test_a_child_gets_secrets_by_value_not_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    from scripts.harness import child_env

    monkeypatch.setenv("API_TOKEN_FILE", "/run/secrets/token")
    env = child_env(Settings.from_env({"API_TOKEN": "t"}))
    assert env["API_TOKEN"] == "t" and "API_TOKEN_FILE" not in env
    assert Settings.from_env(env).api_token == "t"


def test_every_setting_names_the_processes_that_read_it() -> None:
    for f in fields(Settings):
        read_by = f.metadata["read_by"]
        assert read_by and set(read_by) <= set(PROCESSES), f.name


def test_each_process_sees_its_own_settings_with_secrets_masked() -> None:
    s = Settings(api_token="t0ken", redis_url="redis://u:pw@h:6379/0", kafka_sasl_password=None)
    api, projector = s.of("api"), s.of("projector")
    assert api["PORT"] == 8000 and "PROJECTOR_MAX_BATCH" not in api
    assert projector["PROJECTOR_MAX_BATCH"] == 20000 and "PORT" not in projector
    assert "KAFKA_BOOTSTRAP_SERVERS" not in api  # the API never talks to Kafka
    assert api["API_TOKEN"] == "***" and api["REDIS_URL"] == "redis://u:***@h:6379/0"
    assert "t0ken" not in repr(s.of("api")) and "pw@" not in repr(s.of("rebuild"))
    with pytest.raises(ValueError, match="unknown process"):
        s.of("worker")


def test_the_readme_says_which_process_reads_each_setting() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    read_by = {f.name.upper(): set(f.metadata["read_by"]) for f in fields(Settings)}
    rows = [line.split(" | ") for line in readme.splitlines() if line.startswith("| `")]
    seen = set()
    for row in rows:
        names = [n for n in re.findall(r"`([A-Z_]+)`", row[0]) if n in read_by]
        if not names:
            continue
        seen.update(names)
        assert set(row[2].split(", ")) == set().union(*(read_by[n] for n in names)), row[0]
    assert seen == set(read_by)
