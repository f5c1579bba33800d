"""The one settings table.

Every option this server understands is declared here once: its name, kind,
default, validation, environment variable and help.  The same table

* validates ``SocketIO(**kwargs)`` / ``init_app(app, **kwargs)`` (unknown names
  fail with a "did you mean" hint, bad values name the setting, the value and
  the fix);
* fills in values from ``SERVER_*`` environment variables for the options the
  application did not pass in code (code wins over the environment, the
  environment wins over the default);
* feeds ``gunicorn.conf.py``, ``uwsgi.ini`` helpers and ``python -m server run``;
* generates ``docs/settings.md`` (``python -m server check --settings-doc``),
  which a test keeps in step.

``scope`` says who consumes a setting:

``extension``  read by :class:`server.SocketIO` itself (Flask-SocketIO's own options);
``socketio``   forwarded to python-socketio / python-engineio unchanged;
``server``     read by the WSGI server configuration and ``run()``;
``security``   read by the request policy (origins, proxies, limits);
``ops``        read by the health and metrics endpoints (server/ops.py).
"""
from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigurationError

ENV_PREFIX = "SERVER_"


def _no_check(value: Any) -> str | None:
    return None


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # bool | int | float | str | list | object
    default: Any
    help: str
    scope: str = "socketio"
    check: Callable[[Any], str | None] = field(default=_no_check, repr=False)
    env: bool = True  # whether an environment variable can set it
    choices: tuple[Any, ...] | None = None
    nullable: bool = True

    @property
    def env_var(self) -> str | None:
        return ENV_PREFIX + self.name.upper() if self.env else None

    def parse_env(self, raw: str) -> Any:
        """Turn an environment variable's text into a value of this kind."""
        text = raw.strip()
        if self.nullable and text.lower() in ("", "none", "null"):
            return None
        try:
            if self.kind == "bool":
                low = text.lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError(text)
            if self.kind == "int":
                return int(text)
            if self.kind == "float":
                return float(text)
            if self.kind == "list":
                return [part.strip() for part in text.split(",") if part.strip()]
        except ValueError:
            raise ConfigurationError(
                f"{self.env_var}={raw!r} is not a valid {self.kind}; "
                f"fix: set it to a {self.kind} value ({self.help})"
            ) from None
        return text

    def validate(self, value: Any) -> Any:
        """Return ``value`` if it is acceptable, else raise ConfigurationError."""
        if value is None and self.nullable:
            return value
        problem = None
        if self.kind == "bool" and not isinstance(value, bool):
            problem = "must be True or False"
        elif self.kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            problem = "must be an integer"
        elif self.kind == "float" and (
            isinstance(value, bool) or not isinstance(value, (int, float))
        ):
            problem = "must be a number"
        elif self.kind == "str" and not isinstance(value, str):
            problem = "must be a string"
        elif self.choices is not None and value not in self.choices:
            problem = "must be one of " + ", ".join(repr(c) for c in self.choices)
        if problem is None:
            problem = self.check(value)
        if problem:
            if self.scope == "server":
                where = f"set {self.env_var} in the environment (or the server's config file)"
            elif self.env_var:
                where = f"pass a valid {self.name}= to SocketIO()/init_app() or set {self.env_var}"
            else:
                where = f"pass a valid {self.name}= to SocketIO()/init_app()"
            raise ConfigurationError(
                f"setting {self.name}={value!r} is invalid: {problem}. "
                f"Fix: {where} ({self.help})"
            )
        return value


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than zero"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be zero or more"


def _ping_interval(value: Any) -> str | None:
    if isinstance(value, tuple):
        if len(value) == 2 and all(isinstance(v, (int, float)) and v >= 0 for v in value):
            return None
        return "a tuple must be (interval, grace_period) with two non-negative numbers"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return "must be a positive number of seconds or an (interval, grace) tuple"
    return None


def _transports(value: Any) -> str | None:
    items = [value] if isinstance(value, str) else value
    try:
        bad = [t for t in items if t not in ("polling", "websocket")]
    except TypeError:
        return "must be a list drawn from 'polling' and 'websocket'"
    if bad or not items:
        return "must be a non-empty list drawn from 'polling' and 'websocket'"
    return None


def _async_mode(value: Any) -> str | None:
    if value == "threading":
        return None
    return (
        "this server runs on native threads only (no eventlet, gevent or asyncio); "
        "remove async_mode or set async_mode='threading'"
    )


def _origins(value: Any) -> str | None:
    if value == "*" or isinstance(value, str):
        return None
    if callable(value):
        return None
    if isinstance(value, (list, tuple, set)) and all(isinstance(v, str) for v in value):
        return None
    return "must be an origin string, a list of origins, '*', [] or a callable"


