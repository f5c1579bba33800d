"""`python -m server tls selfsigned` and `python -m server tls check`.

Each bad certificate is made on the spot (with cryptography, or with the
openssl CLI for a SHA-1 signature cryptography refuses to make) and the
check must fail with the documented exit status.
"""
from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import shutil
import stat
import subprocess

import pytest

pytest.importorskip("cryptography")

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from server.commands import tls as tls_command
from server.tls_certs import cert_pem, key_pem, make_ca, make_leaf, new_key, write_file
from server.tls_hosts import host_matches

NOW = datetime.datetime.now(datetime.timezone.utc)


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="python -m server tls")
    tls_command.add_arguments(parser)
    return tls_command.main(parser.parse_args(list(argv)))


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def issued(tmp_path):
    out = tmp_path / "tls"
    assert run("selfsigned", "--out", str(out)) == 0
    return out


def write_pair(tmp_path, leaf, key, name="leaf"):
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}-key.pem"
    write_file(str(cert_path), cert_pem(leaf), 0o644)
    write_file(str(key_path), key_pem(key), 0o600)
    return str(cert_path), str(key_path)


@pytest.fixture
def ca(tmp_path):
    ca_key = new_key("ec")
    ca_cert = make_ca(ca_key, NOW)
    path = tmp_path / "test-ca.pem"
    write_file(str(path), cert_pem(ca_cert), 0o644)
    return ca_cert, ca_key, str(path)


# --- selfsigned ------------------------------------------------------------------------


def test_selfsigned_files_modes_san_and_key_type(tmp_path, capsys):
    issued = tmp_path / "tls"
    assert run("selfsigned", "--out", str(issued)) == 0
    out = capsys.readouterr().out
    for name, expected in [("ca.pem", 0o644), ("ca-key.pem", 0o600), ("cert.pem", 0o644),
                           ("key.pem", 0o600), ("fullchain.pem", 0o644)]:
        assert mode(issued / name) == expected, f"{name}: mode {mode(issued / name):o}"
    leaf = x509.load_pem_x509_certificate((issued / "cert.pem").read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"),
                                                       ipaddress.ip_address("::1")]
    public = leaf.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    chain = x509.load_pem_x509_certificates((issued / "fullchain.pem").read_bytes())
    assert [c.subject for c in chain] == [leaf.subject, leaf.issuer]
    for hint in ("update-ca-certificates", "SSL_CERT_FILE=", "REQUESTS_CA_BUNDLE=",
                 "NODE_EXTRA_CA_CERTS=", str(issued / "key.pem")):
        assert hint in out, f"{hint!r} missing from selfsigned output:\n{out}"


def test_selfsigned_rsa_custom_hosts_and_umask_zero(tmp_path):
    out = tmp_path / "rsa"
    old = os.umask(0)  # modes must come from os.open, not from a friendly umask
    try:
        assert run("selfsigned", "--out", str(out), "--rsa", "--bits", "3072",
                   "--host", "api.example.test", "--host", "*.ws.example.test",
                   "--host", "10.0.0.7") == 0
    finally:
        os.umask(old)
    assert mode(out / "key.pem") == 0o600 and mode(out / "ca-key.pem") == 0o600
    leaf = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    assert isinstance(leaf.public_key(), rsa.RSAPublicKey) and leaf.public_key().key_size == 3072
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["api.example.test", "*.ws.example.test"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]


def test_selfsigned_reuses_ca_and_replaces_loose_key_file(issued):
    ca_before = (issued / "ca.pem").read_bytes()
    os.chmod(issued / "key.pem", 0o644)  # as if someone loosened it; a rerun must not keep that
    assert run("selfsigned", "--out", str(issued), "--host", "other.test") == 0
    assert (issued / "ca.pem").read_bytes() == ca_before
    assert mode(issued / "key.pem") == 0o600
    assert run("check", str(issued / "cert.pem"), str(issued / "key.pem"),
               "--ca", str(issued / "ca.pem"), "--host", "other.test") == 0


