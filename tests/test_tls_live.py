"""Live handshakes: openssl s_client against a Python TLS server on 127.0.0.1
using make_ssl_context(), one server per profile and key type.

The client side lowers its own security level (@SECLEVEL=0) so that it really
offers TLS 1.0/1.1 and weak suites: a refusal then comes from our server, not
from the client's defaults.  A control server with a permissive context shows
that such handshakes do succeed when the server allows them.
"""
from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import types
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("cryptography")

from server import tls
from server.tls_certs import selfsigned

OPENSSL = shutil.which("openssl")
pytestmark = [pytest.mark.live,
              pytest.mark.skipif(OPENSSL is None, reason="needs the openssl CLI (apt: openssl)")]
POOL = 6  # concurrent s_client processes: the machine has 2 cores shared with others


class TLSServer:
    """Accepts on 127.0.0.1:<free port>, handshakes, writes one line, closes.

    The accept loop owns the listening socket; each connection gets a short-lived
    thread that owns its socket.  stop() sets the event and joins the loop, which
    notices within its accept timeout.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept_loop, name="tls-test-accept",
                                       daemon=True)
        self.thread.start()

    def _accept_loop(self) -> None:
        with self.listener:
            while not self.stopping.is_set():
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls_conn:
                tls_conn.sendall(b"hello\n")
        except (ssl.SSLError, OSError):
            pass  # refused handshakes are what several tests want
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)


def s_client(port: int, *flags: str) -> tuple[str | None, str | None, str]:
    """(protocol, cipher) negotiated, or (None, None) if refused; plus the output."""
    proc = subprocess.run(
        [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
         "-brief", *flags], stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=20, check=False)
    output = proc.stdout + proc.stderr
    # the exit status is not the verdict: s_client also fails on a late EOF after a
    # completed handshake; "CONNECTION ESTABLISHED" is printed only after one
    if "CONNECTION ESTABLISHED" not in output:
        return None, None, output
    fields = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    return fields.get("Protocol version"), fields.get("Ciphersuite"), output


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    base = tmp_path_factory.mktemp("tls-live")
    return {"ec": selfsigned(str(base / "ec")),
            "rsa": selfsigned(str(base / "rsa"), kind="rsa", bits=2048)}


@pytest.fixture(scope="module")
def servers(certs):
    started = {}
    for kind in ("ec", "rsa"):
        for profile in ("intermediate", "modern"):
            issued = certs[kind]
            started[kind, profile] = TLSServer(
                tls.make_ssl_context(issued.cert, issued.key, profile=profile))
    control = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    control.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    control.set_ciphers("ALL:@SECLEVEL=0")
    control.load_cert_chain(certs["rsa"].cert, certs["rsa"].key)
    started["control"] = TLSServer(control)
    yield started
    for server in started.values():
        server.stop()


WEAK_CLIENT = "DEFAULT:@SECLEVEL=0"


@pytest.mark.parametrize("kind", ["ec", "rsa"])
@pytest.mark.parametrize("flag, version", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_intermediate_accepts_tls12_and_tls13(servers, kind, flag, version):
    protocol, _, out = s_client(servers[kind, "intermediate"].port, flag)
    assert protocol == version, f"expected a {version} handshake, got:\n{out}"


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_intermediate_refuses_tls10_and_tls11(servers, flag):
    protocol, _, out = s_client(servers["control"].port, flag, "-cipher", WEAK_CLIENT)
    if protocol is None:
        pytest.skip(f"this openssl cannot speak {flag} even at SECLEVEL=0:\n{out[-400:]}")
    for kind in ("ec", "rsa"):
        protocol, cipher, out = s_client(servers[kind, "intermediate"].port, flag,
                                         "-cipher", WEAK_CLIENT)
        assert protocol is None, f"{kind} server accepted {flag}: {protocol} {cipher}"


@pytest.mark.parametrize("suite", ["NULL", "aNULL", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA",
                                   "ECDHE-ECDSA-AES128-SHA", "DHE-RSA-AES128-GCM-SHA256"])
def test_intermediate_refuses_weak_suites(servers, suite):
    for kind in ("ec", "rsa"):
        protocol, cipher, _ = s_client(servers[kind, "intermediate"].port, "-tls1_2",
                                       "-cipher", f"{suite}:@SECLEVEL=0")
        assert protocol is None, f"{kind} server accepted {suite}: {protocol} {cipher}"


def tls12_candidates() -> list[str]:
    listing = subprocess.run([OPENSSL, "ciphers", "-v", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    names = [line.split()[0] for line in listing.splitlines()
             if line.split() and line.split()[1] != "TLSv1.3"]
    return sorted(set(names))[:300]  # bounded whatever the local openssl lists


def test_every_accepted_tls12_suite_is_on_the_mozilla_list(servers):
    candidates = tls12_candidates()
    assert len(candidates) > 20, f"openssl lists too few suites to be a real test: {candidates}"
    jobs = [(kind, suite) for kind in ("ec", "rsa") for suite in candidates]

    def attempt(job):
        kind, suite = job
        _, cipher, _ = s_client(servers[kind, "intermediate"].port, "-tls1_2",
                                "-cipher", f"{suite}:@SECLEVEL=0")
        return kind, suite, cipher

    with ThreadPoolExecutor(max_workers=POOL) as pool:
        results = list(pool.map(attempt, jobs))
    accepted = {(kind, cipher) for kind, _, cipher in results if cipher}
    expected = {("ec", c) for c in tls.INTERMEDIATE_TLS12_CIPHERS if "ECDSA" in c}
    expected |= {("rsa", c) for c in tls.INTERMEDIATE_TLS12_CIPHERS if "-RSA-" in c}
    assert accepted == expected, (f"accepted TLS 1.2 suites differ from Mozilla's list\n"
                                  f"unexpected: {sorted(accepted - expected)}\n"
                                  f"missing: {sorted(expected - accepted)}")


def test_client_chooses_the_suite(servers):
    # server preference would pick AES128-GCM (first on our list); the client asks for ChaCha20
    _, cipher, out = s_client(servers["ec", "intermediate"].port, "-tls1_2", "-cipher",
                              "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256")
    assert cipher == "ECDHE-ECDSA-CHACHA20-POLY1305", out


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_modern_refuses_tls12_and_accepts_tls13(servers, kind):
    protocol, cipher, out = s_client(servers[kind, "modern"].port, "-tls1_2")
    assert protocol is None, f"modern accepted TLS 1.2 with {cipher}"
    protocol, cipher, out = s_client(servers[kind, "modern"].port, "-tls1_3")
    assert protocol == "TLSv1.3" and cipher in tls.TLS13_CIPHERSUITES.split(":"), out


def test_gunicorn_hook_context_offers_alpn(certs):
    issued = certs["ec"]
    conf = types.SimpleNamespace(certfile=issued.cert, keyfile=issued.key, ca_certs=None,
                                 cert_reqs=ssl.CERT_NONE, ciphers=None,
                                 http_protocols=["h2", "h1"])
    server = TLSServer(tls.GunicornSSLContext()(conf, lambda: None))
    try:
        # without -brief: only the full report prints the ALPN result
        proc = subprocess.run(
            [OPENSSL, "s_client", "-connect", f"127.0.0.1:{server.port}", "-alpn",
             "h2,http/1.1"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=20, check=False)
    finally:
        server.stop()
    assert "ALPN protocol: h2" in proc.stdout, proc.stdout + proc.stderr
