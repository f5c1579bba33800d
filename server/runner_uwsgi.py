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


#: uWSGI's exit status for "the app failed to load": with need-app, the
#: master stops instead of respawning the worker
FAILED_APP_EXIT = 22


def check_tls(opt: dict) -> None:
    """Refuse to start a TLS instance whose certificate or key is unfit.

    uWSGI loads a certificate without looking at its expiry or at who may
    read the key; the start-up checks of ``python -m server tls check`` run
    here, in the worker that loads the app, and a failure stops the instance
    with one line (the exit status uWSGI's master treats as "no app").
    """
    import os
    import sys

    if not (opt.get("https") or opt.get(b"https")) or not os.environ.get("SERVER_CERTFILE"):
        return
    from .errors import ConfigurationError
    from .tls import validate_for_startup

    try:
        validate_for_startup(os.environ["SERVER_CERTFILE"], os.environ.get("SERVER_KEYFILE"),
                             os.environ.get("SERVER_CA_CERTS") or None)
    except ConfigurationError as exc:
        print(f"uwsgi.ini: {exc}", file=sys.stderr, flush=True)
        os._exit(FAILED_APP_EXIT)


def install() -> bool:
    try:
        import uwsgi
    except ImportError:
        return False
    check_tls(uwsgi.opt)
    uwsgi.atexit = close_at_exit
    return True


install()
