"""TLS on the shipped server configs, live: gunicorn.conf.py with SERVER_CERTFILE,
uwsgi.ini:tls (uWSGI's HTTPS router) and deploy/nginx/socketio-tls.conf in front
of one gunicorn instance.

Every server runs as a subprocess on 127.0.0.1 (a free port), serves
tests/live/apps/liveapp.py with throwaway certificates made by
``python -m server tls selfsigned``, and is stopped by its own PID.  openssl
s_client lowers its own security level (@SECLEVEL=0) so that it really offers
TLS 1.0/1.1 and weak suites: a refusal comes from the server (tests/test_tls_live.py
shows, against a permissive control server, that this openssl can do them).
python-socketio's Client (in a fresh interpreter: tests/tls_exchange_client.py)
trusts the development CA through its requests session; the official JS client
through NODE_EXTRA_CA_CERTS.

On gunicorn the WebSocket runs in the request thread (gunicorn's TLS socket
cannot be handed off; the server logs so once); behind uWSGI's HTTPS router
and behind nginx it is handed off.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

pytest.importorskip("cryptography")

from server import tls
from tests.live.harness import (
    BIN,
    JS_DIR,
    ROOT,
    LiveServer,
    free_port,
    js_client_ready,
    node,
    server_env,
)
from tests.nginx_support import NginxMissing, NginxProcess
from tests.test_tls_live import s_client, tls12_candidates

OPENSSL = shutil.which("openssl")
pytestmark = [pytest.mark.live,
              pytest.mark.skipif(OPENSSL is None, reason="needs the openssl CLI (apt: openssl)")]
NGINX_CONF = ROOT / "deploy" / "nginx" / "socketio-tls.conf"
POOL = 6  # concurrent s_client processes: 2 shared cores
WEAK_CLIENT = "DEFAULT:@SECLEVEL=0"
HANDOFF_FALLBACK = "WebSocket hand-off unavailable on"


# -- certificates -------------------------------------------------------------------
@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    """Development CA + server certificate per key type, made by the CLI."""
    base = tmp_path_factory.mktemp("tls-servers")
    out = {}
    for kind, extra in (("ec", []), ("rsa", ["--rsa"])):
        done = subprocess.run([sys.executable, "-m", "server", "tls", "selfsigned", "--out",
                               str(base / kind), *extra], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, f"tls selfsigned failed: {done.stdout}{done.stderr}"
        out[kind] = base / kind
    return out


# -- servers --------------------------------------------------------------------------
class HTTPSServer(LiveServer):
    """A LiveServer whose readiness probe is HTTPS, verified against the dev CA."""

    ca: str = ""
    scheme: str = "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def probe(self) -> int:
        # requests' errors derive from OSError, as the harness expects
        return requests.get(self.url + self.ready_path, timeout=2,
                            verify=self.ca or True).status_code


def _uwsgi_exe() -> str:
    exe = BIN / "uwsgi"
    if not exe.exists():
        pytest.skip("uWSGI is not installed in this venv (pip install uwsgi)")
    # uWSGI has its HTTPS router only when built against OpenSSL's headers
    helped = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=30,
                            check=False).stdout
    if "--https " not in helped:
        pytest.skip("this uWSGI was built without SSL: apt-get install libssl-dev, then "
                    "pip install --force-reinstall --no-binary uwsgi uwsgi")
    return str(exe)


def tls_server(name: str, certdir: Path, log_dir: Path, profile: str | None = None,
               **extra_env: str) -> HTTPSServer:
    """gunicorn -c gunicorn.conf.py, or uwsgi --ini uwsgi.ini:tls, with SERVER_CERTFILE set."""
    port = free_port()
    env = server_env(SERVER_BIND=f"127.0.0.1:{port}", SERVER_THREADS="20",
                     SERVER_GRACEFUL_TIMEOUT="3", SERVER_CERTFILE=str(certdir / "cert.pem"),
                     SERVER_KEYFILE=str(certdir / "key.pem"), **extra_env)
    if profile:
        env["SERVER_TLS_PROFILE"] = profile
    if name == "gunicorn":
        argv = [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "liveapp:app"]
    else:
        argv = [_uwsgi_exe(), "--ini", str(ROOT / "uwsgi.ini") + ":tls", "--module",
                "liveapp:app"]
    server = HTTPSServer(f"{name}-{profile or 'default'}", argv, env, port,
                         log_dir / f"{name}-{profile}-{port}.log")
    server.ca = str(certdir / "ca.pem")
    return server


@pytest.fixture(scope="module", params=["gunicorn", "uwsgi"])
def servers(request, certs, tmp_path_factory):
    """One server kind with the intermediate profile, one per key type (EC, RSA)."""
    log_dir = tmp_path_factory.mktemp(f"logs-{request.param}")
    started = {}
    try:
        for kind in ("ec", "rsa"):
            started[kind] = tls_server(request.param, certs[kind], log_dir).start()
        yield request.param, started
    finally:
        for server in started.values():
            server.stop()


# -- protocols and suites ----------------------------------------------------------------
@pytest.mark.parametrize("flag, version", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_tls12_and_tls13_accepted(servers, flag, version):
    name, started = servers
    for kind, server in started.items():
        protocol, _, out = s_client(server.port, flag)
        assert protocol == version, f"{name}/{kind}: expected {version}, got:\n{out[-800:]}"


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_tls10_and_tls11_refused(servers, flag):
    name, started = servers
    for kind, server in started.items():
        protocol, cipher, _ = s_client(server.port, flag, "-cipher", WEAK_CLIENT)
        assert protocol is None, f"{name}/{kind} accepted {flag}: {protocol} {cipher}"


@pytest.mark.parametrize("suite", ["NULL", "aNULL", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA",
                                   "ECDHE-ECDSA-AES128-SHA"])
def test_weak_suites_refused(servers, suite):
    name, started = servers
    for kind, server in started.items():
        protocol, cipher, _ = s_client(server.port, "-tls1_2", "-cipher", f"{suite}:@SECLEVEL=0")
        assert protocol is None, f"{name}/{kind} accepted {suite}: {protocol} {cipher}"


def accepted_tls12_suites(started: dict[str, HTTPSServer]) -> set[tuple[str, str]]:
    """(key type, suite) for every TLS 1.2 suite the local openssl knows that a server took."""
    candidates = tls12_candidates()
    assert len(candidates) > 20, f"openssl lists too few suites to be a real test: {candidates}"

    def attempt(job):
        kind, suite = job
        _, cipher, _ = s_client(started[kind].port, "-tls1_2", "-cipher", f"{suite}:@SECLEVEL=0")
        return kind, cipher

    jobs = [(kind, suite) for kind in started for suite in candidates]
    with ThreadPoolExecutor(max_workers=POOL) as pool:
        return {(kind, cipher) for kind, cipher in pool.map(attempt, jobs) if cipher}


def test_every_accepted_tls12_suite_is_on_the_mozilla_intermediate_list(servers):
    name, started = servers
    accepted = accepted_tls12_suites(started)
    expected = {("ec", c) for c in tls.INTERMEDIATE_TLS12_CIPHERS if "ECDSA" in c}
    expected |= {("rsa", c) for c in tls.INTERMEDIATE_TLS12_CIPHERS if "-RSA-" in c}
    print(f"{name} accepted TLS 1.2 suites: {sorted(accepted)}")
    assert accepted == expected, (f"{name}: accepted TLS 1.2 suites differ from Mozilla's "
                                  f"intermediate list\nunexpected: {sorted(accepted - expected)}"
                                  f"\nmissing: {sorted(expected - accepted)}")


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_key_exchange_groups(servers, version):
    """P-256 everywhere; X25519 on gunicorn (OpenSSL's defaults), not on uWSGI.

    uWSGI sets P-256 as the only ECDHE group of its contexts (core/ssl.c,
    SSL_CTX_set_tmp_ecdh): every client offers P-256, so all connect.
    """
    name, started = servers
    # the RSA server: in TLS 1.2 the client's groups also bound the curve of an
    # ECDSA certificate, so an X25519-only client cannot reach the EC one
    port = started["rsa"].port
    protocol, _, out = s_client(port, version, "-groups", "P-256")
    assert protocol is not None, f"{name} refused ECDHE on P-256:\n{out[-800:]}"
    protocol, _, out = s_client(port, version, "-groups", "X25519")
    if name == "gunicorn":
        assert protocol is not None, f"{name} refused X25519:\n{out[-800:]}"
    else:
        assert protocol is None, f"uWSGI now accepts X25519: update docs/tls.md ({protocol})"


def test_hsts_on_https_responses(servers):
    name, started = servers
    server = started["ec"]
    resp = requests.get(server.url + "/ready", verify=server.ca, timeout=10)
    assert resp.headers.get("Strict-Transport-Security") == tls.hsts_header(), (
        f"{name}: expected HSTS {tls.hsts_header()!r}, got headers {dict(resp.headers)}")
    poll = requests.get(server.url + "/socket.io/?EIO=4&transport=polling", verify=server.ca,
                        timeout=10)
    assert poll.status_code == 200, f"{name}: polling handshake got {poll.status_code}"
    assert "Strict-Transport-Security" in poll.headers, (
        f"{name}: no HSTS on the Engine.IO handshake: {dict(poll.headers)}")


@pytest.mark.parametrize("name", ["gunicorn", "uwsgi"])
def test_modern_profile_refuses_tls12(name, certs, tmp_path):
    server = tls_server(name, certs["ec"], tmp_path, profile="modern").start()
    try:
        protocol, cipher, _ = s_client(server.port, "-tls1_2")
        assert protocol is None, f"{name} modern profile accepted TLS 1.2 with {cipher}"
        protocol, cipher, out = s_client(server.port, "-tls1_3")
        assert protocol == "TLSv1.3" and cipher in tls.TLS13_CIPHERSUITES.split(":"), out[-800:]
    finally:
        server.stop()


# -- Socket.IO clients over TLS ---------------------------------------------------------
def exchange_acked_events(url: str, ca: str, transports: list[str],
                          server_log: Callable[[], str] | None = None) -> str:
    """Connect, receive the welcome, get two acknowledgements; the transport used.

    The python-socketio client runs in a fresh interpreter
    (tests/tls_exchange_client.py), away from the threads and sockets that
    earlier tests leave in this process.
    """
    argv = [sys.executable, str(Path(__file__).with_name("tls_exchange_client.py")), url, ca,
            ",".join(transports)]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    result = json.loads(lines[-1]) if lines else {
        "error": f"the client exited {done.returncode} without a result: {done.stderr[-1500:]}"}
    assert "transport" in result, (
        f"{result['error']}\nclient's engine.io log:\n{done.stderr[-3000:]}\n"
        f"{server_log() if server_log else '(no server log)'}")
    return result["transport"]


def run_js_over_tls(url: str, ca: str, transports: list[str], scenario: str) -> dict:
    """tests/js/client.js with the development CA added to Node's trusted roots."""
    why = js_client_ready()
    if why:
        pytest.skip(why)
    argv = [node() or "node", str(JS_DIR / "client.js"), url, ",".join(transports), scenario,
            "30000"]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=45,
                          cwd=JS_DIR, env={**os.environ, "NODE_EXTRA_CA_CERTS": ca})
    assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr[-2000:]}"
    return json.loads(done.stdout)[scenario]


