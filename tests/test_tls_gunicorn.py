"""gunicorn (gthread) serving HTTPS through server.tls.GunicornSSLContext.

A real gunicorn subprocess on 127.0.0.1 (port 0; the port is read from its
"Listening at" log line), a tiny WSGI app, and three clients: Python's ssl
verifying against the development CA, and openssl s_client trying TLS 1.1
and a CBC suite, which the hook's context must refuse.
"""
from __future__ import annotations

import os
import queue
import re
import shutil
import ssl
import subprocess
import sys
import threading
import urllib.request

import pytest

pytest.importorskip("cryptography")
pytest.importorskip("gunicorn")

from server.tls_certs import selfsigned

pytestmark = pytest.mark.live

APP = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello over " + environ["wsgi.url_scheme"].encode()]
'''
CONF = '''
from server.tls import GunicornSSLContext, check_gunicorn_config

worker_class = "gthread"
workers = 1
threads = 4
ssl_context = GunicornSSLContext(profile="intermediate")


def on_starting(server):
    check_gunicorn_config(server.cfg)
'''


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gunicorn(tmp_path, issued):
    """The command line and environment to run gunicorn with the hook."""
    (tmp_path / "tls_app.py").write_text(APP)
    (tmp_path / "gunicorn_tls.conf.py").write_text(CONF)
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(tmp_path / "gunicorn_tls.conf.py"),
           "--bind", "127.0.0.1:0", "--certfile", issued.cert, "--keyfile", issued.key,
           "--chdir", str(tmp_path), "--graceful-timeout", "2", "tls_app:app"]
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    return cmd, {**os.environ, "PYTHONPATH": path}


@pytest.fixture
def gunicorn_https(tmp_path):
    issued = selfsigned(str(tmp_path / "tls"))
    cmd, env = gunicorn(tmp_path, issued)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=str(tmp_path), env=env)
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            lines.put(line)
        lines.put("")  # EOF

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    port = None
    try:
        while port is None:
            try:
                line = lines.get(timeout=30)
            except queue.Empty:
                pytest.fail("gunicorn did not log 'Listening at' within 30 s:\n" + "".join(log))
            if not line:
                pytest.fail("gunicorn exited before listening:\n" + "".join(log))
            match = re.search(r"Listening at: https://127\.0\.0\.1:(\d+)", line)
            if match:
                port = int(match.group(1))
        yield issued, port, log
    finally:
        proc.terminate()  # our own child, by its PID
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        reader.join(timeout=5)


def test_gunicorn_serves_https_with_the_profile(gunicorn_https):
    issued, port, log = gunicorn_https
    client = ssl.create_default_context(cafile=issued.ca)
    with urllib.request.urlopen(f"https://localhost:{port}/", context=client, timeout=10) as r:
        assert r.read() == b"hello over https"

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not installed; protocol refusals are covered by test_tls_live")
    for flags, wanted in ([["-tls1_2"], True], [["-tls1_3"], True],
                          [["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"], False],
                          [["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"], False]):
        out = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-brief",
                              *flags], stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=20, check=False)
        established = "CONNECTION ESTABLISHED" in out.stdout + out.stderr
        assert established is wanted, (f"s_client {' '.join(flags)}: expected "
                                       f"{'success' if wanted else 'refusal'}\n"
                                       f"{out.stdout}{out.stderr}\ngunicorn log:\n{''.join(log)}")


def test_gunicorn_refuses_to_start_with_a_world_readable_key(tmp_path):
    issued = selfsigned(str(tmp_path / "tls"))
    os.chmod(issued.key, 0o644)
    cmd, env = gunicorn(tmp_path, issued)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=str(tmp_path),
                          env=env, check=False)
    assert proc.returncode != 0
    assert "world-readable" in proc.stderr and issued.key in proc.stderr, proc.stderr
