"""Trusted proxies: ``X-Forwarded-*`` honoured only from proxies we trust.

Off by default.  ``trusted_proxies`` is either a hop count (like Werkzeug's
``ProxyFix(x_for=n, x_proto=n, x_host=n, x_port=n)``: the n-th value from
the right of each header is the one our own proxies wrote) or a list of proxy
addresses / CIDR networks that ``REMOTE_ADDR`` must belong to; then the
client is the right-most ``X-Forwarded-For`` entry that is not itself a
trusted proxy, and Proto/Host/Port are taken from the nearest proxy (the
right-most value).

The environ is rewritten once, ProxyFix-style (``REMOTE_ADDR``,
``wsgi.url_scheme``, ``HTTP_HOST``, ``SERVER_NAME``, ``SERVER_PORT``), so the
origin check, Engine.IO and Flask's ``request`` all see the same client.  The
original values are kept under ``environ["server.proxy.orig"]``.  Headers
that are not trusted are removed, so nothing downstream can trust them by
mistake (python-engineio's own origin check reads ``X-Forwarded-Host``).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from .errors import ConfigurationError
from .security_origin import OriginError, split_host_port

_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
            "HTTP_X_FORWARDED_PORT", "HTTP_FORWARDED")
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ForwardedHeaderError(ValueError):
    """A trusted proxy sent an ``X-Forwarded-*`` value we cannot use (→ 400)."""


def _fix_hint(value: Any, problem: str) -> ConfigurationError:
    return ConfigurationError(
        f"setting trusted_proxies={value!r} is invalid: {problem}. Fix: pass "
        f"trusted_proxies=1 (the number of proxies in front of the server) or a list of "
        f"proxy addresses/networks such as ['127.0.0.1', '10.0.0.0/8'], or set "
        f"SERVER_TRUSTED_PROXIES=1 or SERVER_TRUSTED_PROXIES=10.0.0.0/8,127.0.0.1")


class ProxyTrust:
    """Which ``X-Forwarded-*`` headers to believe, and the environ rewrite."""

    def __init__(self, hops: int = 0, networks: Sequence[_Network] = ()) -> None:
        self.hops = hops
        self.networks = tuple(networks)

    @classmethod
    def from_setting(cls, value: Any) -> ProxyTrust:
        """Parse ``trusted_proxies`` (None, an int, a comma list or a list)."""
        if value is None or value is False or value == 0 or value == "":
            return cls()
        if isinstance(value, str):
            text = value.strip()
            if text.isdigit():
                value = int(text)
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        if isinstance(value, bool):
            raise _fix_hint(value, "must be a hop count or a list of addresses")
        if isinstance(value, int):
            if value < 0:
                raise _fix_hint(value, "a hop count cannot be negative")
            return cls(hops=value)
        if not isinstance(value, (list, tuple, set, frozenset)) or not value:
            raise _fix_hint(value, "must be a hop count or a non-empty list of addresses")
        networks = []
        for item in value:
            try:
                networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
            except ValueError:
                raise _fix_hint(value, f"{item!r} is not an IP address or CIDR network") \
                    from None
        return cls(networks=networks)

    @property
    def enabled(self) -> bool:
        return bool(self.hops or self.networks)

    def _trusted_ip(self, text: str) -> bool:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    def _pick(self, environ: dict, key: str, client_side: bool = False) -> str | None:
        raw = environ.get(key)
        if raw is None:
            return None
        values = [v.strip() for v in raw.split(",")]
        if self.hops:
            return values[-self.hops] if len(values) >= self.hops else None
        if client_side:  # walk X-Forwarded-For from the right, past our proxies
            for candidate in reversed(values):
                if not self._trusted_ip(candidate):
                    return candidate
            return values[0]
        return values[-1]

    def apply(self, environ: dict) -> None:
        """Rewrite ``environ`` in place; raise ForwardedHeaderError on bad values."""
        orig = {key: environ[key] for key in ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST",
                                              "SERVER_NAME", "SERVER_PORT") if key in environ}
        environ["server.proxy.orig"] = orig
        trusted = self.hops > 0 or (self.networks and
                                    self._trusted_ip(environ.get("REMOTE_ADDR", "")))
        if not trusted:
            dropped = [key for key in _HEADERS if environ.pop(key, None) is not None]
            if dropped:  # kept for the refusal log's hint about trusted_proxies
                environ["server.proxy.ignored"] = dropped
            return
        client = self._pick(environ, "HTTP_X_FORWARDED_FOR", client_side=True)
        proto = self._pick(environ, "HTTP_X_FORWARDED_PROTO")
        host = self._pick(environ, "HTTP_X_FORWARDED_HOST")
        port = self._pick(environ, "HTTP_X_FORWARDED_PORT")
        if client is not None:
            try:
                environ["REMOTE_ADDR"] = str(ipaddress.ip_address(client))
            except ValueError:
                raise ForwardedHeaderError(
                    "X-Forwarded-For from a trusted proxy is not an IP address") from None
        if proto is not None:
            proto = proto.lower()
            if proto not in ("http", "https"):
                raise ForwardedHeaderError("X-Forwarded-Proto must be http or https")
            environ["wsgi.url_scheme"] = proto
        scheme = environ.get("wsgi.url_scheme", "http")
        if host is not None:
            try:
                name, port_number = split_host_port(host, scheme)
            except OriginError as e:
                raise ForwardedHeaderError(f"X-Forwarded-Host is not host[:port]: {e}") \
                    from None
            environ["HTTP_HOST"] = host.lower()
            environ["SERVER_NAME"] = name
            environ["SERVER_PORT"] = str(port_number)
        if port is not None:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise ForwardedHeaderError("X-Forwarded-Port is not a port number")
            name = environ.get("HTTP_HOST", environ.get("SERVER_NAME", ""))
            if name.startswith("[") and "]" in name:
                name = name[:name.index("]") + 1]
            else:
                name = name.partition(":")[0]
            environ["HTTP_HOST"] = f"{name}:{port}"
            environ["SERVER_PORT"] = port