@pytest.mark.parametrize("transports", [["websocket"], ["polling"], ["polling", "websocket"]],
                         ids=["websocket", "polling", "upgrade"])
def test_python_client_exchanges_acked_events(servers, transports):
    name, started = servers
    server = started["ec"]
    used = exchange_acked_events(server.url, server.ca, transports, server.log_tail)
    assert used == transports[-1], f"{name}: expected to end on {transports[-1]}, used {used}"


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]], ids=["wss", "https-polling"])
def test_js_client_exchanges_acked_events(servers, transports):
    name, started = servers
    server = started["ec"]
    result = run_js_over_tls(server.url, server.ca, transports, "connect_auth")
    assert result.get("ok"), f"{name}: JS client over {transports}: {result}"
    assert result["transport"] == transports[0], result


class _CountingSSLSocket(ssl.SSLSocket):
    """Counts the times a recv and a send were inside one TLS connection at once.

    Made per connection by :func:`_probed_websocket`, with its own ``probe``.
    """

    probe: dict[str, Any]

    def _enter(self, side: str) -> None:
        with self.probe["lock"]:
            self.probe[side] += 1
            if self.probe["send" if side == "recv" else "recv"]:
                self.probe["overlaps"] += 1

    def _leave(self, side: str) -> None:
        with self.probe["lock"]:
            self.probe[side] -= 1

    def recv(self, *args, **kwargs):
        self._enter("recv")
        try:
            return super().recv(*args, **kwargs)
        finally:
            self._leave("recv")

    def send(self, *args, **kwargs):
        self._enter("send")
        try:
            self.probe["sending"].set()
            time.sleep(self.probe["send_delay"])  # widens a send, so that races show
            return super().send(*args, **kwargs)
        finally:
            self._leave("send")