@pytest.mark.parametrize("argv, words", [
    (["--rsa", "--bits", "1024"], ["--bits 1024", "2048"]),
    (["--bits", "4096"], ["--rsa"]),
    (["--host", "bad host!"], ["'bad host!'", "fix"]),
    (["--host", "*.localhost"], ["wildcard"]),
    (["--days", "1000"], ["--days 1000", "825"]),
])
def test_selfsigned_rejects_bad_input_without_writing(tmp_path, capsys, argv, words):
    out = tmp_path / "nothing"
    assert run("selfsigned", "--out", str(out), *argv) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err, f"expected {word!r} in error, got {err!r}"
    assert not out.exists() or not any(out.iterdir()), "files written despite the error"


# --- check -----------------------------------------------------------------------------


def test_check_passes_on_selfsigned(issued, capsys):
    code = run("check", str(issued / "cert.pem"), str(issued / "key.pem"),
               "--ca", str(issued / "ca.pem"), "--host", "localhost", "--host", "127.0.0.1")
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [ln for ln in out.splitlines() if not ln.startswith("result:")]
    assert len(lines) == 8 and all(ln.startswith("OK") for ln in lines), out


def test_check_fullchain_without_ca_uses_included_root(issued, capsys):
    assert run("check", str(issued / "fullchain.pem"), str(issued / "key.pem")) == 0
    assert "clients must trust it themselves" in capsys.readouterr().out


def assert_fails(capsys, expected_code, check_name, *argv):
    code = run("check", *argv)
    out = capsys.readouterr().out
    assert code == expected_code, f"expected exit {expected_code}, got {code}:\n{out}"
    fail = [ln for ln in out.splitlines() if ln.startswith("FAIL")]
    assert fail and fail[0].startswith(f"FAIL {check_name}:") and "fix:" in fail[0], out
    return out


def test_check_mismatched_key(issued, capsys):
    assert_fails(capsys, 3, "key-match", str(issued / "cert.pem"), str(issued / "ca-key.pem"),
                 "--ca", str(issued / "ca.pem"))


def test_check_expired(tmp_path, ca, capsys):
    ca_cert, ca_key, ca_path = ca
    key = new_key("ec")
    leaf = make_leaf(ca_cert, ca_key, key, ["localhost"], NOW - datetime.timedelta(days=30),
                     not_after=NOW - datetime.timedelta(days=1))
    out = assert_fails(capsys, 6, "expiry", *write_pair(tmp_path, leaf, key), "--ca", ca_path)
    assert "expired on" in out


def test_check_expiring_soon(tmp_path, ca, capsys):
    ca_cert, ca_key, ca_path = ca
    key = new_key("ec")
    leaf = make_leaf(ca_cert, ca_key, key, ["localhost"], NOW, days=10)
    pair = write_pair(tmp_path, leaf, key)
    assert run("check", *pair, "--ca", ca_path, "--days", "5") == 0
    assert_fails(capsys, 7, "renewal", *pair, "--ca", ca_path)  # default threshold: 30 days


def test_check_wrong_host(issued, capsys):
    out = assert_fails(capsys, 5, "host", str(issued / "cert.pem"), str(issued / "key.pem"),
                       "--ca", str(issued / "ca.pem"), "--host", "example.com")
    assert "example.com" in out


def test_check_wrong_ca(issued, ca, capsys):
    assert_fails(capsys, 4, "chain", str(issued / "cert.pem"), str(issued / "key.pem"),
                 "--ca", ca[2])


@pytest.mark.parametrize("loose", [0o644, 0o620])
def test_check_key_permissions(issued, capsys, loose):
    os.chmod(issued / "key.pem", loose)
    out = assert_fails(capsys, 9, "key-permissions", str(issued / "cert.pem"),
                       str(issued / "key.pem"), "--ca", str(issued / "ca.pem"))
    assert "chmod 600" in out


def test_check_weak_rsa_1024(tmp_path, ca, capsys):
    ca_cert, ca_key, ca_path = ca
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    leaf = make_leaf(ca_cert, ca_key, weak, ["localhost"], NOW)
    out = assert_fails(capsys, 8, "strength", *write_pair(tmp_path, leaf, weak), "--ca", ca_path)
    assert "1024" in out


