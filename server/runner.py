# design:
#   run() blocks the main thread in the chosen server's own loop (gunicorn's
#   arbiter, waitress's asyncore loop, Werkzeug's serve_forever): these install
#   signal handlers, which Python allows only in the main thread, hence the
#   check.  stop() may come from any thread (a handler thread, a background
#   task): it only asks the running server to stop through the handle that
#   run() attached to the SocketIO instance; the server's own loop does the
#   stopping.  No lock: the handle is set once before serving starts and
#   cleared after the loop returns.
"""``SocketIO.run()``: serve the app on an embedded production server.

The server is chosen from :data:`SERVERS` and imported lazily:
gunicorn (gthread worker) where it is importable (POSIX), waitress
elsewhere, and the Werkzeug development server only with ``debug=True`` or
``server='werkzeug'`` asked by name.  Flask-SocketIO's ``run()`` options are
accepted; an unknown one raises with a "did you mean" hint.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError
from .settings import BY_NAME, server_value

log = logging.getLogger("server")

#: server name -> module that serves a :class:`Plan` (``serve(plan, handle)``)
SERVERS: dict[str, str] = {
    "gunicorn": "server.runner_gunicorn",
    "waitress": "server.runner_waitress",
    "werkzeug": "server.runner_werkzeug",
}

#: the options ``run()`` accepts besides app/host/port (Flask-SocketIO's, plus ours)
RUN_OPTIONS: tuple[str, ...] = (
    "debug", "use_reloader", "reloader_options", "log_output", "allow_unsafe_werkzeug",
    "ssl_context", "certfile", "keyfile", "server", "threads", "extra_files",
)

#: attribute of the SocketIO instance holding the running server's handle
HANDLE_ATTR = "_runner_handle"


@dataclass(frozen=True)
class Plan:
    """Everything a server module needs; built and validated before serving."""

    socketio: Any
    app: Any
    server: str
    host: str
    port: int
    threads: int
    capacity: int
    debug: bool
    use_reloader: bool
    reloader_options: dict
    log_output: bool
    certfile: str | None
    keyfile: str | None
    ssl_context: Any
    graceful_timeout: float

    @property
    def url(self) -> str:
        scheme = "https" if (self.certfile or self.ssl_context) else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


class Handle:
    """How stop() reaches a running server; each server module sets ``stopper``."""

    def __init__(self) -> None:
        self.stopper: Any = None

    def stop(self) -> None:
        if self.stopper is None:
            raise RuntimeError("the server is still starting; call stop() once it serves")
        self.stopper()


def _unknown(name: str) -> ConfigurationError:
    close = difflib.get_close_matches(name, RUN_OPTIONS, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigurationError(
        f"run() got an unknown option {name!r}.{hint} Fix: remove it or use one of "
        f"{', '.join(RUN_OPTIONS)} (docs/servers/)")


def choose_server(asked: str | None, debug: bool) -> str:
    """The server name: the one asked for, else Werkzeug for debug, else gunicorn/waitress."""
    if asked is not None:
        if asked not in SERVERS:
            raise ConfigurationError(
                f"run(server={asked!r}) is not a server this package can embed. Fix: use "
                f"one of {', '.join(SERVERS)} (uWSGI runs from uwsgi.ini: uwsgi --ini uwsgi.ini)")
        return asked
    if debug:
        return "werkzeug"
    if sys.platform != "win32" and importlib.util.find_spec("gunicorn") is not None:
        return "gunicorn"
    if importlib.util.find_spec("waitress") is not None:
        return "waitress"
    raise ConfigurationError(
        "run() found neither gunicorn nor waitress. Fix: pip install 'server[gunicorn]' "
        "(POSIX) or 'server[waitress]', or pass debug=True for the development server")


def make_plan(socketio: Any, app: Any, host: str | None, port: int | None,
              options: dict[str, Any]) -> Plan:
    for name in options:
        if name not in RUN_OPTIONS:
            raise _unknown(name)
    debug = bool(options.get("debug", False))
    server = choose_server(options.get("server"), debug)
    if options.get("allow_unsafe_werkzeug"):
        log.info("run(allow_unsafe_werkzeug=True) is accepted and ignored: the "
                 "development server runs only with debug=True or server='werkzeug'")
    threads = options.get("threads")
    if threads is None:
        threads = server_value("threads")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads <= 0:
        raise ConfigurationError(f"run(threads={threads!r}) must be a positive integer. "
                                 "Fix: pass e.g. threads=100 or set SERVER_THREADS")
    bind_host, _, bind_port = str(server_value("bind")).rpartition(":")
    server_name = getattr(app, "config", {}).get("SERVER_NAME") or ""
    if port is None and BY_NAME["bind"].env_var not in os.environ and ":" in server_name:
        # Flask-SocketIO takes the port from SERVER_NAME when none is given
        bind_port = server_name.rpartition(":")[2]
    port = int(port if port is not None else (bind_port or 5000))
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"run(port={port!r}) must be 0-65535. Fix: pass a valid port")
    ssl_context = options.get("ssl_context")
    certfile, keyfile = options.get("certfile"), options.get("keyfile")
    if isinstance(ssl_context, tuple) and len(ssl_context) == 2 and server != "werkzeug":
        certfile, keyfile, ssl_context = ssl_context[0], ssl_context[1], None
    if bool(certfile) != bool(keyfile):
        raise ConfigurationError("run() needs both certfile= and keyfile= for TLS "
                                 f"(got certfile={certfile!r}, keyfile={keyfile!r})")
    from .security_limits import default_max_connections

    capacity = server_value("max_connections") or default_max_connections()
    reloader_options = dict(options.get("reloader_options") or {})
    if options.get("extra_files"):
        reloader_options.setdefault("extra_files", options["extra_files"])
    return Plan(
        socketio=socketio, app=app, server=server, host=host or bind_host or "127.0.0.1",
        port=port, threads=threads, capacity=capacity, debug=debug,
        use_reloader=bool(options.get("use_reloader", debug)),
        reloader_options=reloader_options,
        log_output=bool(options.get("log_output", debug)), certfile=certfile,
        keyfile=keyfile, ssl_context=ssl_context,
        graceful_timeout=float(server_value("graceful_timeout")))


def banner(plan: Plan) -> str:
    try:
        transports = list(plan.socketio.server.eio.transports)
    except AttributeError:
        transports = ["polling", "websocket"]
    text = (f"serving {plan.url} with {plan.server} (1 process, {plan.threads} threads, "
            f"up to {plan.capacity} connections; transports: {', '.join(transports)})")
    if plan.server == "werkzeug":
        text += "; the Werkzeug server is for development, not production"
    return text


def run(socketio: Any, app: Any, host: str | None = None, port: int | None = None,
        **options: Any) -> None:
    """Serve ``app`` until the server stops; see the module docstring."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            "SocketIO.run() must be called from the main thread: the servers it embeds "
            "install signal handlers. Fix: call it at the end of your main script, or "
            "serve the app with gunicorn -c gunicorn.conf.py / uwsgi --ini uwsgi.ini")
    plan = make_plan(socketio, app, host, port, options)
    if plan.debug:
        app.debug = True
    if not logging.getLogger().handlers and not log.handlers:
        # run() is the program's entry point: without any logging set up the
        # banner and errors would be lost.  An app that configures logging wins.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    module = importlib.import_module(SERVERS[plan.server])
    handle = Handle()
    setattr(socketio, HANDLE_ATTR, handle)
    previous = None
    if plan.server != "gunicorn":
        # gunicorn's arbiter handles SIGTERM itself; for the others SIGTERM
        # (systemd, docker stop) means the same graceful stop as stop()
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: handle.stop())
    try:
        module.serve(plan, handle, banner(plan))
    finally:
        setattr(socketio, HANDLE_ATTR, None)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def stop(socketio: Any) -> None:
    """Stop the server that ``run()`` started; from a handler or another thread."""
    handle = getattr(socketio, HANDLE_ATTR, None)
    if handle is None:
        raise RuntimeError("stop() called but this SocketIO is not serving through run(); "
                           "servers started by gunicorn/uWSGI are stopped by their master "
                           "(SIGTERM)")
    handle.stop()