def _probed_websocket(server: HTTPSServer, websocket_class: type) -> tuple[Any, dict]:
    """A Socket.IO-connected websocket-client connection, and its TLS socket's probe."""
    import websocket  # websocket-client, as python-socketio's threaded client uses it

    probe: dict[str, Any] = {"recv": 0, "send": 0, "overlaps": 0, "lock": threading.Lock(),
                             "sending": threading.Event(), "send_delay": 0.0}
    context = ssl.create_default_context(cafile=server.ca)
    context.sslsocket_class = type("Probed", (_CountingSSLSocket,), {"probe": probe})
    ws = websocket.create_connection(f"wss://127.0.0.1:{server.port}/socket.io/?EIO=4&"
                                     "transport=websocket", class_=websocket_class, timeout=20,
                                     sslopt={"context": context}, enable_multithread=True)
    assert ws.recv().startswith("0{"), "expected engine.io's OPEN packet first"
    ws.send("40")
    while not ws.recv().startswith("40{"):
        pass  # the welcome event comes first
    return ws, probe


def _overlaps_in_acked_echoes(server: HTTPSServer, websocket_class: type, count: int,
                              require_all: bool) -> int:
    """``count`` acked echoes sent by this thread while another reads; the overlaps seen.

    With ``require_all`` false the exchange may end early: websocket-client's
    own class now and then drops a healthy TLS connection (the fault the
    overlaps cause), and the overlaps seen until then are the result.
    """
    import websocket

    ws, probe = _probed_websocket(server, websocket_class)
    acks: set[int] = set()
    failures: list[BaseException] = []
    finished = threading.Event()

    def read() -> None:
        try:
            while len(acks) < count:
                message = ws.recv()
                if message.startswith("43"):
                    acks.add(int(message[2:message.index("[")]))
        except (OSError, websocket.WebSocketException) as exc:
            failures.append(exc)
        finally:
            finished.set()

    try:
        threading.Thread(target=read, daemon=True).start()
        try:
            for ack_id in range(count):
                ws.send(f'42{ack_id}["echo",{{"n":{ack_id}}}]')
        except (OSError, websocket.WebSocketException) as exc:
            failures.append(exc)
        assert finished.wait(30), f"expected {count} acks within 30 s, got {len(acks)}"
        if require_all:
            assert not failures and len(acks) == count, (
                f"{websocket_class.__name__}: expected {count} acks, got {len(acks)}; "
                f"errors: {failures}")
        return probe["overlaps"]
    finally:
        try:
            ws.close()
        except (OSError, websocket.WebSocketException):
            if require_all:
                raise  # a connection that dropped may fail to close; ours must not drop


