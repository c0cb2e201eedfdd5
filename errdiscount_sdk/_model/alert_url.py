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
# The whole authority as browsers (WHATWG) read it, userinfo already refused: a
# reg-name or a bracketed IPv6 literal, then nothing but an optional ":port".
# "[::1]evil.com" is no host a browser would open; urllib.parse reads it as ::1.
_AUTHORITY = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[^\[\]:/]+))(?::(?P<port>[0-9]*))?"
)


def _ipv6_literal(text: str) -> str | None:
    """The canonical ``[addr]`` form of an IPv6 literal, or None if ``text`` is not one."""
    import ipaddress  # rare in alert URLs: not loaded at import time

    try:
        return f"[{ipaddress.IPv6Address(text).compressed}]"
    except ValueError:
        return None


def _normalise_host(host: object) -> str:
    if not isinstance(host, str):
        raise ConfigurationError(f"allowed host {host!r} is not a str")
    host = host.strip().lower().rstrip(".")
    if not host or len(host) > 253:
        raise ConfigurationError(f"allowed host {host!r} is not a valid host name")
    if host.startswith("[") and host.endswith("]"):
        literal = _ipv6_literal(host[1:-1])
        if literal is None:
            raise ConfigurationError(f"allowed host {host!r} is not a valid IPv6 literal")
        return literal
    if not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
        raise ConfigurationError(
            f"allowed host {host!r} is not a valid host name (write IDN hosts in punycode)"
        )
    return host


def _host_set(hosts: Iterable[str]) -> frozenset[str]:
    if isinstance(hosts, str | bytes) or not isinstance(hosts, Iterable):
        raise ConfigurationError(
            f"allowed_hosts must be a collection of host names, got {type(hosts).__name__}"
        )
    return frozenset(_normalise_host(host) for host in hosts)


def _port_set(ports: object) -> frozenset[int] | None:
    if ports is None:
        return None
    if isinstance(ports, str | bytes) or not isinstance(ports, Iterable):
        raise ConfigurationError(
            f"allowed_ports must be a collection of ports or None, got {type(ports).__name__}"
        )
    checked = frozenset(ports)
    for port in checked:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigurationError(f"allowed port {port!r} is not a port number")
    return checked


def _length(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"max_length must be an int >= 1, got {value!r}")


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
        ConfigurationError: ``allowed_hosts`` is not a collection of valid host
            names (IPv6 literals in brackets, compared in canonical form), or
            another argument is of the wrong type.
    """

    allowed_hosts: frozenset[str] = attrs.field(converter=_host_set)
    require_https: bool = True
    http_allowed_hosts: frozenset[str] = attrs.field(default=frozenset(), converter=_host_set)
    allowed_ports: frozenset[int] | None = attrs.field(default=None, converter=_port_set)
    max_length: int = attrs.field(default=DEFAULT_MAX_URL_LENGTH, validator=_length)

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
        authority = _AUTHORITY.fullmatch(parts.netloc)
        if authority is None:
            raise UnsafeAlertUrl(url, "host")
        if authority["ipv6"] is not None:
            host = _ipv6_literal(authority["ipv6"]) or ""
        else:
            host = authority["name"].lower().rstrip(".")
        if not host or host not in self.allowed_hosts:
            raise UnsafeAlertUrl(url, "host")
        if scheme == "http" and self.require_https and host not in self.http_allowed_hosts:
            raise UnsafeAlertUrl(url, "scheme")
        if port is not None and self.allowed_ports is not None and port not in self.allowed_ports:
            default = 443 if scheme == "https" else 80
            if port != default:
                raise UnsafeAlertUrl(url, "port")
        return url
