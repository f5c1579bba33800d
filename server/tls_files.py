"""Reading a certificate, its key and a CA bundle, and the :class:`Finding`
every TLS check returns (see :mod:`server.tls_check` for the exit statuses)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

EXIT_OK = 0
EXIT_UNREADABLE = 2
EXIT_KEY_MISMATCH = 3
EXIT_CHAIN = 4
EXIT_HOST = 5
EXIT_EXPIRED = 6
EXIT_EXPIRING = 7
EXIT_WEAK = 8
EXIT_KEY_PERMISSIONS = 9


@dataclass(frozen=True)
class Finding:
    """One line of the report. ``ok`` is None for a check that was skipped."""

    check: str
    ok: bool | None
    code: int
    detail: str
    fix: str = ""

    def line(self) -> str:
        word = {True: "OK  ", False: "FAIL", None: "SKIP"}[self.ok]
        fix = f" -- fix: {self.fix}" if self.ok is False and self.fix else ""
        return f"{word} {self.check}: {self.detail}{fix}"


@dataclass(frozen=True)
class Material:
    """A certificate file (leaf first, then any chain) and its private key."""

    certfile: str
    keyfile: str
    certs: tuple[x509.Certificate, ...]
    key: object

    @property
    def leaf(self) -> x509.Certificate:
        return self.certs[0]


def _read(path: str, what: str) -> tuple[bytes | None, Finding | None]:
    try:
        with open(path, "rb") as fh:
            return fh.read(), None
    except FileNotFoundError:
        return None, Finding("files", False, EXIT_UNREADABLE, f"{what} {path} does not exist",
                             "give the right path, or create one with "
                             "`python -m server tls selfsigned`")
    except PermissionError:
        return None, Finding("files", False, EXIT_UNREADABLE,
                             f"{what} {path} is not readable by uid {os.getuid()}",
                             "let this user read it (chown/chgrp, or chmod 640 with the "
                             "service's group)")
    except IsADirectoryError:
        return None, Finding("files", False, EXIT_UNREADABLE, f"{what} {path} is a directory",
                             "give the path of the PEM file inside it")
    except OSError as exc:
        return None, Finding("files", False, EXIT_UNREADABLE,
                             f"{what} {path} cannot be read ({exc.strerror})", "check the path")


def load(certfile: str, keyfile: str | None = None) -> tuple[Material | None, Finding]:
    """Read and parse both files; the key may sit in ``certfile`` if ``keyfile`` is None."""
    keyfile = keyfile or certfile
    cert_pem, problem = _read(certfile, "certificate file")
    if problem:
        return None, problem
    key_pem, problem = _read(keyfile, "key file")
    if problem:
        return None, problem
    assert cert_pem is not None and key_pem is not None
    try:
        certs = tuple(x509.load_pem_x509_certificates(cert_pem))
    except ValueError:
        return None, Finding("files", False, EXIT_UNREADABLE,
                             f"certificate file {certfile} holds no PEM certificate",
                             "give a PEM file (-----BEGIN CERTIFICATE-----); convert DER with "
                             "`openssl x509 -inform der -in CERT -out cert.pem`")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        return None, Finding("files", False, EXIT_UNREADABLE,
                             f"key file {keyfile} is encrypted with a passphrase",
                             "servers start unattended: store it decrypted with "
                             "`openssl pkey -in KEY -out key.pem` (mode 0600)")
    except (ValueError, UnsupportedAlgorithm) as exc:
        return None, Finding("files", False, EXIT_UNREADABLE,
                             f"key file {keyfile} holds no usable PEM private key ({exc})",
                             "give the PEM key (-----BEGIN PRIVATE KEY-----) that was made "
                             "with the certificate")
    names = f"{certfile} and {keyfile}" if keyfile != certfile else certfile
    return Material(certfile, keyfile, certs, key), Finding(
        "files", True, EXIT_OK, f"read {len(certs)} certificate(s) and a key from {names}")


def load_ca(cafile: str) -> tuple[list[x509.Certificate], Finding | None]:
    """The certificates of a CA bundle, or a ``files`` finding saying why not."""
    data, problem = _read(cafile, "CA file")
    if problem:
        return [], problem
    try:
        return x509.load_pem_x509_certificates(data or b""), None
    except ValueError:
        return [], Finding("files", False, EXIT_UNREADABLE,
                           f"CA file {cafile} holds no PEM certificate",
                           "give the CA certificate(s) in PEM form")
