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
    assert settings.admin_key is None


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
        {"issuer": ""},
    ],
)
def test_bad_settings(kwargs) -> None:
    with pytest.raises(ConfigurationError):
        Settings(**kwargs)


def test_non_numeric_port_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        settings_from_args([], environ={"ERRDISCOUNT_PORT": "eighty"})
