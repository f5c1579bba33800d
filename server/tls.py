"""TLS for the server: Mozilla's server-side profiles as ``ssl.SSLContext``,
start-up validation of certificate and key, gunicorn's ``ssl_context`` hook,
and the HSTS header.

Profiles (https://wiki.mozilla.org/Security/Server_Side_TLS, guidelines 5.7):

``intermediate`` (default)
    TLS 1.2 and 1.3.  TLS 1.2 suites: ECDHE key exchange with AES-GCM or
    ChaCha20-Poly1305 only (:data:`INTERMEDIATE_TLS12_CIPHERS`).  Mozilla's
    list also has three DHE-RSA suites; we leave them out: Python's
    ``ssl`` server loads no DH parameters unless given a dhparam file, so
    OpenSSL would never pick them anyway, finite-field DHE is slow and
    invites CPU exhaustion (CVE-2002-20001 "D(HE)at"), and every client
    that can do DHE-GCM can do ECDHE-GCM.
``modern``
    TLS 1.3 only.

Both: no TLS compression (CRIME), no renegotiation, and the client picks
the cipher suite (Mozilla: every listed suite is strong, and clients know
whether they have AES hardware).  TLS 1.3 suites are OpenSSL's defaults,
which are Mozilla's (:data:`TLS13_CIPHERSUITES`; Python cannot change them).
Key-exchange groups are OpenSSL's defaults (X25519, P-256, P-384, ...).

# design: GunicornSSLContext is called by gunicorn from its worker threads
# (gthread: once per accepted connection, inside conn.init()).  It builds one
# SSLContext per set of files and hands the same object to every
# connection: an SSLContext is safe to share between threads for
# wrap_socket.  A single lock guards the (key, context) cache; building a
# context happens under it (rare: only when a file changes), and nothing
# else blocks while it is held.  On close there is nothing to release.
"""
from __future__ import annotations

import datetime
import logging
import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError

log = logging.getLogger("server.tls")

#: Mozilla intermediate TLS 1.2 suites, OpenSSL names, in Mozilla's order
INTERMEDIATE_TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
)
#: on Mozilla's intermediate list but deliberately not offered (see module doc)
EXCLUDED_DHE_CIPHERS = (
    "DHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-CHACHA20-POLY1305",
)
#: OpenSSL cipher string for TLS 1.2 (nginx ``ssl_ciphers``, uWSGI ``https`` ciphers field)
INTERMEDIATE_CIPHERS = ":".join(INTERMEDIATE_TLS12_CIPHERS)
#: TLS 1.3 suites (OpenSSL ``-ciphersuites``); OpenSSL's default, listed for the docs
TLS13_CIPHERSUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#: two years, Mozilla's recommendation and the HSTS preload list's minimum is one
HSTS_MAX_AGE = 63072000

#: ALPN identifiers (IANA registry) for gunicorn's ``http_protocols`` names
_ALPN = {"h1": "http/1.1", "h2": "h2"}


@dataclass(frozen=True)
class Profile:
    name: str
    minimum_version: ssl.TLSVersion
    summary: str


