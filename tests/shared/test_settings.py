"""Settings: casts, validation messages naming the setting, sources and secret rotation, docs in sync."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.settings import Settings, parse_duration

ROOT = Path(__file__).resolve().parents[2]
BASE = {"REDIS_URL": "redis://127.0.0.1:6379/0", "WORKOS_WEBHOOK_SECRET": "secret_one_123"}


def test_defaults() -> None:
    s = Settings.from_env(BASE)
    assert (s.port, s.max_body_bytes, s.enqueue_timeout_s, s.reorder_window_s) == (8000, 1 << 20, 2.0, 5.0)
    assert (s.dedupe_ttl_s, s.retention_s, s.recovery_timeout_s) == (7 * 86400, 7 * 86400, 30.0)
    assert s.sources["workos"].tolerance_s == 180
    assert s.sources["workos"].secrets_at(0) == (b"secret_one_123",)
    assert (s.handoff_after_s, s.max_abandoned_threads) == (0.5, 4)
    assert (s.dead_letter_retention_s, s.dead_letter_limit) == (30 * 86400, 100_000)


def test_letters_outlive_events_by_default() -> None:
    s = Settings.from_env({**BASE, "HOOKYARD_RETENTION": "60d", "HOOKYARD_WORKER_THREADS": "1"})
    assert s.dead_letter_retention_s == 60 * 86400
    assert s.max_abandoned_threads == 1


@pytest.mark.parametrize(
    ("raw", "seconds"), [("180", 180), ("180s", 180), ("500ms", 0.5), ("5m", 300), ("2h", 7200), ("7d", 604800)]
)
def test_durations(raw: str, seconds: float) -> None:
    assert parse_duration("X", raw) == seconds


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"REDIS_URL": ""}, "REDIS_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"WORKOS_WEBHOOK_SECRET": ""}, "WORKOS_WEBHOOK_SECRET"),
        ({"WORKOS_WEBHOOK_SECRET": "short"}, "WORKOS_WEBHOOK_SECRET"),
        ({"WORKOS_WEBHOOK_SECRET": "long_enough_1@not-a-time"}, "WORKOS_WEBHOOK_SECRET"),
        ({"HOOKYARD_PORT": "eighty"}, "HOOKYARD_PORT"),
        ({"HOOKYARD_PORT": "70000"}, "HOOKYARD_PORT"),
        ({"HOOKYARD_REORDER_WINDOW": "soon"}, "HOOKYARD_REORDER_WINDOW"),
        ({"HOOKYARD_LOG_EVENTS": "maybe"}, "HOOKYARD_LOG_EVENTS"),
        ({"HOOKYARD_LOG_LEVEL": "loud"}, "HOOKYARD_LOG_LEVEL"),
        ({"HOOKYARD_SOURCES": "Bad Name"}, "HOOKYARD_SOURCES"),
        ({"HOOKYARD_SOURCES": "staging"}, "HOOKYARD_SOURCE_STAGING_SECRETS"),
        ({"HOOKYARD_OPS_PORT": "8000"}, "HOOKYARD_OPS_PORT"),
        ({"HOOKYARD_SWEEP_INTERVAL": "20s"}, "HOOKYARD_SWEEP_INTERVAL"),
        ({"HOOKYARD_MAX_ABANDONED_THREADS": "9"}, "HOOKYARD_MAX_ABANDONED_THREADS"),
        ({"HOOKYARD_DEAD_LETTER_LIMIT": "3"}, "HOOKYARD_DEAD_LETTER_LIMIT"),
        ({"HOOKYARD_INBOX_SHARDS": "0"}, "HOOKYARD_INBOX_SHARDS"),
        ({"HOOKYARD_INBOX_SHARDS": "65"}, "HOOKYARD_INBOX_SHARDS"),
        ({"HOOKYARD_MIN_REPLICAS": "-1"}, "HOOKYARD_MIN_REPLICAS"),
        # A cluster cannot carry Dramatiq's Redis broker: the wake-ups need a broker of their own.
        ({"REDIS_URL": "redis+cluster://127.0.0.1:7000"}, "HOOKYARD_BROKER_URL"),
        ({"HOOKYARD_RECONCILE_INTERVAL": "30s"}, "WORKOS_API_KEY"),
        ({"HOOKYARD_RECONCILE_INTERVAL": "200ms", "WORKOS_API_KEY": "sk_1"}, "HOOKYARD_RECONCILE_INTERVAL"),
        ({"HOOKYARD_RECONCILE_SINCE": "45d"}, "HOOKYARD_RECONCILE_SINCE"),
        ({"HOOKYARD_RECONCILE_SOURCE": "staging"}, "HOOKYARD_RECONCILE_SOURCE"),
        ({"WORKOS_BASE_URL": "api.workos.com"}, "WORKOS_BASE_URL"),
        ({"HOOKYARD_BROKER_URL": "kafka://broker:9092"}, "HOOKYARD_BROKER_URL"),
        ({"HOOKYARD_BROKER_URL": "rabbitmq.internal:5672"}, "HOOKYARD_BROKER_URL"),
        ({"HOOKYARD_BROKER_URL": "http://guest:guest@rabbit:15672"}, "HOOKYARD_BROKER_URL"),
        ({"HOOKYARD_BROKER_URL": "amqp://hy:pw@rabbit:56720000/%2F"}, "HOOKYARD_BROKER_URL"),
    ],
)
def test_invalid_settings_name_the_setting(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**BASE, **env})
    assert caught.value.setting == setting
    assert str(caught.value).startswith(setting)


def test_the_wake_up_broker_is_the_store_unless_set() -> None:
    # Given no HOOKYARD_BROKER_URL, the wake-ups share the store's Redis; built directly, the same
    assert Settings.from_env(BASE).broker_url == BASE["REDIS_URL"]
    assert Settings(redis_url="redis://store:6379/0", sources={}).broker_url == "redis://store:6379/0"
    # And every scheme of a Redis or a RabbitMQ is taken as given
    for url in (
        "redis://wakes:6379/1",
        "rediss://:pw@wakes:6380/0",
        "unix:///run/redis.sock",
        "amqp://hy:pw@rabbit:5672/%2F",
        "amqps://hy:pw@rabbit:5671/hookyard",
    ):
        assert Settings.from_env({**BASE, "HOOKYARD_BROKER_URL": url}).broker_url == url


def test_a_broker_error_does_not_show_the_url() -> None:
    # The message names the setting and the schemes, never the value (it may hold a password)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**BASE, "HOOKYARD_BROKER_URL": "http://hy:hunter2hunter2@rabbit:15672"})
    assert "hunter2" not in str(caught.value)
    assert "amqp://" in str(caught.value)


def test_missing_secret_is_allowed_only_when_not_required() -> None:
    env = {"REDIS_URL": BASE["REDIS_URL"]}
    assert Settings.from_env(env, require_secret=False).sources == {}


def test_extra_sources_with_their_own_secrets_and_tolerance() -> None:
    s = Settings.from_env(
        {
            **BASE,
            "HOOKYARD_SOURCES": "workos-staging",
            "HOOKYARD_SOURCE_WORKOS_STAGING_SECRETS": "staging_secret_1",
            "HOOKYARD_SOURCE_WORKOS_STAGING_TOLERANCE": "5m",
        }
    )
    assert s.sources["workos-staging"].secrets_at(0) == (b"staging_secret_1",)
    assert s.sources["workos-staging"].tolerance_s == 300


def test_secret_rotation_honours_expiry() -> None:
    s = Settings.from_env({**BASE, "WORKOS_WEBHOOK_SECRET": "old_secret_1@2026-12-01T00:00:00Z, new_secret_1"})
    expiry_ms = 1796083200000  # 2026-12-01T00:00:00Z
    assert s.sources["workos"].secrets_at(expiry_ms - 1) == (b"old_secret_1", b"new_secret_1")
    assert s.sources["workos"].secrets_at(expiry_ms) == (b"new_secret_1",)


def test_secrets_never_show_in_reprs() -> None:
    s = Settings.from_env({**BASE, "WORKOS_API_KEY": "sk_test_api_key_1"})
    assert "secret_one_123" not in repr(s)
    assert "sk_test_api_key_1" not in repr(s)


def test_reconcile_is_off_by_default_and_reads_the_sdk_settings() -> None:
    assert Settings.from_env(BASE).reconcile.interval_s == 0
    s = Settings.from_env(
        {
            **BASE,
            "WORKOS_API_KEY": "sk_test_1",
            "WORKOS_BASE_URL": "http://127.0.0.1:9999",
            "HOOKYARD_RECONCILE_INTERVAL": "1m",
            "HOOKYARD_RECONCILE_TYPES": "dsync.user.created, dsync.user.updated",
            "HOOKYARD_RECONCILE_ORGANIZATION": "org_1",
        }
    )
    config = s.reconcile
    assert config.api_key is not None and config.api_key.value == b"sk_test_1"
    assert (config.base_url, config.interval_s, config.settle_s, config.since_s) == (
        "http://127.0.0.1:9999", 60.0, 60.0, 86400.0,
    )  # fmt: skip
    assert (config.types, config.organization, config.source) == (
        ("dsync.user.created", "dsync.user.updated"), "org_1", "workos",
    )  # fmt: skip


def test_every_setting_read_is_documented() -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "shared").glob("*.py"))
    read = set(re.findall(r'"((?:HOOKYARD|WORKOS|REDIS)_[A-Z_]+)"', sources))
    read |= {"HOOKYARD_SOURCE_<NAME>_SECRETS", "HOOKYARD_SOURCE_<NAME>_TOLERANCE"}
    read -= {"HOOKYARD_SOURCE_"}
    documented = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(name for name in read if f"`{name}`" not in documented)
    assert not missing, f"settings missing from docs/configuration.md: {missing}"
    assert len(read) >= 20


def test_a_cluster_store_with_its_own_broker() -> None:
    env = {**BASE, "REDIS_URL": "redis+cluster://10.0.0.1:7000,10.0.0.2:7000", "HOOKYARD_BROKER_URL": "amqp://mq/",
           "HOOKYARD_INBOX_SHARDS": "8", "HOOKYARD_MIN_REPLICAS": "1"}  # fmt: skip
    settings = Settings.from_env(env)
    assert settings.redis_cluster
    assert (settings.inbox_shards, settings.min_replicas, settings.broker_url) == (8, 1, "amqp://mq/")
    assert not Settings.from_env(BASE).redis_cluster


def test_the_mirror_url_is_optional_and_must_be_a_sqlalchemy_url() -> None:
    assert Settings.from_env(BASE).mirror_url is None
    assert Settings.from_env({**BASE, "HOOKYARD_MIRROR_URL": " "}).mirror_url is None
    url = "postgresql+psycopg://hookyard:p%40ss@db:5432/hookyard"
    assert Settings.from_env({**BASE, "HOOKYARD_MIRROR_URL": url}).mirror_url == url
    with pytest.raises(ConfigError, match="HOOKYARD_MIRROR_URL"):
        Settings.from_env({**BASE, "HOOKYARD_MIRROR_URL": "db.internal/hookyard"})
