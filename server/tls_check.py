"""Checks on a certificate and its private key, shared by ``python -m server tls
check`` and the start-up validation in :func:`server.tls.validate_for_startup`.

Every check returns a :class:`Finding`: what was checked, whether it passed,
the exit status that names it, and the fix.  Needs the ``cryptography``
package (the ``tls`` extra); the caller imports this module only when needed.

Exit statuses (the order of the list is the order the checks run in; when
several fail, ``python -m server tls check`` exits with the first one):

== =========================================================================
0  every check passed
2  a file is missing, unreadable or not PEM (also: command-line usage error)
3  the private key does not belong to the certificate
8  weak key (RSA < 2048, EC other than P-256/P-384) or SHA-1/MD5 signature
6  a certificate in the file has expired (or is not valid yet)
4  the chain does not verify against --ca (or the system trust store)
5  a --host is not covered by the certificate's subjectAltName
9  the key file is world-readable or group/world-writable
7  a certificate expires within --days days
== =========================================================================
"""
from __future__ import annotations

import datetime
import os
import stat
from collections.abc import Iterable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .tls_chain import check_chain, check_hosts, self_signed
from .tls_files import (
    EXIT_CHAIN,
    EXIT_EXPIRED,
    EXIT_EXPIRING,
    EXIT_HOST,
    EXIT_KEY_MISMATCH,
    EXIT_KEY_PERMISSIONS,
    EXIT_OK,
    EXIT_UNREADABLE,
    EXIT_WEAK,
    Finding,
    Material,
    load,
    load_ca,
)

#: curves every browser accepts for server certificates (Chrome does not do P-521)
GOOD_CURVES = ("secp256r1", "secp384r1")
MIN_RSA_BITS = 2048
WEAK_HASHES = ("md5", "sha1")


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def check_key_match(m: Material) -> Finding:
    if _spki(m.key.public_key()) == _spki(m.leaf.public_key()):  # type: ignore[attr-defined]
        return Finding("key-match", True, EXIT_OK, "the private key belongs to the certificate")
    return Finding("key-match", False, EXIT_KEY_MISMATCH,
                   f"the private key in {m.keyfile} does not belong to the first certificate "
                   f"in {m.certfile}",
                   "pair the certificate with the key it was issued for (the leaf certificate "
                   "must come first in the certificate file)")


def _key_problem(public_key: object) -> str | None:
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            return f"RSA key of {public_key.key_size} bits (need >= {MIN_RSA_BITS})"
        return None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in GOOD_CURVES:
            return f"EC key on {public_key.curve.name} (need P-256 or P-384)"
        return None
    return f"{type(public_key).__name__} key (browsers accept only RSA and ECDSA)"


def _signature_problem(cert: x509.Certificate) -> str | None:
    try:
        algo = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:  # MD2, MD4 and other hashes cryptography cannot name
        return f"signature algorithm {cert.signature_algorithm_oid.dotted_string} is not supported"
    if algo is not None and algo.name in WEAK_HASHES:
        return f"signed with {algo.name.upper()}"
    return None


def check_strength(m: Material) -> Finding:
    problems = []
    for index, cert in enumerate(m.certs):
        label = "certificate" if index == 0 else f"chain certificate #{index}"
        key_problem = _key_problem(cert.public_key())
        if key_problem:
            problems.append(f"{label} has a {key_problem}")
        # a root's signature on itself is never checked by clients
        sig_problem = None if self_signed(cert) else _signature_problem(cert)
        if sig_problem:
            problems.append(f"{label} is {sig_problem}")
    if problems:
        return Finding("strength", False, EXIT_WEAK, "; ".join(problems),
                       "reissue with ECDSA P-256 (or RSA >= 2048) signed with SHA-256 or better")
    leaf_key = m.leaf.public_key()
    kind = (f"RSA {leaf_key.key_size}" if isinstance(leaf_key, rsa.RSAPublicKey)
            else f"EC {leaf_key.curve.name}")  # type: ignore[union-attr]
    algo = m.leaf.signature_hash_algorithm
    signed = algo.name.upper() if algo else m.leaf.signature_algorithm_oid.dotted_string
    return Finding("strength", True, EXIT_OK, f"{kind} key, signed with {signed}")