PROFILES: dict[str, Profile] = {
    "intermediate": Profile("intermediate", ssl.TLSVersion.TLSv1_2,
                            "TLS 1.2 + 1.3, ECDHE with AES-GCM/ChaCha20 (default)"),
    "modern": Profile("modern", ssl.TLSVersion.TLSv1_3, "TLS 1.3 only"),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise ConfigurationError(
            f"TLS profile {name!r} is unknown; fix: use one of {', '.join(PROFILES)}") from None


def hsts_header(max_age: int = HSTS_MAX_AGE, include_subdomains: bool = False,
                preload: bool = False) -> str:
    """The ``Strict-Transport-Security`` header value."""
    if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0:
        raise ConfigurationError(f"HSTS max_age={max_age!r} is invalid; fix: give whole "
                                 f"seconds >= 0 ({HSTS_MAX_AGE} is two years)")
    if preload and (not include_subdomains or max_age < 31536000):
        raise ConfigurationError(
            f"HSTS preload with include_subdomains={include_subdomains}, max_age={max_age} is "
            f"refused by the preload list; fix: set include_subdomains=True and max_age >= "
            f"31536000")
    value = f"max-age={max_age}"
    if include_subdomains:
        value += "; includeSubDomains"
    if preload:
        value += "; preload"
    return value


def validate_for_startup(certfile: str, keyfile: str | None = None,
                         ca: str | None = None) -> None:
    """Refuse to start on a TLS set-up that cannot work or leaks the key.

    Raises :class:`ConfigurationError` with one message naming the file, the
    problem and the fix, for: a missing, unreadable or non-PEM file, a key
    that does not belong to the certificate, an expired (or not yet valid)
    certificate, a key file readable by everyone or writable by others, and
    an unreadable ``ca`` (the CA bundle for client certificates).
    """
    try:
        from . import tls_check
    except ImportError as exc:
        raise ConfigurationError(
            f"TLS start-up checks need the 'cryptography' package ({exc}); fix: "
            f"pip install 'server[tls]'") from exc

    material, finding = tls_check.load(certfile, keyfile)
    findings = [finding]
    if material is not None:
        now = datetime.datetime.now(datetime.timezone.utc)
        findings += [tls_check.check_key_match(material),
                     tls_check.check_validity(material, now),
                     tls_check.check_key_permissions(material)]
    if ca:
        findings.append(tls_check.load_ca(ca)[1] or finding)
    for f in findings:
        if f.ok is False:
            raise ConfigurationError(f"TLS {f.check}: {f.detail}; fix: {f.fix}")


def make_ssl_context(certfile: str, keyfile: str | None = None, ca_certs: str | None = None,
                     profile: str = "intermediate", *, cert_reqs: int = ssl.CERT_NONE,
                     alpn_protocols: list[str] | None = None) -> ssl.SSLContext:
    """A server ``SSLContext`` implementing a Mozilla profile.

    ``ca_certs`` and ``cert_reqs`` are for client certificates (as gunicorn's
    settings of the same names): ``ca_certs`` is the bundle client
    certificates must chain to, ``cert_reqs`` ``ssl.CERT_OPTIONAL`` or
    ``ssl.CERT_REQUIRED`` to ask for them.
    """
    prof = get_profile(profile)
    if cert_reqs not in (ssl.CERT_NONE, ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED):
        raise ConfigurationError(f"cert_reqs={cert_reqs!r} is invalid; fix: use 0 (no client "
                                 f"certificate), 1 (optional) or 2 (required)")
    if cert_reqs != ssl.CERT_NONE and not ca_certs:
        raise ConfigurationError(f"cert_reqs={int(cert_reqs)} asks for client certificates but "
                                 f"ca_certs is not set; fix: set ca_certs to the CA bundle "
                                 f"that issues them")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = prof.minimum_version
    ctx.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    ctx.set_ciphers(INTERMEDIATE_CIPHERS)  # TLS 1.2 only; TLS 1.3 suites are separate
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        ctx.load_cert_chain(certfile, keyfile)
        if ca_certs:
            ctx.load_verify_locations(cafile=ca_certs)
    except (OSError, ssl.SSLError) as exc:
        # OpenSSL's own words ("[SSL] PEM lib") name neither file nor fix
        validate_for_startup(certfile, keyfile, ca_certs)
        raise ConfigurationError(f"TLS: cannot load certificate {certfile} / key "
                                 f"{keyfile or certfile}: {exc}; fix: check both files with "
                                 f"`python -m server tls check`") from exc
    ctx.verify_mode = ssl.VerifyMode(cert_reqs)
    if alpn_protocols:
        ctx.set_alpn_protocols(alpn_protocols)
    return ctx


def check_gunicorn_config(cfg: Any) -> None:
    """Start-up check of gunicorn's TLS settings (call from ``on_starting``)."""
    if not (cfg.certfile or cfg.keyfile):
        return
    if not cfg.certfile:
        raise ConfigurationError(f"gunicorn keyfile={cfg.keyfile!r} is set but certfile is not; "
                                 f"fix: set SERVER_CERTFILE (gunicorn --certfile) too")
    if cfg.ciphers:
        raise ConfigurationError(
            f"gunicorn ciphers={cfg.ciphers!r} conflicts with the TLS profile, which sets the "
            f"cipher suites; fix: remove the ciphers setting (and choose the profile instead)")
    validate_for_startup(cfg.certfile, cfg.keyfile, cfg.ca_certs)
    # gunicorn workers load the files after switching to ``user``/``group``
    uid, gid = getattr(cfg, "uid", os.geteuid()), getattr(cfg, "gid", os.getegid())
    for path in (cfg.certfile, cfg.keyfile, cfg.ca_certs):
        if path and uid != 0 and not _readable_by(path, uid, gid,
                                                  getattr(cfg, "initgroups", False)):
            raise ConfigurationError(
                f"TLS file {path} is not readable by the worker user (uid {uid}, gid {gid}); "
                f"gunicorn workers load it after dropping privileges; fix: `chgrp {gid} {path}` "
                f"and `chmod 640 {path}` (or run as a user who can read it)")


def _readable_by(path: str, uid: int, gid: int, initgroups: bool) -> bool:
    import pwd

    st = os.stat(path)
    groups = {gid}
    if initgroups:  # gunicorn's --initgroups adds the user's supplementary groups
        try:
            groups.update(os.getgrouplist(pwd.getpwuid(uid).pw_name, gid))
        except KeyError:  # no passwd entry: no supplementary groups
            pass
    if st.st_uid == uid:
        return bool(st.st_mode & 0o400)
    if st.st_gid in groups:
        return bool(st.st_mode & 0o040)
    return bool(st.st_mode & 0o004)


def _stamp(paths: tuple[str | None, ...]) -> tuple[tuple[int, int, int] | None, ...]:
    out = []
    for path in paths:
        try:
            st = os.stat(path) if path else None
        except OSError:
            st = None
        out.append((st.st_ino, st.st_size, st.st_mtime_ns) if st else None)
    return tuple(out)


class GunicornSSLContext:
    """gunicorn's ``ssl_context`` server hook, built on :func:`make_ssl_context`.

    In ``gunicorn.conf.py``::

        from server.tls import GunicornSSLContext
        ssl_context = GunicornSSLContext(profile="intermediate")

    gunicorn calls the hook for every connection; this one builds a context
    once and rebuilds it only when the certificate, key or CA file changes
    on disk, so renewed certificates are served without a restart.  If a
    renewed pair is broken (say the certificate was replaced before the
    key), the previous context keeps serving and the problem is logged
    once on the ``server.tls`` logger.  gunicorn's own default factory is
    not used: it enables server cipher preference and Python's default
    suite list, which includes CBC suites.
    """

    def __init__(self, profile: str = "intermediate") -> None:
        self.profile = get_profile(profile).name
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._context: ssl.SSLContext | None = None
        self._failed: tuple[Any, ...] | None = None

    def __call__(self, conf: Any, default_ssl_context_factory: Callable[[], ssl.SSLContext]
                 ) -> ssl.SSLContext:
        files = (conf.certfile, conf.keyfile, conf.ca_certs)
        protocols = list(getattr(conf, "http_protocols", None) or ["h1"])
        key = (files, _stamp(files), conf.cert_reqs, conf.ciphers, tuple(protocols))
        with self._lock:
            if key == self._key and self._context is not None:
                return self._context
            try:
                check_gunicorn_config(conf)
                alpn = [_ALPN[p] for p in protocols if p in _ALPN] if "h2" in protocols else None
                context = make_ssl_context(conf.certfile, conf.keyfile, conf.ca_certs,
                                           self.profile, cert_reqs=conf.cert_reqs,
                                           alpn_protocols=alpn)
            except ConfigurationError as exc:
                if self._context is None:
                    raise
                if key != self._failed:
                    log.error("%s -- still serving the previous certificate", exc)
                    self._failed = key
                return self._context
            self._key, self._context, self._failed = key, context, None
            return context

    def __repr__(self) -> str:
        return f"GunicornSSLContext(profile={self.profile!r})"
