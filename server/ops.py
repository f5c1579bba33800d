# design:
#   A WSGI middleware, outermost: every WSGI server thread calls it, before the
#   security policy.  For any other path it costs one dict lookup.  The health
#   answers (health_path, ready_path) read plain attributes only (len() of the
#   Engine.IO session dict, the handler pool's ints): no lock, no Flask, no
#   security policy, no I/O, so they are answered as fast as a thread is free
#   even when the server is at its connection cap or its handlers are stuck.
#   The one exception is the first request to one of our paths, which asks the
#   Flask app's URL map once whether the application routes that path itself
#   (then the application keeps it); the answer is cached, and two threads
#   computing it at once compute the same thing.
#   Metrics (metrics_path) are rendered by server.ops_metrics in the requesting
#   thread, which takes the short locks listed there.
"""Health checks and Prometheus metrics (docs/operations.md)."""
from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import settings as _settings
from .errors import ConfigurationError
from .security import SecurityPolicy
from .security_http import own_origin
from .security_limits import default_max_connections
from .security_origin import OriginError, parse_origin
from .security_proxy import ForwardedHeaderError, ProxyTrust

__all__ = ["OpsConfig", "OpsMiddleware", "wrap"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

OPS_SETTINGS = ("health_path", "ready_path", "metrics_path", "metrics_allow")
_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
_INSTALL = "pip install 'server[metrics]'"


@dataclass(frozen=True)
class OpsConfig:
    health_path: str | None
    ready_path: str | None
    metrics_path: str | None
    metrics_allow: tuple[_Network, ...]
    proxies: ProxyTrust

    @classmethod
    def load(cls, options: Mapping[str, Any]) -> OpsConfig:
        """From resolved settings; metrics need prometheus-client (see module doc)."""
        def get(name: str) -> Any:
            setting = _settings.BY_NAME[name]
            return setting.validate(options[name]) if name in options else setting.default

        metrics_path = get("metrics_path")
        if metrics_path is not None and not _have_prometheus():
            if "metrics_path" in options:  # asked for: say what is missing
                raise ConfigurationError(
                    f"setting metrics_path={metrics_path!r} needs prometheus-client, which "
                    f"is not installed. Fix: {_INSTALL}, or pass metrics_path=None "
                    f"(SERVER_METRICS_PATH=none) to serve no metrics")
            metrics_path = None  # the default: metrics only where installed
        paths = [p for p in (get("health_path"), get("ready_path"), metrics_path) if p]
        if len(set(paths)) != len(paths):
            raise ConfigurationError(
                f"settings health_path, ready_path and metrics_path must differ, got "
                f"{paths}. Fix: give each its own path, or None to turn one off")
        allow = tuple(ipaddress.ip_network(n, strict=False) for n in get("metrics_allow"))
        trusted = options.get("trusted_proxies", _settings.BY_NAME["trusted_proxies"].default)
        return cls(get("health_path"), get("ready_path"), metrics_path, allow,
                   ProxyTrust.from_setting(trusted))


def _have_prometheus() -> bool:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


class OpsMiddleware:
    """WSGI middleware answering the health, readiness and metrics paths.

    ``draining``: set it to a reason (e.g. ``"shutting down"``) to make the
    readiness check answer 503, so that load balancers stop sending traffic
    before the server closes its connections.
    """

    def __init__(self, app: WSGIApp, server: Any, config: OpsConfig, max_connections: int,
                 policy: SecurityPolicy | None = None, flask_app: Any = None,
                 logger: logging.Logger | None = None) -> None:
        self.app = app
        self.server = server
        self.config = config
        self.max_connections = max_connections
        self.flask_app = flask_app
        self.policy = policy
        self.logger = logger or logging.getLogger("server.ops")
        self.draining: str | None = None
        self.registry: Any = None  # a prometheus_client CollectorRegistry when metrics are on
        routes: dict[str, Callable[[dict, StartResponse], Iterable[bytes]]] = {}
        if config.health_path:
            routes[config.health_path] = self._health
        if config.ready_path:
            routes[config.ready_path] = self._ready
        if config.metrics_path:
            from .ops_metrics import build_registry

            self.registry = build_registry(server, policy, max_connections)
            routes[config.metrics_path] = self._metrics
        self._routes = routes
        self._app_owns: dict[str, bool] = {}

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        answer = self._routes.get(path)
        if answer is None or self._owned_by_app(path):
            return self.app(environ, start_response)
        head = environ.get("REQUEST_METHOD") == "HEAD"
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _reply(start_response, "405 Method Not Allowed", "use GET\n",
                          extra=[("Allow", "GET, HEAD")])
        if _cross_site(environ):
            # no CORS headers either: a web page may never read these
            return _reply(start_response, "403 Forbidden",
                          f"cross-site requests to {path} are refused\n", head=head)
        return answer(environ, start_response)

    def answer_inline(self, environ: dict) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """The health or readiness answer as ``(status, headers, body)``, or None.

        For a server that answers these paths outside a request thread
        (server.gunicorn_worker answers them on gunicorn's accepting thread):
        the same answer ``__call__`` gives, built from plain attributes.
        None when ``environ`` asks for anything else (metrics included: they
        take locks), or the application routes the path itself.
        """
        path = environ.get("PATH_INFO", "")
        if path not in (self.config.health_path, self.config.ready_path) \
                or self._owned_by_app(path):
            return None
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> None:
            answer[:] = [status, headers]

        body = b"".join(self(environ, start_response))
        return answer[0], answer[1], body

    # -- answers -----------------------------------------------------------------
    def _health(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        return _reply(start_response, "200 OK", "ok\n", head=_is_head(environ))

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready?, the figures it was decided on): lock-free reads only."""
        sessions = self._open_sessions()
        pool = self.server.handler_pool
        pending, limit = pool.pending, pool.max_pending
        facts: dict[str, Any] = {"sessions": sessions, "max_connections": self.max_connections,
                                 "handler_queue": pending, "handler_queue_limit": limit}
        if self.draining:
            reason = self.draining
        elif sessions >= self.max_connections:
            reason = "connection cap reached (max_connections)"
        elif pending >= limit:
            reason = "handler queue full (handler_queue)"
        else:
            return True, {"status": "ready", **facts}
        return False, {"status": "unavailable", "reason": reason, **facts}

    def _open_sessions(self) -> int:
        if self.policy is not None:
            # what the connection cap counts (closed sessions are already out)
            return self.policy.tally.open
        # closed WebSocket sessions stay in eio.sockets until python-engineio's
        # sweep; CPython copies the values without letting another thread in
        return sum(1 for s in list(self.server.eio.sockets.values())
                   if not getattr(s, "closed", False))

    def _ready(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        ready, facts = self.readiness()
        body = json.dumps(facts) + "\n"
        if ready:
            return _reply(start_response, "200 OK", body, "application/json",
                          head=_is_head(environ))
        return _reply(start_response, "503 Service Unavailable", body, "application/json",
                      head=_is_head(environ), extra=[("Retry-After", "5")])

    def _metrics(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        refusal = self._metrics_refusal(environ)
        if refusal:
            self.logger.debug("refused %s to %s: %s", self.config.metrics_path,
                              environ.get("REMOTE_ADDR"), refusal)
            return _reply(start_response, "403 Forbidden", refusal + "\n",
                          head=_is_head(environ))
        from .ops_metrics import render

        body, content_type = render(self.registry, environ.get("HTTP_ACCEPT", ""))
        return _reply(start_response, "200 OK", body, content_type, head=_is_head(environ))

    # -- checks ------------------------------------------------------------------
    def _metrics_refusal(self, environ: dict) -> str | None:
        peer = dict(environ)
        if self.config.proxies.enabled:
            try:
                self.config.proxies.apply(peer)
            except ForwardedHeaderError as e:
                return f"bad forwarding headers: {e}"
        elif any(name in environ for name in _PROXY_HEADERS):
            return ("metrics are not served through a proxy that is not trusted "
                    "(scrape the server directly, or set trusted_proxies)")
        try:
            address = ipaddress.ip_address(peer.get("REMOTE_ADDR", ""))
        except ValueError:
            return "client address unknown"
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if any(address in network for network in self.config.metrics_allow):
            return None
        return f"client {address} is not in metrics_allow"

    def _owned_by_app(self, path: str) -> bool:
        owned = self._app_owns.get(path)
        if owned is None:
            owned = self._app_owns[path] = _app_routes(self.flask_app, path)
            if owned:
                self.logger.warning(
                    "the application routes %s itself, so the server's own answer there "
                    "is off; to have both, move ours (health_path/ready_path/metrics_path, "
                    "docs/operations.md)", path)
        return owned


def _app_routes(flask_app: Any, path: str) -> bool:
    """Whether the Flask app has a rule for ``path`` (any method)."""
    if flask_app is None:
        return False
    from werkzeug.exceptions import HTTPException, NotFound
    from werkzeug.routing import RoutingException

    try:
        flask_app.url_map.bind("localhost").match(path, method="GET")
    except NotFound:
        return False
    except (HTTPException, RoutingException):  # MethodNotAllowed, RequestRedirect
        return True
    return True


def _cross_site(environ: dict) -> bool:
    if environ.get("HTTP_SEC_FETCH_SITE", "") in ("cross-site", "same-site"):
        return True
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return False  # not sent by a browser (or a same-origin GET)
    try:
        return parse_origin(origin) != own_origin(environ)
    except OriginError:  # "null" and other opaque origins
        return True


def _is_head(environ: dict) -> bool:
    return environ.get("REQUEST_METHOD") == "HEAD"


def _reply(start_response: StartResponse, status: str, body: str | bytes,
           content_type: str = "text/plain; charset=utf-8", head: bool = False,
           extra: Iterable[tuple[str, str]] = ()) -> Iterable[bytes]:
    data = body.encode() if isinstance(body, str) else body
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data))),
                            ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
                            *extra])
    return [b"" if head else data]


def wrap(wsgi_app: WSGIApp, socketio: Any, options: Mapping[str, Any],
         logger: logging.Logger | None = None) -> WSGIApp:
    """``wsgi_app`` behind the health, readiness and metrics endpoints.

    ``socketio`` is the :class:`server.SocketIO` (or its ``SocketIOServer``);
    ``options`` a resolved settings dict (names outside the ``ops`` scope are
    read only for ``trusted_proxies`` and ``max_connections``).  Put it
    outermost, in front of the security policy.  Unchanged when every path is
    None.  Raises ConfigurationError for bad settings, or metrics asked for
    without prometheus-client.
    """
    config = OpsConfig.load(options)
    while isinstance(wsgi_app, OpsMiddleware):  # wrapping again replaces the old layer
        wsgi_app = wsgi_app.app
    if not (config.health_path or config.ready_path or config.metrics_path):
        return wsgi_app
    server = getattr(socketio, "server", None) or socketio
    policy = wsgi_app if isinstance(wsgi_app, SecurityPolicy) else None
    if policy is not None:
        max_connections = policy.config.max_connections
    else:
        max_connections = options.get("max_connections") or \
            _settings.server_value("max_connections") or default_max_connections()
    middleware = getattr(socketio, "sockio_mw", None)
    flask_app = getattr(middleware, "flask_app", None)
    return OpsMiddleware(wsgi_app, server, config, max_connections, policy=policy,
                         flask_app=flask_app, logger=logger)
