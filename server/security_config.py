"""The security policy's configuration, checked once at start-up.

Every refusal here is a :class:`~server.errors.ConfigurationError` naming the
option, the value and the fix; nothing is checked again per request.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import settings as _settings
from .errors import ConfigurationError
from .security_limits import default_max_connections
from .security_origin import Origin, OriginError, parse_origin
from .security_proxy import ProxyTrust

# options read from outside the security scope
CORE_OPTIONS = ("cors_allowed_origins", "cors_credentials", "max_http_buffer_size",
         "max_connections", "path", "resource")


def policy_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a resolved settings dict the policy reads."""
    return {name: value for name, value in options.items()
            if name in CORE_OPTIONS or (name in _settings.BY_NAME
                                        and _settings.BY_NAME[name].scope == "security")}


def _default(name: str) -> Any:
    return _settings.BY_NAME[name].default


@dataclass(frozen=True)
class SecurityConfig:
    enabled: bool
    allowed: frozenset[Origin]
    allowed_check: Callable[[str, dict], bool] | None
    allow_any: bool
    credentials: bool
    proxies: ProxyTrust
    max_body: int
    max_connections: int | None
    max_per_client: int | None
    handshake_rate: float | None
    handshake_burst: int
    limit_loopback: bool
    hsts_max_age: int
    path: str

    @classmethod
    def load(cls, options: Mapping[str, Any]) -> SecurityConfig:
        """Build from resolved settings; missing names take the table's default."""
        for name, value in options.items():
            setting = _settings.BY_NAME.get(name)
            if setting is None:
                raise _settings.unknown_option_error(name)
            if setting.scope == "security" or name in CORE_OPTIONS:
                setting.validate(value)

        def get(name: str) -> Any:
            return options[name] if name in options else _default(name)

        allowed, check, allow_any = _allow_list(get("cors_allowed_origins"),
                                                get("allow_any_origin"))
        credentials = bool(get("cors_credentials"))
        if allow_any and options.get("cors_credentials") is True:
            raise ConfigurationError(
                "setting cors_credentials=True cannot be combined with "
                "cors_allowed_origins='*' / allow_any_origin=True: any web site could "
                "then act as the signed-in user. Fix: list the origins you trust in "
                "cors_allowed_origins, or pass cors_credentials=False")
        # a server-scope setting: the application may not pass it, the
        # environment (SERVER_MAX_CONNECTIONS) still counts
        max_connections = options.get("max_connections",
                                      _settings.server_value("max_connections"))
        path = (options.get("path") or options.get("resource") or "socket.io").strip("/")
        burst = get("handshake_burst")
        return cls(
            enabled=bool(get("security_policy")),
            allowed=allowed, allowed_check=check, allow_any=allow_any,
            # credentials only for an explicit allow-list, never for '*'; a
            # same-origin request carries cookies without any CORS header
            credentials=credentials and not allow_any and bool(allowed or check),
            proxies=ProxyTrust.from_setting(get("trusted_proxies")),
            max_body=get("max_http_buffer_size"),
            max_connections=(default_max_connections() if max_connections is None
                             else max_connections),
            max_per_client=get("max_connections_per_ip"),
            handshake_rate=get("handshake_rate"),
            handshake_burst=burst if burst is not None else 1,
            limit_loopback=bool(get("ip_limits_on_loopback")),
            hsts_max_age=get("hsts_max_age") or 0,
            path=path,
        )


def _allow_list(value: Any, allow_any_origin: bool) -> tuple[
        frozenset[Origin], Callable[[str, dict], bool] | None, bool]:
    if value == "*" or (isinstance(value, (list, tuple, set)) and "*" in value):
        if not allow_any_origin:
            raise ConfigurationError(
                f"setting cors_allowed_origins={value!r} lets every web site open "
                f"Socket.IO connections with your users' cookies (cross-site WebSocket "
                f"hijacking). Fix: list the origins you trust, e.g. "
                f"cors_allowed_origins=['https://app.example.com'], or, for a public "
                f"API without cookies, also pass allow_any_origin=True "
                f"(SERVER_ALLOW_ANY_ORIGIN=1)")
        return frozenset(), None, True
    if allow_any_origin:
        return frozenset(), None, True
    if value is None:
        return frozenset(), None, False
    if callable(value):
        return frozenset(), _two_argument(value), False
    entries = [value] if isinstance(value, str) else list(value)
    allowed = set()
    for entry in entries:
        try:
            origin = parse_origin(entry)
        except OriginError as e:
            raise ConfigurationError(
                f"setting cors_allowed_origins entry {entry!r} is not an origin: {e}. "
                f"Fix: write each entry as scheme://host[:port], with no path and no "
                f"trailing slash, e.g. 'https://app.example.com' or "
                f"'http://localhost:8080'") from None
        allowed.add(origin)
    return frozenset(allowed), None, False


def _two_argument(check: Callable[..., Any]) -> Callable[[str, dict], bool]:
    """python-engineio calls the check with (origin, environ) or (origin)."""
    try:
        inspect.signature(check).bind("origin", {})
    except TypeError:
        return lambda origin, environ: bool(check(origin))
    except ValueError:  # pragma: no cover - builtins without a signature
        pass
    return lambda origin, environ: bool(check(origin, environ))
