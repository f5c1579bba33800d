"""Facts about a request the policy decides on: its origin, client and query."""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from .security_origin import Origin, OriginError, split_host_port


def query_names(query: str) -> set[str]:
    """Names with a non-empty value, as python-engineio's ``parse_qs`` sees them
    (it drops ``sid=``: such a request is a handshake there, so it is here)."""
    names = set()
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if value:
            names.add(unquote_plus(name))
    return names


def path_under(path: str, prefix: str) -> bool:
    return path.startswith(prefix) or path == prefix[:-1]


def own_origin(environ: Mapping[str, Any]) -> Origin | None:
    """This server's origin as the client addressed it (after the proxy fix)."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or (
        f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}")
    try:
        name, port = split_host_port(host, scheme)
    except OriginError:
        return None
    return Origin(scheme, name, port)


def client_key(address: str) -> str:
    """The unit limits apply to: an IPv4 address, or an IPv6 /64 (one site)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "?"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def is_loopback(key: str) -> bool:
    """Whether a client key (see :func:`client_key`) is a loopback address."""
    try:
        return ipaddress.ip_network(key, strict=False).is_loopback
    except ValueError:
        return False