def test_serial_tls_websocket_never_reads_and_writes_at_once(servers):
    """server.tls_client.SerialTLSWebSocket, the fix docs/tls.md gives python-socketio's
    client users: its reads and writes never overlap in OpenSSL, where websocket-client's
    own class overlaps them all the time (its reader waits inside recv)."""
    from websocket import WebSocket

    from server.tls_client import SerialTLSWebSocket

    name, started = servers
    stock = _overlaps_in_acked_echoes(started["ec"], WebSocket, 50, require_all=False)
    serial = _overlaps_in_acked_echoes(started["ec"], SerialTLSWebSocket, 50, require_all=True)
    assert stock > 0, f"{name}: websocket-client's own class showed no overlap: the probe is blind"
    assert serial == 0, f"{name}: SerialTLSWebSocket read and wrote at once {serial} times"


def test_serial_tls_websocket_reader_keeps_its_timeout_during_a_write(servers):
    """A read that starts while a write is under way waits for data with its own
    timeout (20 s), not the write's momentary non-blocking mode."""
    from server.tls_client import SerialTLSWebSocket

    name, started = servers
    ws, probe = _probed_websocket(started["ec"], SerialTLSWebSocket)
    try:
        probe["sending"].clear()
        probe["send_delay"] = 0.3
        writer = threading.Thread(target=ws.send, args=('421["echo",{"n":1}]',), daemon=True)
        writer.start()
        assert probe["sending"].wait(10), "the write never reached the TLS socket"
        # the read starts 0.3 s before the echo leaves, so nothing can be there yet
        reply = ws.recv()
        assert reply.startswith("431["), f"{name}: expected the echo's ack, got {reply!r}"
        writer.join(10)
    finally:
        ws.close()


