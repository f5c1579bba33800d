# design:
#   A WSGI middleware, called by every WSGI server thread; it never blocks and
#   never reads the request body.  Its shared state lives in three objects, each
#   with its own short lock (see server.security_limits): HandshakeRate,
#   ConnectionTally and the per-key RefusalLog.  No lock is held while calling
#   the wrapped application or logging.
#   A handshake's connection slot is reserved on admission and handed to the
#   Engine.IO session by ``session_opened`` (the Engine.IO server calls it from
#   the handshake request's own thread); if no session took it, it is released
#   when the WSGI server closes the response (ClosingIterator).  The session
#   gives it back through ``session_closed``.
"""The request policy in front of the Socket.IO endpoint (docs/security.md).

Same-origin by default, trusted proxies only when configured, prompt 4xx for
malformed or oversized requests, handshake rate and connection caps, and the
usual security headers.  Every refusal is a short text response and at most
one rate-limited warning line; nothing here raises into the WSGI server.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from werkzeug.wsgi import ClosingIterator

from .ops_stats import RefusalCounts
from .security_config import SecurityConfig, policy_options
from .security_http import client_key, is_loopback, own_origin, path_under, query_names
from .security_limits import (
    ConnectionTally,
    HandshakeRate,
    RefusalLog,
    Reservation,
    retry_after,
)
from .security_origin import OriginError, parse_origin
from .security_proxy import ForwardedHeaderError

__all__ = ["SecurityPolicy", "wrap"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]

_RESERVATION = "server.security.reservation"
_CLIENT = "server.security.client"
_TOKEN_LIST = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*\Z")
_STATUS = {400: "400 Bad Request", 403: "403 Forbidden", 411: "411 Length Required",
           413: "413 Content Too Large", 429: "429 Too Many Requests",
           503: "503 Service Unavailable"}


class SecurityPolicy:
    """WSGI middleware: origin, proxy, size and rate policy for Socket.IO.

    ``SecurityPolicy(app, logger=None, **options)`` where ``options`` are
    resolved settings (docs/settings.md): the ``security`` scope plus
    ``cors_allowed_origins``, ``cors_credentials``, ``max_http_buffer_size``,
    ``max_connections`` and ``path``.  Bad options raise ConfigurationError.
    """

    def __init__(self, app: WSGIApp, logger: logging.Logger | None = None,
                 **options: Any) -> None:
        self.app = app
        self.config = SecurityConfig.load(options)
        self.logger = logger or logging.getLogger("server.security")
        self.refusals = RefusalLog(self.logger)
        self.refused = RefusalCounts()  # by reason, for /metrics (server/ops.py)
        cfg = self.config
        self.rate = (HandshakeRate(cfg.handshake_rate, cfg.handshake_burst)
                     if cfg.handshake_rate else None)
        self.tally = ConnectionTally(cfg.max_per_client, cfg.max_connections)
        self._prefix = f"/{cfg.path}/"

    # -- called by the Engine.IO server ------------------------------------------
    def session_opened(self, sid: str, environ: Mapping[str, Any]) -> None:
        """An Engine.IO session was accepted (call after the connect handler)."""
        client = environ.get(_CLIENT) or client_key(environ.get("REMOTE_ADDR", ""))
        self.tally.opened(sid, client, environ.get(_RESERVATION))

    def session_closed(self, sid: str) -> None:
        """An Engine.IO session ended (any reason); idempotent."""
        self.tally.closed(sid)

    # -- the WSGI application ------------------------------------------------------
    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        try:
            self.config.proxies.apply(environ)
        except ForwardedHeaderError as e:
            self._warn("proxy", environ.get("REMOTE_ADDR", "?"),
                       "refused request from trusted proxy %s: %s",
                       environ.get("REMOTE_ADDR", "?"), str(e))
            return self._refuse(environ, start_response, 400, str(e), kind="proxy")
        if not path_under(environ.get("PATH_INFO", ""), self._prefix):
            return self.app(environ, self._headers(environ, start_response, None))
        origin, problem = self._origin(environ)
        if problem:
            return self._refuse(environ, start_response, 403, problem, kind="origin")
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "OPTIONS":
            return self._preflight(environ, start_response, origin)
        if method == "POST":
            refusal = self._check_length(environ)
            if refusal:
                return self._refuse(environ, start_response, *refusal, kind="length")
        query = query_names(environ.get("QUERY_STRING", ""))
        if "j" in query:
            return self._refuse(environ, start_response, 403,
                                "JSONP polling is refused: no Origin protects it",
                                kind="jsonp")
        reservation: Reservation | None = None
        if "sid" not in query:  # a handshake: a new session
            client = environ[_CLIENT] = client_key(environ.get("REMOTE_ADDR", ""))
            admitted = self._admit(environ, client)
            if not isinstance(admitted, Reservation):
                return self._refuse(environ, start_response, *admitted)
            reservation = environ[_RESERVATION] = admitted
        try:
            body = self.app(environ, self._headers(environ, start_response, origin))
        except BaseException:
            if reservation is not None:
                self.tally.release(reservation)
            raise
        if reservation is None:
            return body
        return ClosingIterator(body, lambda: self.tally.release(reservation))

    # -- checks ---------------------------------------------------------------------
    def _origin(self, environ: dict) -> tuple[str | None, str | None]:
        """(the allowed Origin header or None, the refusal reason or None)."""
        text = environ.get("HTTP_ORIGIN")
        if text is None:
            # a browser sends Origin with every fetch, XHR and WebSocket; without
            # it, a cross-site Sec-Fetch-Site means a <script>/<img> load (JSONP)
            site = environ.get("HTTP_SEC_FETCH_SITE", "")
            if site in ("cross-site", "same-site"):
                self._warn("origin", "sec-fetch-site", "refused a %s request without "
                           "Origin on %s (Sec-Fetch-Site: %s)", site, self._prefix, site)
                return None, "cross-site request without Origin refused"
            return None, None  # not a browser: nothing to protect against here
        cfg = self.config
        shown = text[:80] + ("..." if len(text) > 80 else "")
        try:
            origin = parse_origin(text)
        except OriginError as e:
            self._warn("origin", shown, "refused Origin %r on %s: %s", shown,
                       self._prefix, str(e))
            return None, f"Origin refused: {e}"
        if cfg.allow_any or origin == own_origin(environ) or origin in cfg.allowed:
            return text, None
        if cfg.allowed_check is not None:
            try:
                if cfg.allowed_check(text, environ):
                    return text, None
            except Exception:  # the application's check failed: refuse, say so once
                self.logger.exception("cors_allowed_origins check raised for %r", shown)
                return None, "Origin refused"
        hint = ""
        if environ.get("server.proxy.ignored"):
            hint = ("; X-Forwarded-* headers were ignored: if a proxy in front sets them, "
                    "set trusted_proxies (e.g. trusted_proxies=1)")
        self._warn("origin", shown, "refused Origin %r on %s (the server is %s): to allow "
                   "it, add %r to cors_allowed_origins%s", shown, self._prefix,
                   own_origin(environ) or "unknown", str(origin), hint)
        return None, "Origin not allowed (cross-site request refused)"

    def _check_length(self, environ: dict) -> tuple[int, str] | None:
        length = environ.get("CONTENT_LENGTH", "")
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() or not length:
            return 411, "POST needs a Content-Length header"
        if not length.isdigit():
            return 400, "Content-Length is not a number"
        if int(length) > self.config.max_body:
            return 413, f"body larger than max_http_buffer_size={self.config.max_body}"
        return None

    def _admit(self, environ: dict, client: str) -> Reservation | tuple[int, str, str, str]:
        # Per-address limits skip loopback peers: behind a local proxy with no
        # trusted_proxies set, every client would share 127.0.0.1 and the
        # whole site would be throttled as one address (docs/security.md).
        per_address = self.config.limit_loopback or not is_loopback(client)
        if self.rate is not None and per_address:
            wait = self.rate.take(client)
            if wait:
                self._warn("rate", client, "refused handshakes from %s: more than "
                           "handshake_rate=%s/s (burst %s)", client,
                           self.config.handshake_rate, self.config.handshake_burst)
                return 429, "too many new connections; slow down", retry_after(wait), "rate"
        reservation = self.tally.reserve(client, per_client=per_address)
        if reservation == "total":
            self._warn("cap", "total", "refused a handshake: max_connections=%s reached",
                       self.config.max_connections)
            return 503, "server at its connection limit; try again later", "5", "cap_total"
        if reservation == "client":
            self._warn("cap", client, "refused a handshake from %s: "
                       "max_connections_per_ip=%s reached", client, self.config.max_per_client)
            return 429, "too many open connections from your address", "5", "cap_ip"
        assert isinstance(reservation, Reservation)
        return reservation

    def _warn(self, kind: str, key: str, message: str, *args: Any) -> None:
        self.refusals.warning(kind, key, message, *args)

    # -- responses ------------------------------------------------------------------
    def _security_headers(self, environ: dict, headers: list[tuple[str, str]]) -> None:
        names = {name.lower() for name, _ in headers}
        if "x-content-type-options" not in names:
            headers.append(("X-Content-Type-Options", "nosniff"))
        if "referrer-policy" not in names:
            headers.append(("Referrer-Policy", "same-origin"))
        if (self.config.hsts_max_age and environ.get("wsgi.url_scheme") == "https"
                and "strict-transport-security" not in names):
            headers.append(("Strict-Transport-Security",
                            f"max-age={self.config.hsts_max_age}"))

    def _cors_headers(self, origin: str | None) -> list[tuple[str, str]]:
        headers = [("Vary", "Origin")]
        if origin is not None:
            headers.append(("Access-Control-Allow-Origin", origin))
            if self.config.credentials:
                headers.append(("Access-Control-Allow-Credentials", "true"))
        return headers

    def _headers(self, environ: dict, start_response: StartResponse,
                 origin: str | None) -> StartResponse:
        """start_response adding our headers; on the Socket.IO path, CORS is ours."""
        ours = path_under(environ.get("PATH_INFO", ""), self._prefix)

        def patched(status: str, headers: list, exc_info: Any = None) -> Any:
            if ours:
                vary = [v for n, v in headers if n.lower() == "vary"]
                headers = [h for h in headers if not h[0].lower().startswith(
                    "access-control-") and h[0].lower() != "vary"]
                headers += self._cors_headers(origin)
                if vary:  # keep e.g. Accept-Encoding next to our Origin
                    headers[headers.index(("Vary", "Origin"))] = (
                        "Vary", ", ".join([*vary, "Origin"]))
            else:
                headers = list(headers)
            self._security_headers(environ, headers)
            return start_response(status, headers, exc_info)

        return patched

    def _preflight(self, environ: dict, start_response: StartResponse,
                   origin: str | None) -> Iterable[bytes]:
        headers = self._cors_headers(origin) + [
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            ("Access-Control-Max-Age", "600"), ("Content-Length", "0")]
        asked = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "").strip()
        if asked and _TOKEN_LIST.match(asked):
            headers.append(("Access-Control-Allow-Headers", asked))
        self._security_headers(environ, headers)
        start_response("204 No Content", headers)
        return [b""]

    def _refuse(self, environ: dict, start_response: StartResponse, status: int,
                reason: str, retry: str | None = None, kind: str = "other") -> Iterable[bytes]:
        self.refused.add(kind)
        body = (reason + "\n").encode("utf-8", "replace")
        headers = [("Content-Type", "text/plain; charset=utf-8"),
                   ("Content-Length", str(len(body))), ("Vary", "Origin"),
                   ("Cache-Control", "no-store")]
        if retry is not None:
            headers.append(("Retry-After", retry))
        self._security_headers(environ, headers)
        start_response(_STATUS[status], headers)
        return [body]


def wrap(socketio_wsgi_app: WSGIApp, options: Mapping[str, Any],
         logger: logging.Logger | None = None) -> WSGIApp:
    """``socketio_wsgi_app`` behind a :class:`SecurityPolicy` built from
    ``options``, a resolved settings dict (names the policy does not read,
    such as ``logger`` or ``json``, are left out); unchanged when
    ``security_policy=False``."""
    policy = SecurityPolicy(socketio_wsgi_app, logger=logger, **policy_options(options))
    return policy if policy.config.enabled else socketio_wsgi_app