def _websocket_io(value: Any) -> str | None:
    if value not in ("events", "threads"):
        return "must be 'events' (the default) or 'threads'"
    return None


def _path(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip("/"):
        return "must be a non-empty URL path such as 'socket.io'"
    return None


def _message_queue(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a URL string"
    schemes = ("redis://", "rediss://", "amqp://", "amqps://", "kafka://", "zmq+",
               "redis+sentinel://", "valkey://", "valkeys://", "sqs://", "memory://",
               "sqla+", "mongodb://")
    if not value.startswith(schemes):
        return "must be a redis://, rediss://, amqp:// (any Kombu URL) or kafka:// URL"
    return None


def _trusted_proxies(value: Any) -> str | None:
    if isinstance(value, bool) or (isinstance(value, int) and value < 0):
        return "must be a hop count (0 or more) or a list of proxy addresses/networks"
    if isinstance(value, (int, str)):
        return None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return None
    return "must be a hop count or a list of proxy addresses/networks such as ['10.0.0.0/8']"


def _url_path(value: Any) -> str | None:
    if (not isinstance(value, str) or not value.startswith("/") or len(value) < 2
            or any(c in value for c in "?# ")):
        return "must be a URL path such as '/healthz' (None: not served)"
    return None


def _networks(value: Any) -> str | None:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        return "must be a list of addresses/networks such as ['127.0.0.1', '10.0.0.0/8']"
    for entry in value:
        try:
            ipaddress.ip_network(entry, strict=False)
        except (TypeError, ValueError):
            return f"entry {entry!r} is not an IP address or network such as '10.0.0.0/8'"
    return None


SETTINGS: tuple[Setting, ...] = (
    # -- Flask-SocketIO's own options -------------------------------------------
    Setting("async_mode", "str", "threading", "only 'threading' is supported",
            scope="extension", check=_async_mode),
    Setting("manage_session", "bool", True,
            "keep a per-connection copy of the Flask session for Socket.IO handlers "
            "(False shares server-side sessions with HTTP)", scope="extension"),
    Setting("message_queue", "str", None,
            "message queue URL (redis://, rediss://, amqp://, kafka://) shared by "
            "every process that emits", scope="extension", check=_message_queue),
    Setting("channel", "str", "flask-socketio", "channel name on the message queue",
            scope="extension"),
    Setting("path", "str", "socket.io", "URL path of the Socket.IO endpoint",
            scope="extension", check=_path),
    Setting("resource", "str", None, "older name of 'path'", scope="extension",
            check=_path),
    Setting("json", "object", None, "alternative JSON module (dumps/loads)",
            scope="extension", env=False),
    Setting("client_manager", "object", None,
            "a python-socketio client manager instance (overrides message_queue)",
            scope="extension", env=False),
    Setting("process_pool_size", "int", None,
            "worker processes for socketio.run_in_process()/submit_process(), started "
            "on first use (None: os.cpu_count())", scope="extension", check=_positive),
    Setting("switch_interval", "float", 0.001,
            "seconds between the interpreter's thread switches, set with "
            "sys.setswitchinterval at init_app for the whole process: 0.001 cuts light "
            "clients' latency next to CPU-bound handlers about threefold "
            "(docs/cpu-heavy.md); None: leave Python's (0.005)",
            scope="extension", check=_positive),
    # -- forwarded to python-socketio --------------------------------------------
    Setting("logger", "object", False, "True, False or a logging.Logger for Socket.IO",
            env=False),
    Setting("engineio_logger", "object", False,
            "True, False or a logging.Logger for Engine.IO", env=False),
    Setting("serializer", "object", "default", "'default', 'msgpack' or a packet class",
            env=False),
    Setting("always_connect", "bool", False,
            "accept the connection before the connect handler runs"),
    Setting("namespaces", "object", None,
            "namespaces clients may connect to: a list, or '*' for any", env=False),
    Setting("async_handlers", "bool", True,
            "run event handlers off the connection's reader thread (WebSockets "
            "served by the reactor always run them on the handler pool)"),
    Setting("handler_threads", "int", 32,
            "threads in the pool that runs event handlers (instead of a new thread "
            "per event)", check=_positive),
    Setting("handler_queue", "int", 10_000,
            "events that may wait for a handler thread; when full, a reactor-served "
            "WebSocket is not read until there is room (its client waits), other "
            "transports wait up to 5 s, then drop the event with a warning",
            check=_positive),
    Setting("cpu_handlers", "int", 1,
            "event handlers whose event (namespace and name) used at least 20 ms of CPU "
            "on its recent runs run at most this many at a time, the others of them "
            "waiting while light events go by: with the GIL more at once finish no "
            "sooner and slow every other client (docs/cpu-heavy.md). A heavy handler "
            "blocked on I/O does not count; None: no limit",
            check=_positive),
    Setting("ordered_handlers", "bool", True,
            "handle the events of one client (per namespace) one at a time, in arrival order"),
    Setting("event_rate", "float", 100.0,
            "events per second one connection may send (a token bucket per "
            "Engine.IO session); over it, events are dropped and acked with an error, "
            "and a client at three times its budget is disconnected (None: no limit)",
            check=_positive),
    Setting("event_burst", "int", 200,
            "events one connection may send at once before event_rate applies",
            check=_positive, nullable=False),
    Setting("connect_timeout", "float", 45.0,
            "seconds an Engine.IO session has to connect a Socket.IO namespace "
            "before it is closed (None: never)", check=_positive),
    # -- forwarded to python-engineio --------------------------------------------
    Setting("ping_interval", "object", 25, "seconds between server pings, or (interval, grace)",
            check=_ping_interval, env=False),
    Setting("ping_timeout", "float", 20, "seconds the client has to answer a ping",
            check=_positive),
    Setting("max_http_buffer_size", "int", 1_000_000,
            "largest message or polling body accepted, in bytes", check=_positive),
    Setting("allow_upgrades", "bool", True, "allow polling clients to upgrade to WebSocket"),
    Setting("websocket_compression", "bool", False,
            "accept permessage-deflate on WebSocket (off, as in Node's socket.io: "
            "about 100 KiB of zlib state per connection and CPU per message)"),
    Setting("websocket_io", "str", "events",
            "how an open WebSocket is served: 'events' (one reactor thread for all "
            "WebSockets: no thread per connection, handlers write directly) or "
            "'threads' (python-engineio's reader, writer and ping threads per "
            "connection)", check=_websocket_io),
    Setting("gc_freeze", "bool", True,
            "keep CPython's full garbage-collection passes short as connections grow: "
            "as open sessions grow, what is alive is frozen (gc.freeze), and cycles "
            "among it reclaimed when sessions fall or many have closed "
            "(docs/performance.md); False: CPython's own policy, whose full passes "
            "walk every connection's objects"),
    Setting("http_compression", "bool", True, "compress polling responses"),
    Setting("compression_threshold", "int", 1024,
            "smallest polling response compressed, in bytes", check=_non_negative),
    Setting("cookie", "object", None, "name (or attribute dict) of the Engine.IO cookie",
            env=False),
    Setting("cors_allowed_origins", "object", None,
            "origins allowed besides the server's own: a list, '*' (with "
            "allow_any_origin), or a callable; [] means same-origin only",
            check=_origins, env=False),
    Setting("cors_credentials", "bool", True, "allow credentials on cross-origin requests"),
    Setting("monitor_clients", "bool", True, "close clients that stop answering pings"),
    Setting("transports", "list", None, "allowed transports: polling, websocket",
            check=_transports),
    # -- request policy in front of Engine.IO (server/security.py, docs/security.md)
    Setting("security_policy", "bool", True,
            "check origins, proxies and limits before Engine.IO sees a request "
            "(False: upstream behaviour)", scope="security"),
    Setting("allow_any_origin", "bool", False,
            "let any web site connect (required to use cors_allowed_origins='*'; "
            "never with credentials)", scope="security"),
    Setting("trusted_proxies", "object", None,
            "honour X-Forwarded-For/Proto/Host/Port: a hop count, or proxy "
            "addresses/networks (comma list in the environment); None: never",
            scope="security", check=_trusted_proxies),
    Setting("max_connections_per_ip", "int", 50,
            "most concurrent Socket.IO connections from one client address "
            "(None: no cap)", scope="security", check=_positive),
    Setting("handshake_rate", "float", 20.0,
            "new connections per second allowed from one client address "
            "(None: no limit)", scope="security", check=_positive),
    Setting("handshake_burst", "int", 40,
            "new connections one client address may open at once before "
            "handshake_rate applies", scope="security", check=_positive),
    Setting("ip_limits_on_loopback", "bool", False,
            "apply the per-address limits to loopback peers too (off: a local proxy "
            "without trusted_proxies would make every user one address)",
            scope="security"),
    Setting("hsts_max_age", "int", 63_072_000,
            "Strict-Transport-Security max-age on responses to HTTPS requests "
            "(0: no header)", scope="security", check=_non_negative),
    # -- health checks and metrics (server/ops.py, docs/operations.md) ----------
    Setting("health_path", "str", "/healthz",
            "liveness check answered 200 'ok' by the server itself (None: off)",
            scope="ops", check=_url_path),
    Setting("ready_path", "str", "/readyz",
            "readiness check for load balancers: 200, or 503 when at max_connections "
            "or the handler queue is full (None: off)", scope="ops", check=_url_path),
    Setting("metrics_path", "str", "/metrics",
            "Prometheus metrics, served when prometheus-client is installed "
            "(pip install 'server[metrics]'; None: off)", scope="ops", check=_url_path),
    Setting("metrics_allow", "list", ("127.0.0.0/8", "::1"),
            "client addresses/networks that may read metrics_path; others get 403",
            scope="ops", check=_networks, nullable=False),
    # -- WSGI server level (gunicorn.conf.py, uwsgi.ini, run()) -----------------
    Setting("bind", "str", "127.0.0.1:5000", "address the server listens on (HOST:PORT)",
            scope="server"),
    Setting("threads", "int", 100, "server threads for HTTP requests (WebSockets are "
            "handed off and do not hold one)", scope="server", check=_positive),
    Setting("handshake_threads", "int", 1,
            "WebSocket handshakes completed at once (under gunicorn: the threads of "
            "server.gunicorn_worker's handshake pool); CPU work only, so more only "
            "contend for the GIL, and a connect storm queues there", scope="server",
            check=_positive),
    Setting("workers", "int", None,
            "worker processes (gunicorn -w, uWSGI processes); more than 1 means "
            "WebSocket only and needs message_queue (docs/scaling.md); None: 1, or "
            "uWSGI's processes under uWSGI", scope="server", check=_positive),
    Setting("max_connections", "int", None,
            "most concurrent Socket.IO connections per process (None: sized to the "
            "file-descriptor limit)", scope="server", check=_positive),
    Setting("graceful_timeout", "float", 10.0,
            "seconds a stopping server waits for clients to be closed", scope="server",
            check=_positive),
    # -- TLS served by the WSGI server itself (docs/tls.md) ----------------------
    Setting("certfile", "str", None,
            "PEM certificate chain (leaf first) for HTTPS served by gunicorn.conf.py / "
            "uwsgi.ini:tls (None: plain HTTP)", scope="server"),
    Setting("keyfile", "str", None,
            "PEM private key of certfile (mode 0600 or 0640)", scope="server"),
    Setting("ca_certs", "str", None,
            "CA bundle for client certificates (gunicorn only)", scope="server"),
    Setting("tls_profile", "str", "intermediate",
            "Mozilla TLS profile: 'intermediate' (TLS 1.2 + 1.3) or 'modern' (TLS 1.3 only)",
            scope="server", choices=("intermediate", "modern"), nullable=False),
)

BY_NAME: Mapping[str, Setting] = {s.name: s for s in SETTINGS}


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the closest known name, or ``''``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def unknown_option_error(name: str, known: Iterable[str] | None = None) -> ConfigurationError:
    """An error for an option nobody declared, with a "did you mean" hint."""
    hint = did_you_mean(name, known if known is not None else BY_NAME)
    return ConfigurationError(
        f"unknown option {name!r}.{hint} Fix: remove it or use one of the options "
        f"listed in docs/settings.md"
    )


def resolve(kwargs: Mapping[str, Any], scopes: Iterable[str],
            environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Validate ``kwargs`` and complete them from the environment.

    Returns only the options that were given in code or in the environment;
    defaults are left to the consumer so that upstream defaults apply unchanged.
    """
    environ = os.environ if environ is None else environ
    scopes = tuple(scopes)
    out: dict[str, Any] = {}
    for name, value in kwargs.items():
        setting = BY_NAME.get(name)
        if setting is None or setting.scope not in scopes:
            raise unknown_option_error(
                name, [s.name for s in SETTINGS if s.scope in scopes])
        out[name] = setting.validate(value)
    for setting in SETTINGS:
        if setting.scope not in scopes or setting.name in out or not setting.env:
            continue
        raw = environ.get(setting.env_var or "")
        if raw is not None:
            out[setting.name] = setting.validate(setting.parse_env(raw))
    return out


def server_value(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """The value of a server-level setting: environment, else default."""
    environ = os.environ if environ is None else environ
    setting = BY_NAME[name]
    raw = environ.get(setting.env_var or "")
    if raw is None:
        return setting.default
    return setting.validate(setting.parse_env(raw))


def markdown_table(scopes: Iterable[str] | None = None) -> str:
    """The settings reference as a Markdown table (docs/settings.md)."""
    rows = ["| setting | kind | default | environment | scope | what it does |",
            "|---|---|---|---|---|---|"]
    for s in SETTINGS:
        if scopes is not None and s.scope not in scopes:
            continue
        env = f"`{s.env_var}`" if s.env_var else "(code only)"
        rows.append(f"| `{s.name}` | {s.kind} | `{s.default!r}` | {env} | {s.scope} | {s.help} |")
    return "\n".join(rows) + "\n"