def test_websocket_handoff_over_tls(servers):
    """gunicorn: thread-holding fallback (logged); uWSGI HTTPS router: handed off."""
    name, started = servers
    server = started["ec"]
    exchange_acked_events(server.url, server.ca, ["websocket"], server.log_tail)
    logged = HANDOFF_FALLBACK in server.log_text()
    if name == "gunicorn":
        assert logged, ("gunicorn terminating TLS should serve WebSockets in the request "
                        f"thread and log so once; log:\n{server.log_tail()}")
    else:
        assert not logged, f"uWSGI's HTTPS router should hand off; log:\n{server.log_tail()}"


# -- start-up refusals ---------------------------------------------------------------------
def _start_gunicorn_expecting_failure(env: dict[str, str]) -> subprocess.CompletedProcess:
    argv = [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "liveapp:app"]
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.parametrize("problem", ["missing", "mismatched", "world-readable", "expired",
                                     "key-without-cert", "ca-missing"])
def test_gunicorn_refuses_to_start_on_bad_tls_files(problem, certs, tmp_path):
    from server.tls_certs import selfsigned

    good = certs["ec"]
    cert, key = str(good / "cert.pem"), str(good / "key.pem")
    extra: dict[str, str] = {}
    if problem == "missing":
        cert, needle = str(tmp_path / "nope.pem"), "nope.pem"
    elif problem == "mismatched":
        key, needle = str(certs["rsa"] / "key.pem"), "does not belong"
    elif problem == "world-readable":
        key = str(tmp_path / "key.pem")
        shutil.copy(good / "key.pem", key)
        os.chmod(key, 0o644)
        needle = "world-readable"
    elif problem == "expired":
        import datetime

        past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
        issued = selfsigned(str(tmp_path / "old"), days=2, now=past)
        cert, key, needle = issued.cert, issued.key, "expired"
    elif problem == "ca-missing":
        extra["SERVER_CA_CERTS"], needle = str(tmp_path / "no-ca.pem"), "no-ca.pem"
    else:
        cert, needle = "", "but certfile is not"
    env = server_env(SERVER_BIND=f"127.0.0.1:{free_port()}", SERVER_CERTFILE=cert,
                     SERVER_KEYFILE=key, **extra)
    done = _start_gunicorn_expecting_failure(env)
    output = done.stdout + done.stderr
    assert done.returncode != 0, f"gunicorn started with a {problem} TLS file:\n{output[-2000:]}"
    assert needle in output and "fix:" in output, (
        f"expected one clear message with {needle!r} and a fix, got:\n{output[-2000:]}")
    assert "Traceback" not in output, f"expected one line, got a traceback:\n{output[-2000:]}"


def _uwsgi_tls_expecting_failure(env: dict[str, str]) -> tuple[int | None, str]:
    """Run uwsgi.ini:tls; (exit status, output).  A server that does start is
    stopped (its process group, which we created) and reported as status None."""
    proc = subprocess.Popen([_uwsgi_exe(), "--ini", str(ROOT / "uwsgi.ini") + ":tls",
                             "--module", "liveapp:app"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=20)
        return proc.returncode, output
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=10)
        return None, output


def test_uwsgi_tls_section_refuses_to_start_without_a_certificate():
    status, output = _uwsgi_tls_expecting_failure(
        server_env(SERVER_BIND=f"127.0.0.1:{free_port()}"))
    assert status, f"uwsgi.ini:tls started without a certificate:\n{output[-2000:]}"
    assert "needs SERVER_CERTFILE" in output, output[-2000:]


