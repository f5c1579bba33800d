"""Origins: parsing, normalising and matching (RFC 6454 serialised origins).

Invariants:

* an :class:`Origin` is always normalised: lower-case scheme and host, the
  port explicit (the scheme's default port filled in), so two origins are the
  same origin exactly when they compare equal;
* :func:`parse_origin` accepts only ``scheme://host[:port]``: no userinfo, no
  path (not even ``/``), no query, no fragment, no whitespace, at most
  :data:`MAX_ORIGIN_LENGTH` characters; everything else raises
  :class:`OriginError` with the reason a client is told;
* matching is equality of normalised origins and nothing else: no suffix,
  prefix or wildcard matching, so ``https://example.com.evil.com`` and
  ``http://example.com`` never match ``https://example.com``.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

MAX_ORIGIN_LENGTH = 256
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*\Z")
# a DNS-ish registered name: letters, digits, hyphens, underscores, dots
_REG_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?\.?\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+\Z")


class OriginError(ValueError):
    """An Origin (or allow-list entry, or Host) that is not a plain origin."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str  # lower case; IPv6 in brackets
    port: int

    def __str__(self) -> str:
        if DEFAULT_PORTS.get(self.scheme) == self.port:
            return f"{self.scheme}://{self.host}"
        return f"{self.scheme}://{self.host}:{self.port}"


def _check_host(host: str) -> str:
    if not host:
        raise OriginError("the host is empty")
    if host.startswith("["):
        if not host.endswith("]"):
            raise OriginError("an IPv6 host is not closed with ']'")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise OriginError("the IPv6 host is not an IPv6 address") from None
        return host
    if not _REG_NAME.match(host) or ".." in host:
        raise OriginError("the host has characters a host name cannot have")
    return host


def split_host_port(text: str, scheme: str) -> tuple[str, int]:
    """``host[:port]`` (as in a Host header) → normalised ``(host, port)``."""
    text = text.lower()
    if text.startswith("["):
        close = text.find("]")
        host, rest = text[:close + 1], text[close + 1:]
    else:
        host, colon, port_text = text.partition(":")
        rest = colon + port_text
    if rest:
        if not rest.startswith(":") or not _PORT.match(rest[1:]):
            raise OriginError("the port is not a number")
        port = int(rest[1:])
        if not 0 < port < 65536:
            raise OriginError("the port is out of range")
    else:
        if scheme not in DEFAULT_PORTS:
            raise OriginError(f"scheme {scheme!r} has no default port; give one")
        port = DEFAULT_PORTS[scheme]
    return _check_host(host), port


def parse_origin(text: str) -> Origin:
    """A normalised :class:`Origin` from an Origin header or allow-list entry."""
    if len(text) > MAX_ORIGIN_LENGTH:
        raise OriginError(f"longer than {MAX_ORIGIN_LENGTH} characters")
    if text == "null":
        raise OriginError("'null' is the origin of sandboxed or file: documents")
    if not _VISIBLE_ASCII.match(text):
        raise OriginError("contains spaces, control or non-ASCII characters")
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or not _SCHEME.match(scheme):
        raise OriginError("not of the form scheme://host[:port]")
    if "@" in rest:
        raise OriginError("contains user information ('@')")
    if rest.endswith("/"):
        raise OriginError("has a trailing slash (an origin has no path)")
    if any(c in rest for c in "/?#\\,;"):
        raise OriginError("has a path, query, fragment or list (an origin has none)")
    host, port = split_host_port(rest, scheme)
    return Origin(scheme, host, port)
