"""A development certificate authority and the certificates it issues.

``python -m server tls selfsigned`` lands here.  What it writes, in ``out``:

============== ====== ==========================================================
ca.pem         0644   the development CA; this is what clients are told to trust
ca-key.pem     0600   the CA's key: whoever holds it can mint certificates your
                      machine trusts -- keep it out of version control
cert.pem       0644   the server certificate (leaf), for ``certfile``
key.pem        0600   its private key, for ``keyfile``
fullchain.pem  0644   leaf followed by the CA, like certbot's fullchain.pem
============== ====== ==========================================================

An existing ``ca.pem`` + ``ca-key.pem`` pair in ``out`` is reused, so clients
that already trust it keep working when the host list changes.  Every file is
written to a temporary name created with its final mode (``os.open(...,
0o600)``; never a chmod afterwards, so no moment exists where a key is
readable by others) and then renamed over the old one.

The certificates satisfy what browsers and ``cryptography``'s verifier demand
of a private CA: CA basicConstraints critical with keyCertSign, leaf with
subjectAltName, serverAuth extended key usage, key identifiers, and a
lifetime of at most 825 days (Apple's limit for certificates from CAs that
users add themselves).
"""
from __future__ import annotations

import datetime
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import ConfigurationError
from .tls_hosts import parse_host

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
MAX_LEAF_DAYS = 825
CA_DAYS = 3650
#: certificates start an hour in the past so that clients with a slow clock accept them
BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class Issued:
    """Paths written by :func:`selfsigned`."""

    ca: str
    ca_key: str
    cert: str
    key: str
    fullchain: str
    ca_reused: bool
    hosts: tuple[str, ...]


def new_key(kind: str = "ec", bits: int = 2048) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        if bits < 2048:
            raise ConfigurationError(f"--bits {bits} is too small; fix: use 2048 or more "
                                     f"(3072 for keys meant to last past 2030)")
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    raise ConfigurationError(f"key kind {kind!r} is unknown; fix: use 'ec' or 'rsa'")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "server development CA"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
            now: datetime.datetime, days: int = CA_DAYS) -> x509.Certificate:
    # a random suffix keeps two developers' CAs apart in a shared trust store
    name = _name(f"server development CA {secrets.token_hex(4)}")
    public = key.public_key()
    return (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))


def make_leaf(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
              key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, hosts: Sequence[str],
              now: datetime.datetime, days: int = 365,
              not_after: datetime.datetime | None = None) -> x509.Certificate:
    """A server certificate for ``hosts``; ``not_after`` overrides ``days`` (tests)."""
    entries: list[x509.GeneralName] = []
    for host in hosts:
        parsed = parse_host(host)
        entries.append(x509.DNSName(parsed) if isinstance(parsed, str) else x509.IPAddress(parsed))
    public = key.public_key()
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    rsa_key = isinstance(public, rsa.RSAPublicKey)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(hosts[0]))]))
            .issuer_name(ca.subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(not_after or now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=rsa_key, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(entries), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))


def key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_file(path: str, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` atomically, the file born with ``mode``."""
    directory, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _load_ca(ca_path: str, ca_key_path: str) -> tuple[x509.Certificate, object]:
    try:
        with open(ca_path, "rb") as fh:
            ca = x509.load_pem_x509_certificate(fh.read())
        with open(ca_key_path, "rb") as fh:
            ca_key = serialization.load_pem_private_key(fh.read(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"existing CA {ca_path} / {ca_key_path} cannot be reused ({exc}); fix: delete both "
            f"files to make a new CA, or choose another --out") from exc
    return ca, ca_key


def selfsigned(out: str, hosts: Sequence[str] = DEFAULT_HOSTS, kind: str = "ec",
               bits: int = 2048, days: int = 365,
               now: datetime.datetime | None = None) -> Issued:
    """Make (or reuse) the development CA in ``out`` and issue a leaf for ``hosts``."""
    hosts = tuple(hosts) or DEFAULT_HOSTS
    for host in hosts:
        parse_host(host)  # fail on a bad name before any file is touched
    if not 1 <= days <= MAX_LEAF_DAYS:
        raise ConfigurationError(f"--days {days} is out of range; fix: use 1..{MAX_LEAF_DAYS} "
                                 f"(clients reject longer-lived server certificates)")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    key = new_key(kind, bits)  # a bad --bits fails before anything is written
    os.makedirs(out, exist_ok=True)
    paths = {name: os.path.join(out, name)
             for name in ("ca.pem", "ca-key.pem", "cert.pem", "key.pem", "fullchain.pem")}
    reuse = os.path.exists(paths["ca.pem"]) and os.path.exists(paths["ca-key.pem"])
    if reuse:
        ca, ca_key = _load_ca(paths["ca.pem"], paths["ca-key.pem"])
    else:
        ca_key = new_key(kind, bits)
        ca = make_ca(ca_key, now)
        write_file(paths["ca-key.pem"], key_pem(ca_key), 0o600)
        write_file(paths["ca.pem"], cert_pem(ca), 0o644)
    leaf = make_leaf(ca, ca_key, key, hosts, now, days)  # type: ignore[arg-type]
    write_file(paths["key.pem"], key_pem(key), 0o600)
    write_file(paths["cert.pem"], cert_pem(leaf), 0o644)
    write_file(paths["fullchain.pem"], cert_pem(leaf) + cert_pem(ca), 0o644)
    return Issued(paths["ca.pem"], paths["ca-key.pem"], paths["cert.pem"], paths["key.pem"],
                  paths["fullchain.pem"], reuse, hosts)


def trust_instructions(ca_path: str) -> list[str]:
    """How to make clients trust the development CA, one line per client."""
    ca = os.path.abspath(ca_path)
    return [
        (f"Debian/Ubuntu: sudo cp {ca} /usr/local/share/ca-certificates/server-dev-ca.crt "
         f"&& sudo update-ca-certificates"),
        f"Python ssl, urllib, websocket-client: export SSL_CERT_FILE={ca}",
        (f"Python requests (python-socketio's client polls with it): "
         f"export REQUESTS_CA_BUNDLE={ca}"),
        f"Node.js: export NODE_EXTRA_CA_CERTS={ca}",
        f"curl: curl --cacert {ca} https://localhost:PORT/",
    ]