def test_uwsgi_tls_section_refuses_a_key_of_another_certificate(certs, tmp_path):
    # another EC key: OpenSSL's key check refuses it.  (An RSA key with an EC
    # certificate is NOT refused by uWSGI: it loads into the RSA slot and every
    # handshake fails; docs/servers/uwsgi.md says to run `tls check` first.)
    other = subprocess.run([sys.executable, "-m", "server", "tls", "selfsigned", "--out",
                            str(tmp_path / "other")], cwd=ROOT, capture_output=True, text=True,
                           timeout=60, check=False)
    assert other.returncode == 0, other.stdout + other.stderr
    status, output = _uwsgi_tls_expecting_failure(server_env(
        SERVER_BIND=f"127.0.0.1:{free_port()}", SERVER_CERTFILE=str(certs["ec"] / "cert.pem"),
        SERVER_KEYFILE=str(tmp_path / "other" / "key.pem")))
    assert status, f"uwsgi.ini:tls started with a mismatched key:\n{output[-2000:]}"
    assert "unable to assign key" in output, output[-2000:]


@pytest.mark.parametrize("problem", ["world-readable", "expired", "rsa-key-for-ec-cert"])
def test_uwsgi_tls_section_refuses_unfit_files_with_one_line(problem, certs, tmp_path):
    """What uWSGI itself lets through, the worker's start-up check refuses
    (server/runner_uwsgi.py): the instance stops with status 22 and one line."""
    from server.tls_certs import selfsigned

    cert, key = str(certs["ec"] / "cert.pem"), str(certs["ec"] / "key.pem")
    if problem == "world-readable":
        key = str(tmp_path / "key.pem")
        shutil.copy(certs["ec"] / "key.pem", key)
        os.chmod(key, 0o644)
        needle = "world-readable"
    elif problem == "expired":
        import datetime

        past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
        issued = selfsigned(str(tmp_path / "old"), days=2, now=past)
        cert, key, needle = issued.cert, issued.key, "expired"
    else:
        key, needle = str(certs["rsa"] / "key.pem"), "does not belong"
    status, output = _uwsgi_tls_expecting_failure(server_env(
        SERVER_BIND=f"127.0.0.1:{free_port()}", SERVER_CERTFILE=cert, SERVER_KEYFILE=key))
    assert status == 22, f"uwsgi.ini:tls with a {problem} file: status {status}\n{output[-2000:]}"
    lines = [line for line in output.splitlines() if line.startswith("uwsgi.ini: ")]
    assert len(lines) == 1 and needle in lines[0] and "fix" in lines[0].lower(), (
        f"expected one line naming {needle!r} and the fix, got:\n{output[-2000:]}")


def test_uwsgi_tls_section_refuses_an_unknown_profile(certs):
    status, output = _uwsgi_tls_expecting_failure(server_env(
        SERVER_BIND=f"127.0.0.1:{free_port()}", SERVER_TLS_PROFILE="modren",
        SERVER_CERTFILE=str(certs["ec"] / "cert.pem"),
        SERVER_KEYFILE=str(certs["ec"] / "key.pem")))
    assert status, f"uwsgi started with profile 'modren':\n{output[-2000:]}"
    assert "SERVER_TLS_PROFILE=modren is unknown" in output, output[-2000:]


def test_uwsgi_ini_ciphers_are_the_intermediate_list():
    text = (ROOT / "uwsgi.ini").read_text()
    lines = [line for line in text.splitlines() if line.startswith("https = ")]
    assert len(lines) == 2, lines
    for line in lines:
        assert line.rsplit(",", 1)[1] == tls.INTERMEDIATE_CIPHERS, line


def test_nginx_tls_conf_ciphers_are_the_intermediate_list():
    text = NGINX_CONF.read_text()
    assert f"ssl_ciphers {tls.INTERMEDIATE_CIPHERS};" in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text


