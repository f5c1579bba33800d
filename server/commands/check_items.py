"""The checks behind ``python -m server check``: each returns :class:`Line` s.

Every check reads the configuration only (``SERVER_*`` environment, the
app's ``SocketIO`` options, files named by them); the one that touches the
network is the message-queue check, a TCP connect with a short timeout.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import importlib.util
import os
import shutil
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

OK, WARN, FAIL = "OK", "WARN", "FAIL"

#: file descriptors kept aside for listeners, logs, files, the queue, DNS...
FD_RESERVE = 64
#: below this many descriptors a service runs out of connections early
FD_COMFORTABLE = 4096
#: a certificate expiring within this many days is worth a warning
EXPIRY_WARN_DAYS = 30
#: default ports of the message-queue URL schemes (python-socketio, Kombu)
QUEUE_PORTS = {"redis": 6379, "rediss": 6379, "valkey": 6379, "valkeys": 6379,
               "redis+sentinel": 26379, "amqp": 5672, "amqps": 5671, "pyamqp": 5672,
               "kafka": 9092, "mongodb": 27017}


@dataclass(frozen=True)
class Line:
    status: str  # OK, WARN or FAIL
    topic: str
    detail: str
    fix: str = ""

    def render(self) -> str:
        text = f"{self.status:<4} {self.topic}: {self.detail}"
        if self.fix and self.status != OK:
            text += f"\n     fix: {self.fix}"
        return text


def servers() -> list[Line]:
    """Which production WSGI servers are installed, and their versions."""
    found = []
    for name, dist in (("gunicorn", "gunicorn"), ("uWSGI", "uWSGI"), ("waitress", "waitress")):
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        if name == "uWSGI":
            # the uwsgi module exists only inside a uWSGI process: look for the binary
            here = os.path.join(os.path.dirname(sys.executable), "uwsgi")
            usable = os.path.exists(here) or shutil.which("uwsgi") is not None
        else:
            usable = importlib.util.find_spec(name) is not None
        if usable:
            found.append(f"{name} {version}")
    if not found:
        return [Line(FAIL, "server", "no production server is installed (gunicorn, uWSGI, "
                     "waitress)", "pip install 'server[gunicorn]' (or [uwsgi], [waitress])")]
    return [Line(OK, "server", ", ".join(found))]


def capacity(environ: Mapping[str, str]) -> list[Line]:
    """Request threads, and the connections the file-descriptor limit allows."""
    import resource

    from server.settings import server_value

    threads = server_value("threads", environ)
    wanted = server_value("max_connections", environ)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fix_limit = ("raise the limit: LimitNOFILE=65536 in the systemd unit "
                 "(docs/systemd.md), or ulimit -n 65536 before starting")
    lines = [Line(OK, "threads", f"{threads} request threads (SERVER_THREADS); "
                  "WebSockets are handed off and do not hold one")]
    limits = f"RLIMIT_NOFILE soft {_num(soft)}, hard {_num(hard)}"
    if soft == resource.RLIM_INFINITY:
        room = None
    else:
        room = max(soft - FD_RESERVE, 0)
    if wanted is not None and room is not None and wanted > room:
        lines.append(Line(FAIL, "connections", f"max_connections={wanted} but {limits} "
                          f"leaves room for {room} (one descriptor per connection, "
                          f"{FD_RESERVE} kept aside)", fix_limit))
    elif room is not None and soft < FD_COMFORTABLE:
        lines.append(Line(WARN, "connections", f"about {room} concurrent connections "
                          f"({limits})", fix_limit))
    else:
        cap = wanted if wanted is not None else room
        lines.append(Line(OK, "connections", f"up to {_num(cap)} concurrent connections "
                          f"({limits})"))
    return lines


def _num(n: int | None) -> str:
    import resource

    return "unlimited" if n is None or n == resource.RLIM_INFINITY else str(n)


def transports(options: Mapping[str, Any]) -> list[Line]:
    allowed = options.get("transports") or ["polling", "websocket"]
    allowed = [allowed] if isinstance(allowed, str) else list(allowed)
    text = ", ".join(allowed)
    if "websocket" not in allowed:
        return [Line(WARN, "transports", f"{text} only: every message is an HTTP request",
                     "allow WebSocket: transports=['polling', 'websocket'] (the default)")]
    if importlib.util.find_spec("simple_websocket") is None:
        return [Line(FAIL, "transports", f"{text}, but simple-websocket is not installed",
                     "pip install simple-websocket")]
    if "polling" in allowed and options.get("allow_upgrades") is False:
        return [Line(WARN, "transports", f"{text}, but allow_upgrades=False keeps clients "
                     "on polling", "remove allow_upgrades=False")]
    return [Line(OK, "transports", text)]


def origins(options: Mapping[str, Any]) -> list[Line]:
    from server.security_origin import OriginError, parse_origin

    value = options.get("cors_allowed_origins")
    fix = "list the sites allowed: cors_allowed_origins=['https://app.example.com']"
    if value is None:
        return [Line(OK, "origins", "same origin only: pages of other sites cannot connect")]
    if value == "*":
        return [Line(WARN, "origins", "any site may connect with your users' cookies "
                     "(cors_allowed_origins='*')", fix)]
    if callable(value):
        return [Line(OK, "origins", f"decided by {getattr(value, '__name__', value)!r}")]
    entries = [value] if isinstance(value, str) else list(value)
    if not entries:
        return [Line(WARN, "origins", "the origin check is off (cors_allowed_origins=[])",
                     fix)]
    for entry in entries:
        try:
            parse_origin(entry)
        except OriginError as exc:
            return [Line(FAIL, "origins", f"{entry!r} is not an origin: {exc}",
                         "write each origin as scheme://host[:port], e.g. "
                         "'https://app.example.com'")]
    return [Line(OK, "origins", "the server's own, and " + ", ".join(entries))]


def tls(environ: Mapping[str, str]) -> list[Line]:
    """TLS served by this process (SERVER_CERTFILE / SERVER_KEYFILE)."""
    certfile, keyfile = environ.get("SERVER_CERTFILE"), environ.get("SERVER_KEYFILE")
    if not certfile and not keyfile:
        return [Line(WARN, "tls", "off: this server speaks plain HTTP",
                     "terminate TLS at a proxy in front (docs/tls.md), or set "
                     "SERVER_CERTFILE and SERVER_KEYFILE")]
    if not certfile or not keyfile:
        return [Line(FAIL, "tls", f"SERVER_CERTFILE={certfile!r}, SERVER_KEYFILE={keyfile!r}: "
                     "one without the other", "set both, or neither")]
    from server.errors import ConfigurationError
    from server.tls import validate_for_startup

    try:
        validate_for_startup(certfile, keyfile)
    except ConfigurationError as exc:
        return [Line(FAIL, "tls", str(exc).split("; fix: ")[0],
                     str(exc).partition("; fix: ")[2] or "python -m server tls check CERT KEY")]
    from server import tls_check

    material, finding = tls_check.load(certfile, keyfile)
    if material is None:  # changed since validate_for_startup read it
        return [Line(FAIL, "tls", finding.detail, finding.fix)]
    now = datetime.datetime.now(datetime.timezone.utc)
    soonest = min(c.not_valid_after_utc for c in material.certs)
    left = (soonest - now).days
    detail = f"{certfile}: key matches, valid until {soonest:%Y-%m-%d} ({left} days)"
    if left < EXPIRY_WARN_DAYS:
        return [Line(WARN, "tls", detail, "renew the certificate")]
    return [Line(OK, "tls", detail)]


def message_queue(options: Mapping[str, Any], timeout: float) -> list[Line]:
    if options.get("client_manager") is not None:
        return [Line(OK, "message queue", "a client manager given in code (not checked)")]
    url = options.get("message_queue")
    if not url:
        return [Line(OK, "message queue", "none: one process serves every client "
                     "(scale out with message_queue= / SERVER_MESSAGE_QUEUE)")]
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        return [Line(FAIL, "message queue", f"cannot parse the URL: {exc}",
                     "fix message_queue / SERVER_MESSAGE_QUEUE")]
    scheme = parts.scheme
    port = port or QUEUE_PORTS.get(scheme)
    shown = f"{scheme}://{host}:{port}"  # never the password
    if not host or not port:
        return [Line(OK, "message queue", f"{scheme}: (no TCP endpoint to check)")]
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return [Line(FAIL, "message queue", f"{shown} unreachable: {exc.strerror or exc}",
                     "start the broker, or correct message_queue / SERVER_MESSAGE_QUEUE")]
    return [Line(OK, "message queue", f"{shown} reachable (TCP)")]
