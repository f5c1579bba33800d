"""Cookie flags by default: the Flask session cookie and the Engine.IO cookie.

* ``SESSION_COOKIE_SAMESITE`` becomes ``'Lax'`` when the application left it at
  Flask's default (``None``).  Flask's config has no record of who set a key,
  so "left at the default" means "equal to ``Flask.default_config``"; an
  application that really wants no SameSite attribute sets the value before
  ``init_app`` to ``'None'`` (with Secure) or ``'Strict'``, both kept.
* ``SESSION_COOKIE_HTTPONLY`` is already ``True`` by Flask's default; an
  explicit ``False`` is kept.
* ``Secure`` is decided per request: Flask's stock session interface is
  replaced by a subclass that adds ``Secure`` when the request came over
  HTTPS (``wsgi.url_scheme``, which the security policy rewrites from
  ``X-Forwarded-Proto`` only for trusted proxies).  An explicit
  ``SESSION_COOKIE_SECURE = True`` always wins; a custom session interface
  (Flask-Session…) is left alone.
* The Engine.IO cookie (``cookie='io'``) gets ``Path=/; SameSite=Lax;
  HttpOnly`` and ``Secure`` on HTTPS; a dict given as ``cookie=`` is used as is.
"""
from __future__ import annotations

from typing import Any

import flask
from flask.sessions import SecureCookieSessionInterface

__all__ = ["SchemeSecureSessionInterface", "apply_session_defaults", "engineio_cookie"]


class SchemeSecureSessionInterface(SecureCookieSessionInterface):
    """Flask's cookie session, with ``Secure`` on responses to HTTPS requests."""

    def get_cookie_secure(self, app: flask.Flask) -> bool:
        if super().get_cookie_secure(app):
            return True
        return flask.has_request_context() and flask.request.scheme == "https"


def apply_session_defaults(app: flask.Flask) -> None:
    """SameSite=Lax and per-request Secure unless the application chose."""
    defaults = flask.Flask.default_config
    if app.config.get("SESSION_COOKIE_SAMESITE") == defaults["SESSION_COOKIE_SAMESITE"]:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # the exact stock class only: a subclass or another interface is the app's choice
    if type(app.session_interface) is SecureCookieSessionInterface:
        app.session_interface = SchemeSecureSessionInterface()


def engineio_cookie(cookie: Any, environ: dict) -> str | dict | None:
    """The attribute dict python-engineio renders for the ``cookie=`` setting."""
    if not cookie:
        return None
    if isinstance(cookie, dict):
        return cookie
    attributes: dict[str, Any] = {"name": cookie, "path": "/", "SameSite": "Lax",
                                  "HttpOnly": True}
    if environ.get("wsgi.url_scheme") == "https":
        attributes["Secure"] = True
    return attributes
