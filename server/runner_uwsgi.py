"""uWSGI graceful-shutdown hook, loaded by the shipped uwsgi.ini (``import =``).

uWSGI imports this module in each worker; importing it registers
``uwsgi.atexit``, which uWSGI calls when the worker stops (SIGTERM with
``die-on-term``, SIGINT, reload).  The hook finds the app uWSGI serves (the
``module`` option, ``MODULE:CALLABLE``) and closes every Socket.IO client
properly, so they reconnect at once instead of waiting for a ping timeout.
Outside uWSGI (``uwsgi`` not importable) importing this module does nothing.
"""
from __future__ import annotations

import logging

from .runner_hooks import close_connections, load_spec

log = logging.getLogger("server")


def _configured_app(opt: dict) -> str | None:
    value = opt.get("module") or opt.get(b"module")
    if isinstance(value, list):  # an option given twice: the last one counts
        value = value[-1]
    if isinstance(value, bytes):
        value = value.decode()
    return value or None


def close_at_exit() -> None:
    import uwsgi

    spec = _configured_app(uwsgi.opt)
    if spec is None:
        return
    try:
        wsgi = load_spec(spec if ":" in spec else spec + ":application")
    except Exception:  # the app never loaded: nothing to close
        log.debug("uWSGI exit: app %r is not loaded", spec, exc_info=True)
        return
    # uWSGI's own reload mercy bounds the whole exit; keep well inside it
    close_connections(wsgi, reason="server shutting down", timeout=2.0)


def install() -> bool:
    try:
        import uwsgi
    except ImportError:
        return False
    uwsgi.atexit = close_at_exit
    return True


install()
