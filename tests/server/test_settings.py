"""Settings from flags and ERRDISCOUNT_* variables."""

from __future__ import annotations

import pytest

from errdiscount_sdk import ConfigurationError
from server_stub._settings import Settings, settings_from_args


def test_defaults() -> None:
    settings = settings_from_args([], environ={})
    assert (settings.host, settings.port, settings.database) == (
        "127.0.0.1",
        8000,
        "sqlite:///errdiscount.db",
    )
    assert settings.audience == "errdiscount"
    assert settings.admin_key == ()


def test_flags_win_over_environment_and_lists_repeat() -> None:
    env = {
        "ERRDISCOUNT_PORT": "9000",
        "ERRDISCOUNT_HOST": "0.0.0.0",
        "ERRDISCOUNT_CORS_ORIGIN": "https://a.example https://b.example",
        "ERRDISCOUNT_ACCESS_LOG": "0",
    }
    settings = settings_from_args(
        ["--port", "9100", "--app-key", "k" * 16, "--app-key", "j" * 16], environ=env
    )
    assert settings.port == 9100
    assert settings.host == "0.0.0.0"
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.app_keys == ("k" * 16, "j" * 16)
    assert settings.access_log is False


def test_secrets_stay_out_of_repr() -> None:
    settings = Settings(admin_key="super-secret-admin-key", app_keys=("another-secret-key",))
    assert "super-secret" not in repr(settings)
    assert "another-secret" not in repr(settings)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"port": 70000},
        {"admin_key": "short"},
        {"cors_origins": ("shop.example",)},
        {"public_url": "ftp://x"},
        {"rate_burst": 0},
        {"rate_burst": 0.5},
        {"rate_burst": float("nan")},
        {"rate_ip_per_minute": float("nan")},
        {"rate_ip_per_minute": float("inf")},
        {"rate_subject_per_minute": float("-inf")},
        {"rate_subject_per_minute": True},
        {"workers": 0},
        {"workers": 2.5},
        {"database": "mysql://db/x"},
        {"database": "sqlite:///:memory:"},
        {"database": "sqlite://relative.db"},
        {"issuer": ""},
    ],
)
def test_bad_settings(kwargs) -> None:
    with pytest.raises(ConfigurationError):
        Settings(**kwargs)


def test_non_numeric_port_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        settings_from_args([], environ={"ERRDISCOUNT_PORT": "eighty"})


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--rate-ip", "nan"], "--rate-ip"),
        (["--rate-ip", "inf"], "--rate-ip"),
        (["--rate-subject", "1e999"], "--rate-subject"),
        (["--rate-burst", "0.5"], "--rate-burst"),
    ],
)
def test_non_finite_rates_and_small_bursts_name_their_flag(argv, flag) -> None:
    with pytest.raises(ConfigurationError, match=flag):
        settings_from_args(argv, environ={})


def every_setting_changed() -> Settings:
    """A Settings whose every field differs from its default."""
    return Settings(
        host="0.0.0.0",
        port=8123,
        database="postgresql://app@db.internal/redeem",
        signing_key="/etc/errdiscount/key.pem",
        trusted_jwks=("/etc/errdiscount/old.jwks", "partner|https://partner.example/jwks"),
        issuer="https://pay.example",
        audience="shop",
        admin_key=("ops=admin-key-0123456789", "admin-key-bare-0123456789"),
        app_keys=("app-key-a-0123456789", "app-key-b-0123456789"),
        cors_origins=("https://shop.example", "https://m.shop.example"),
        public_url="https://pay.example/base",
        frame_ancestors=("https://shop.example", "'self'"),
        demo=True,
        rate_ip_per_minute=123.5,
        rate_subject_per_minute=0.25,
        rate_burst=7.0,
        policy="/etc/errdiscount/policy.toml",
        access_log=False,
        workers=3,
        log_format="json",
        event_retention_days=7,
        rollup_retention_days=90,
        outbox_retention_days=14,
        daily_rollup_retention_days=730,
        webhook_urls=("https://crm.example/hooks", "https://crm.example/hooks"),
        webhook_secrets=("whsec_" + "A" * 32, "whsec_" + "B" * 32),
        amqp_url="amqp://guest:guest@mq.internal:5672/",
        amqp_exchange="compensations",
        webhook_retry_schedule=(1.5, 60.0),
        allow_private_webhooks=True,
        dispatch=False,
        outbox_lease=12.5,
        detector_interval=2.5,
        auto_compensate="on",
    )


def test_the_worker_environment_rebuilds_every_setting() -> None:
    import attrs

    from server_stub._settings import worker_environment

    changed = every_setting_changed()
    defaults = Settings()
    for field in attrs.fields(Settings):
        assert getattr(changed, field.name) != getattr(defaults, field.name), field.name
    env = worker_environment(changed)
    assert settings_from_args([], environ=env) == changed
    # A stale variable of the parent's environment cannot override an unset setting.
    stale = {"ERRDISCOUNT_PUBLIC_URL": "https://stale.example", "ERRDISCOUNT_DEMO": "1"}
    stale.update(worker_environment(Settings()))  # as _serve_workers updates os.environ
    assert settings_from_args([], environ=stale) == Settings()


def test_the_worker_environment_refuses_what_it_cannot_forward() -> None:
    from server_stub._settings import worker_environment

    with pytest.raises(ConfigurationError, match="whitespace"):
        worker_environment(Settings(trusted_jwks=["/keys/my keys.jwks"]))


def test_detector_flags_and_their_defaults() -> None:
    settings = settings_from_args(
        ["--detector-interval", "0", "--auto-compensate", "off"], environ={}
    )
    assert (settings.detector_interval, settings.auto_compensate) == (0.0, "off")
    defaults = settings_from_args([], environ={})
    assert (defaults.detector_interval, defaults.auto_compensate) == (30.0, "dry-run")
    with pytest.raises(ConfigurationError, match="auto-compensate"):
        settings_from_args(["--auto-compensate", "yes"], environ={})
    with pytest.raises(ConfigurationError, match="detector interval"):
        settings_from_args(["--detector-interval", "-1"], environ={})


def test_event_retention_and_named_app_keys() -> None:
    settings = settings_from_args(
        ["--event-retention-days", "7", "--app-key", "shop=" + "k" * 16],
        environ={"ERRDISCOUNT_ROLLUP_RETENTION_DAYS": "90"},
    )
    assert (settings.event_retention_days, settings.rollup_retention_days) == (7, 90)
    assert settings_from_args([], environ={}).event_retention_days == 30
    assert settings_from_args([], environ={}).rollup_retention_days == 400
    from server_stub.web._named_keys import parse_named_keys

    keys = parse_named_keys(
        ["shop=" + "k" * 16, "j" * 16, "YWJjZGVmZ2hpamtsbW5vcA=="], default="app", what="app key"
    )
    assert [k.name for k in keys] == ["shop", "app", "app"]
    assert keys[2].key == "YWJjZGVmZ2hpamtsbW5vcA=="  # a base64 key stays whole
    assert "k" * 16 not in repr(keys)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event_retention_days": 0},
        {"event_retention_days": 30, "rollup_retention_days": 10},
        {"rollup_retention_days": 40_000},
        {"rollup_retention_days": 2000},
        {"rollup_retention_days": 400, "daily_rollup_retention_days": 40_000},
        {"app_keys": ("a=" + "k" * 16, "b=" + "k" * 16)},
        {"app_keys": ("short",)},
    ],
)
def test_bad_event_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Settings(**kwargs)  # type: ignore[arg-type]
