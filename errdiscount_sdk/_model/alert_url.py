"""`AlertUrlPolicy`: which ``alert_url`` values may be fetched or shown.

An ``alert_url`` arrives in an error body, so an attacker who controls (or
injects into) that body controls the URL. The policy is an allow-list: the
scheme must be https (http only for hosts explicitly allowed to use it) and
the host must be *exactly* one of the allowed hosts. Everything a browser and
Python's `urllib.parse` might read differently is refused outright:
backslashes, control characters, whitespace, userinfo.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable

import attrs

from .errors import ConfigurationError, UnsafeAlertUrl

__all__ = ["AlertUrlPolicy"]

DEFAULT_MAX_URL_LENGTH = 2048

# Anything outside printable ASCII (after IDNA hosts are written as punycode)
# is refused: it covers control characters, whitespace and look-alike tricks.
_PRINTABLE_ASCII_NO_SPACE = re.compile(r"[!-~]+")
_HOST_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def _normalise_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if not host or len(host) > 253:
        raise ConfigurationError(f"allowed host {host!r} is not a valid host name")
    if host.startswith("[") and host.endswith("]"):
        return host  # an IPv6 literal, compared as written
    if not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
        raise ConfigurationError(
            f"allowed host {host!r} is not a valid host name (write IDN hosts in punycode)"
        )
    return host


def _host_set(hosts: Iterable[str]) -> frozenset[str]:
    if isinstance(hosts, str):
        raise ConfigurationError("allowed_hosts must be a collection of host names, not a str")
    return frozenset(_normalise_host(host) for host in hosts)


@attrs.frozen
class AlertUrlPolicy:
    """An allow-list for alert URLs found in error payloads.

    Args:
        allowed_hosts: exact host names (no wildcards, no suffix matching).
        require_https: when True (the default) only ``https`` URLs pass, except
            for hosts listed in ``http_allowed_hosts``.
        http_allowed_hosts: hosts that may also use plain ``http`` (for local
            development such as ``127.0.0.1``); must be in ``allowed_hosts``.
        allowed_ports: ports that may be named explicitly; the scheme's
            default port is always allowed. None allows any port.
        max_length: longest URL accepted, in characters.

    Raises:
        ConfigurationError: an allowed host is not a valid host name.
    """

    allowed_hosts: frozenset[str] = attrs.field(converter=_host_set)
    require_https: bool = True
    http_allowed_hosts: frozenset[str] = attrs.field(default=frozenset(), converter=_host_set)
    allowed_ports: frozenset[int] | None = attrs.field(
        default=None, converter=attrs.converters.optional(frozenset)
    )
    max_length: int = DEFAULT_MAX_URL_LENGTH

    @http_allowed_hosts.validator
    def _check_http_hosts(self, _: attrs.Attribute[frozenset[str]], value: frozenset[str]) -> None:
        if not value <= self.allowed_hosts:
            raise ConfigurationError("http_allowed_hosts must also be in allowed_hosts")

    def is_allowed(self, url: object) -> bool:
        """True when `check` would accept ``url``. Never raises."""
        try:
            self.check(url)
        except UnsafeAlertUrl:
            return False
        return True

    def check(self, url: object) -> str:
        """Return ``url`` unchanged if the policy allows it.

        Raises:
            UnsafeAlertUrl: with a short ``reason``: ``type``, ``length``,
                ``characters``, ``scheme``, ``userinfo``, ``host``, ``port``.
        """
        if not isinstance(url, str):
            raise UnsafeAlertUrl(repr(url), "type")
        if len(url) > self.max_length:
            raise UnsafeAlertUrl(url, "length")
        if not _PRINTABLE_ASCII_NO_SPACE.fullmatch(url) or "\\" in url:
            raise UnsafeAlertUrl(url, "characters")
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:
            raise UnsafeAlertUrl(url, "host") from None
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http"):
            raise UnsafeAlertUrl(url, "scheme")
        # The authority must follow "scheme://" literally: "https:evil.example"
        # or "https:/evil" are read differently by different parsers.
        if not url[len(parts.scheme) :].startswith("://"):
            raise UnsafeAlertUrl(url, "scheme")
        if "@" in parts.netloc:
            raise UnsafeAlertUrl(url, "userinfo")
        host = (parts.hostname or "").rstrip(".")
        if parts.netloc.startswith("["):
            host = f"[{host}]"
        if not host or host not in self.allowed_hosts:
            raise UnsafeAlertUrl(url, "host")
        if scheme == "http" and self.require_https and host not in self.http_allowed_hosts:
            raise UnsafeAlertUrl(url, "scheme")
        if port is not None and self.allowed_ports is not None and port not in self.allowed_ports:
            default = 443 if scheme == "https" else 80
            if port != default:
                raise UnsafeAlertUrl(url, "port")
        return url