def _fmt(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def check_validity(m: Material, now: datetime.datetime) -> Finding:
    for index, cert in enumerate(m.certs):
        label = f"the certificate in {m.certfile}" if index == 0 else f"chain certificate #{index}"
        if cert.not_valid_after_utc <= now:
            return Finding("expiry", False, EXIT_EXPIRED,
                           f"{label} expired on {_fmt(cert.not_valid_after_utc)}",
                           "renew it (certbot renew, or `python -m server tls selfsigned` for "
                           "development) and restart")
        if cert.not_valid_before_utc > now:
            return Finding("expiry", False, EXIT_EXPIRED,
                           f"{label} is not valid before {_fmt(cert.not_valid_before_utc)}",
                           "check this machine's clock, or wait until then")
    return Finding("expiry", True, EXIT_OK,
                   f"valid until {_fmt(min(c.not_valid_after_utc for c in m.certs))}")


def check_expiring(m: Material, now: datetime.datetime, days: int) -> Finding:
    soonest = min(m.certs, key=lambda c: c.not_valid_after_utc)
    left = soonest.not_valid_after_utc - now
    if left <= datetime.timedelta(0):
        return Finding("renewal", False, EXIT_EXPIRED, "already expired", "renew it")
    if left < datetime.timedelta(days=days):
        return Finding("renewal", False, EXIT_EXPIRING,
                       f"expires in {left.days} day(s), on {_fmt(soonest.not_valid_after_utc)} "
                       f"(threshold {days} days)", "renew it now")
    return Finding("renewal", True, EXIT_OK, f"{left.days} days left (threshold {days})")


def key_permission_problem(keyfile: str) -> str | None:
    try:
        mode = stat.S_IMODE(os.stat(keyfile).st_mode)
    except OSError as exc:
        return f"cannot stat {keyfile}: {exc.strerror}"
    bad = []
    if mode & stat.S_IROTH:
        bad.append("world-readable")
    if mode & stat.S_IWOTH:
        bad.append("world-writable")
    if mode & stat.S_IWGRP:
        bad.append("group-writable")
    return f"key file {keyfile} is {' and '.join(bad)} (mode {mode:04o})" if bad else None


KEY_PERMISSION_FIX = ("`chmod 600 KEY` (or `chmod 640 KEY` with the service's group, e.g. "
                      "`chgrp ssl-cert KEY`)")


def check_key_permissions(m: Material) -> Finding:
    problem = key_permission_problem(m.keyfile)
    if problem:
        return Finding("key-permissions", False, EXIT_KEY_PERMISSIONS, problem,
                       KEY_PERMISSION_FIX.replace("KEY", m.keyfile))
    mode = stat.S_IMODE(os.stat(m.keyfile).st_mode)
    return Finding("key-permissions", True, EXIT_OK, f"key file mode {mode:04o}")


def run_checks(certfile: str, keyfile: str | None, hosts: Iterable[str] = (),
               cafile: str | None = None, days: int = 30,
               now: datetime.datetime | None = None) -> list[Finding]:
    """Every check, in the documented order; stops after ``files`` if it fails."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    hosts = list(hosts)
    material, first = load(certfile, keyfile)
    if material is None:
        return [first]
    return [first, check_key_match(material), check_strength(material),
            check_validity(material, now), check_chain(material, cafile, now, hosts),
            check_hosts(material, hosts), check_key_permissions(material),
            check_expiring(material, now, days)]


def exit_status(findings: Iterable[Finding]) -> int:
    return next((f.code for f in findings if f.ok is False), EXIT_OK)


__all__ = [
    "EXIT_CHAIN",
    "EXIT_EXPIRED",
    "EXIT_EXPIRING",
    "EXIT_HOST",
    "EXIT_KEY_MISMATCH",
    "EXIT_KEY_PERMISSIONS",
    "EXIT_OK",
    "EXIT_UNREADABLE",
    "EXIT_WEAK",
    "Finding",
    "Material",
    "check_key_match",
    "check_validity",
    "exit_status",
    "key_permission_problem",
    "load",
    "load_ca",
    "run_checks",
]
