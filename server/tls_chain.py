"""The chain and host checks of ``python -m server tls check``."""
from __future__ import annotations

import datetime
import os
import ssl
import warnings
from collections.abc import Sequence

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import verification

from .tls_files import EXIT_CHAIN, EXIT_HOST, EXIT_OK, Finding, Material, load_ca
from .tls_hosts import host_matches, parse_host


def self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _sans(cert: x509.Certificate) -> tuple[list[str], list[object]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)


def check_hosts(m: Material, hosts: Sequence[str]) -> Finding:
    if not hosts:
        return Finding("host", None, EXIT_OK, "no --host given")
    dns, ips = _sans(m.leaf)
    if not dns and not ips:
        return Finding("host", False, EXIT_HOST,
                       "the certificate has no subjectAltName (clients ignore the common name)",
                       "reissue it with every host name in subjectAltName")
    missing = [h for h in hosts if not host_matches(h, dns, ips)]
    listed = ", ".join([*dns, *map(str, ips)])
    if missing:
        return Finding("host", False, EXIT_HOST,
                       f"{', '.join(missing)} not covered by subjectAltName ({listed})",
                       "reissue the certificate with these names, or connect with a listed name")
    return Finding("host", True, EXIT_OK, f"{', '.join(hosts)} covered by ({listed})")


def _system_anchors() -> list[x509.Certificate]:
    paths = ssl.get_default_verify_paths()
    for cafile in (paths.cafile, paths.openssl_cafile):
        if cafile and os.path.isfile(cafile):
            with open(cafile, "rb") as fh, warnings.catch_warnings():
                # some distributions still ship roots with a negative serial number;
                # they are not ours to judge, and they cannot sign the certificate under test
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                return x509.load_pem_x509_certificates(fh.read())
    return []


def _verifier_subject(m: Material, hosts: Sequence[str]) -> verification.Subject:
    """A name the leaf covers, so that the chain check does not also judge the host."""
    dns, ips = _sans(m.leaf)
    for host in hosts:
        if host_matches(host, dns, ips):
            parsed = parse_host(host)
            return (verification.DNSName(parsed) if isinstance(parsed, str)
                    else verification.IPAddress(parsed))
    plain = [d for d in dns if not d.startswith("*.")]
    if plain:
        return verification.DNSName(plain[0])
    if ips:
        return verification.IPAddress(ips[0])
    if dns:
        return verification.DNSName("any" + dns[0][1:])
    return verification.DNSName("no-subject-alt-name.invalid")


def check_chain(m: Material, cafile: str | None, now: datetime.datetime,
                hosts: Sequence[str] = ()) -> Finding:
    note = ""
    if cafile:
        anchors, problem = load_ca(cafile)
        if problem:
            return problem
        source = f"--ca {cafile}"
    else:
        anchors = _system_anchors()
        roots = [c for c in m.certs[1:] if self_signed(c)]
        if roots:
            note = " (root taken from the certificate file: clients must trust it themselves)"
        anchors += roots
        source = "the system trust store"
    if not anchors:
        return Finding("chain", False, EXIT_CHAIN, f"no trust anchors in {source}",
                       "pass --ca with the CA certificate that issued it")
    # Judge the chain at a moment when every certificate in the file is valid:
    # expiry has its own check and exit status.
    start = max(c.not_valid_before_utc for c in m.certs)
    end = min(c.not_valid_after_utc for c in m.certs)
    when = min(max(now, start), end) if start <= end else now
    intermediates = [c for c in m.certs[1:] if not self_signed(c)]
    try:
        policy = verification.PolicyBuilder().store(verification.Store(anchors)).time(when)
        chain = policy.build_server_verifier(_verifier_subject(m, hosts)).verify(
            m.leaf, intermediates)
    except verification.VerificationError as exc:
        return Finding("chain", False, EXIT_CHAIN,
                       f"the certificate does not verify against {source}: {exc}",
                       "put the leaf first and its intermediates after it in the certificate "
                       "file (fullchain.pem), and pass the issuing CA with --ca")
    anchor = chain[-1].subject.rfc4514_string()
    return Finding("chain", True, EXIT_OK,
                   f"{len(chain)}-certificate chain verifies to {anchor} via {source}{note}")