# -- nginx terminating TLS in front of gunicorn ------------------------------------------
class Nginx(NginxProcess):
    """deploy/nginx/socketio-tls.conf with ports and files replaced; stopped by PID."""

    def __init__(self, upstream_port: int, certdir: Path) -> None:
        self.port, self.http_port = free_port(), free_port()
        site = NGINX_CONF.read_text()
        for old, new in (("listen 127.0.0.1:8443 ssl;", f"listen 127.0.0.1:{self.port} ssl;"),
                         ("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{self.http_port};"),
                         ("server 127.0.0.1:5000;", f"server 127.0.0.1:{upstream_port};"),
                         ("/etc/ssl/server/fullchain.pem", str(certdir / "fullchain.pem")),
                         ("/etc/ssl/server/key.pem", str(certdir / "key.pem"))):
            assert site.count(old) == 1, f"{NGINX_CONF} should contain {old!r} once"
            site = site.replace(old, new)
        try:
            super().__init__(site, prefix="nginx-tls-test-", worker_connections=256)
        except NginxMissing as exc:
            pytest.skip(str(exc))
        self.url = f"https://127.0.0.1:{self.port}"

    def wait_ready(self, ca: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited with {self.proc.returncode}:\n"
                                     f"{self.error_log()}")
            try:
                if requests.get(self.url + "/ready", verify=ca, timeout=2).status_code == 200:
                    return
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.05)
        raise AssertionError(f"nginx not ready after {timeout}s ({last}):\n{self.error_log()}")


@pytest.fixture(scope="module")
def nginx_front(certs, tmp_path_factory):
    """nginx (TLS) -> gunicorn (plain HTTP, trusted_proxies=127.0.0.1)."""
    port = free_port()
    env = server_env(SERVER_BIND=f"127.0.0.1:{port}", SERVER_THREADS="20",
                     SERVER_GRACEFUL_TIMEOUT="3", SERVER_TRUSTED_PROXIES="127.0.0.1")
    upstream = HTTPSServer("gunicorn-behind-nginx",
                           [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"),
                            "liveapp:app"], env, port,
                           tmp_path_factory.mktemp("nginx-upstream") / "gunicorn.log")
    upstream.scheme = "http"
    upstream.start()
    nginx = Nginx(port, certs["ec"])
    try:
        nginx.wait_ready(str(certs["ec"] / "ca.pem"))
        yield nginx, upstream, str(certs["ec"] / "ca.pem")
    finally:
        nginx.stop()
        upstream.stop()


def test_nginx_wss_client_exchanges_acked_events_handed_off(nginx_front):
    nginx, upstream, ca = nginx_front
    assert exchange_acked_events(nginx.url, ca, ["websocket"], upstream.log_tail) == "websocket"
    assert exchange_acked_events(nginx.url, ca, ["polling", "websocket"],
                                 upstream.log_tail) == "websocket"
    assert HANDOFF_FALLBACK not in upstream.log_text(), (
        f"behind nginx gunicorn speaks plain HTTP and should hand off:\n{upstream.log_tail()}")


def test_nginx_js_client_over_wss(nginx_front):
    nginx, _, ca = nginx_front
    result = run_js_over_tls(nginx.url, ca, ["websocket"], "connect_auth")
    assert result.get("ok") and result["transport"] == "websocket", result


def test_nginx_hsts_from_the_app_seeing_https(nginx_front):
    nginx, upstream, ca = nginx_front
    resp = requests.get(nginx.url + "/ready", verify=ca, timeout=10)
    assert resp.headers.get("Strict-Transport-Security") == tls.hsts_header(), (
        f"expected HSTS through nginx, got {dict(resp.headers)}")
    # control: the app itself sends none over plain HTTP
    direct = requests.get(upstream.url + "/ready", timeout=10)
    assert "Strict-Transport-Security" not in direct.headers, dict(direct.headers)


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_nginx_refuses_old_tls(nginx_front, flag):
    nginx, _, _ = nginx_front
    port = int(nginx.url.rsplit(":", 1)[1])
    protocol, cipher, _ = s_client(port, flag, "-cipher", WEAK_CLIENT)
    assert protocol is None, f"nginx accepted {flag}: {protocol} {cipher}"
    protocol, _, out = s_client(port, "-tls1_2")
    assert protocol == "TLSv1.2", out[-800:]


def test_nginx_every_accepted_tls12_suite_is_on_the_mozilla_list(nginx_front):
    nginx, _, _ = nginx_front

    class Port:
        port = int(nginx.url.rsplit(":", 1)[1])

    accepted = accepted_tls12_suites({"ec": Port})  # type: ignore[dict-item]
    expected = {("ec", c) for c in tls.INTERMEDIATE_TLS12_CIPHERS if "ECDSA" in c}
    print(f"nginx accepted TLS 1.2 suites: {sorted(accepted)}")
    assert accepted == expected, (f"unexpected: {sorted(accepted - expected)}\n"
                                  f"missing: {sorted(expected - accepted)}")