def test_check_weak_curve(tmp_path, ca, capsys):
    ca_cert, ca_key, ca_path = ca
    key = ec.generate_private_key(ec.SECP521R1())
    leaf = make_leaf(ca_cert, ca_key, key, ["localhost"], NOW)
    assert_fails(capsys, 8, "strength", *write_pair(tmp_path, leaf, key), "--ca", ca_path)


def test_check_sha1_signature(tmp_path, capsys):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not installed (cryptography refuses to sign with SHA-1)")
    cert, key = tmp_path / "sha1.pem", tmp_path / "sha1-key.pem"
    made = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-sha1", "-nodes", "-days", "30",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)], check=False, capture_output=True, text=True,
        timeout=60)
    if made.returncode != 0:
        pytest.skip(f"this openssl will not sign with SHA-1: {made.stderr.strip()[:200]}")
    os.chmod(key, 0o600)
    # signed by a separate CA, so the SHA-1 signature is on a non-root certificate
    ca_cert, ca_key = (tmp_path / "sha1ca.pem"), (tmp_path / "sha1ca-key.pem")
    leaf_cert = tmp_path / "sha1-leaf.pem"
    steps = [
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-nodes", "-days", "30",
         "-subj", "/CN=sha1 test CA", "-keyout", str(ca_key), "-out", str(ca_cert)],
        [openssl, "x509", "-in", str(cert), "-CA", str(ca_cert), "-CAkey", str(ca_key),
         "-sha1", "-days", "30", "-out", str(leaf_cert), "-copy_extensions", "copyall"],
    ]
    for step in steps:
        made = subprocess.run(step, check=False, capture_output=True, text=True,
        timeout=60)
        if made.returncode != 0:
            pytest.skip(f"cannot make a SHA-1 signed certificate: {made.stderr.strip()[:200]}")
    out = assert_fails(capsys, 8, "strength", str(leaf_cert), str(key), "--ca", str(ca_cert))
    assert "SHA1" in out


@pytest.mark.parametrize("cert_text, word", [
    (None, "does not exist"),
    (b"not a certificate\n", "no PEM certificate"),
])
def test_check_unreadable(tmp_path, issued, capsys, cert_text, word):
    cert = tmp_path / "input.pem"
    if cert_text is not None:
        cert.write_bytes(cert_text)
    out = assert_fails(capsys, 2, "files", str(cert), str(issued / "key.pem"))
    assert word in out


def test_check_first_failure_decides_exit_status(tmp_path, ca, capsys):
    ca_cert, ca_key, ca_path = ca
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    leaf = make_leaf(ca_cert, ca_key, weak, ["localhost"], NOW - datetime.timedelta(days=30),
                     not_after=NOW - datetime.timedelta(days=1))
    cert, key = write_pair(tmp_path, leaf, weak)
    os.chmod(key, 0o644)
    out = assert_fails(capsys, 8, "strength", cert, key, "--ca", ca_path, "--host", "nope.test")
    for name in ("expiry", "host", "key-permissions"):
        assert f"FAIL {name}:" in out, f"{name} should also be reported:\n{out}"


# --- host matching ---------------------------------------------------------------------

@pytest.mark.parametrize("host, dns, ips, expected", [
    ("a.example.com", ["*.example.com"], [], True),
    ("A.Example.COM.", ["*.example.com"], [], True),
    ("example.com", ["*.example.com"], [], False),
    ("a.b.example.com", ["*.example.com"], [], False),
    ("a.example.com", ["a*.example.com"], [], False),
    ("x.com", ["*.com"], [], False),
    ("evil.example.com.attacker.test", ["*.example.com"], [], False),
    ("127.0.0.1", ["127.0.0.1"], [], False),  # an IP never matches a dNSName
    ("127.0.0.1", [], [ipaddress.ip_address("127.0.0.1")], True),
    ("[::1]", [], [ipaddress.ip_address("::1")], True),
    ("10.0.0.2", [], [ipaddress.ip_address("10.0.0.1")], False),
    ("bücher.example", ["xn--bcher-kva.example"], [], True),
])
def test_host_matching(host, dns, ips, expected):
    assert host_matches(host, dns, ips) is expected
