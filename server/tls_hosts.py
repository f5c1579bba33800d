"""Host names and IP addresses in certificates: parsing and matching.

Matching follows RFC 6125 as browsers and OpenSSL apply it:

* an IP address matches only an iPAddress entry, never a dNSName;
* a wildcard is allowed only as the whole left-most label (``*.example.com``),
  matches exactly one label (not ``example.com``, not ``a.b.example.com``),
  and needs at least two labels after it (``*.com`` and ``*.localhost`` match
  nothing, as in OpenSSL);
* comparison ignores case and a trailing dot; Unicode names are compared in
  their IDNA (``xn--``) form, which is how certificates store them.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from .errors import ConfigurationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _bad(text: str, why: str) -> ConfigurationError:
    return ConfigurationError(
        f"--host {text!r} {why}; fix: give a DNS name (api.example.com, localhost, "
        f"*.example.com) or an IP address (127.0.0.1, ::1)")


def parse_host(text: str) -> str | IPAddress:
    """An IP address object, or the lower-case ASCII form of a DNS name.

    Raises :class:`ConfigurationError` naming the value and the fix.
    """
    raw = text.strip()
    try:
        return ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        pass
    name = raw.rstrip(".").lower()
    if not name:
        raise _bad(text, "is empty")
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise _bad(text, "is not a valid internationalised domain name") from None
    if len(name) > 253:
        raise _bad(text, "is longer than 253 characters")
    labels = name.split(".")
    if labels[0] == "*":
        if len(labels) < 3:
            raise _bad(text, "is a wildcard over a single label, which clients reject")
        labels = labels[1:]
    for label in labels:
        if not _LABEL.match(label):
            raise _bad(text, f"has an invalid label {label!r}")
    return name


def _dns_matches(pattern: str, host: str) -> bool:
    pattern = pattern.rstrip(".").lower()
    if pattern.startswith("*."):
        suffix = pattern[2:]
        if "*" in suffix or "." not in suffix:
            return False
        head, dot, rest = host.partition(".")
        return bool(dot) and bool(head) and rest == suffix
    return "*" not in pattern and pattern == host


def host_matches(host: str, dns_names: Iterable[str], ip_addresses: Iterable[object]) -> bool:
    """Whether ``host`` (a name or an address) is covered by these SAN entries."""
    try:
        parsed = parse_host(host)
    except ConfigurationError:
        return False
    if isinstance(parsed, str):
        return any(_dns_matches(pattern, parsed) for pattern in dns_names)
    return any(parsed == address for address in ip_addresses)
