"""The rendered ExecStart lines behave as their units promise, under systemd's protocol.

No systemd runs here, so the test plays its part: it binds $NOTIFY_SOCKET and
waits for READY=1 (Type=notify), passes a listening socket as fd 3 with
LISTEN_FDS/LISTEN_PID (server.socket), sends the ExecReload signal and then
KillSignal, and expects a clean exit within TimeoutStopSec.  The runtime
directory is a temporary one (systemd would mount /run/NAME).
"""
from __future__ import annotations

import http.client
import os
import pathlib
import shlex
import signal
import socket
import subprocess
import sys
import time

import gunicorn.config
import pytest

from server import cli

pytestmark = pytest.mark.live

APP = '''\
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


def unit_values(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(notify: socket.socket, proc: subprocess.Popen, log: pathlib.Path) -> None:
    """Read $NOTIFY_SOCKET until READY=1, the way systemd waits for a Type=notify
    service; give up when the server exits or after 30 s."""
    said: list[str] = []
    deadline = time.monotonic() + 30
    notify.settimeout(0.2)
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            message = notify.recv(4096).decode()
        except TimeoutError:
            continue
        said.append(message)
        if "READY=1" in message.split("\n"):
            return
    pytest.fail(f"no READY=1 (exit code {proc.poll()}, messages {said}); "
                f"log:\n{log.read_text()}")


def wait_for_path(path: pathlib.Path, proc: subprocess.Popen) -> bool:
    """True once ``path`` exists (bounded: 10 s, or until the server exits)."""
    deadline = time.monotonic() + 10
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.exists()


# systemd's side of socket activation: the socket as fd 3, LISTEN_PID naming the
# server (execv keeps this process's PID), LISTEN_FDS=1
ACTIVATE = (
    "import os, sys\n"
    "fd = int(sys.argv[1])\n"
    "os.dup2(fd, 3)\n"
    "os.close(fd)\n"
    "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


@pytest.mark.parametrize("layout", ["gunicorn", "uwsgi", "socket"])
def test_unit_lifecycle(tmp_path, layout):
    server = "uwsgi" if layout == "uwsgi" else "gunicorn"
    if not os.access(pathlib.Path(sys.prefix, "bin", server), os.X_OK):
        pytest.skip(f"{server} is not installed in {sys.prefix}")
    app_dir, run_dir, home = tmp_path / "app", tmp_path / "run", tmp_path / "home"
    for d in (app_dir, run_dir, home):
        d.mkdir()
    (app_dir / "probe.py").write_text(APP)
    port = free_port()
    listener = None
    if layout == "socket":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
    # minimal stand-ins for the real gunicorn.conf.py / uwsgi.ini
    (app_dir / "gunicorn.conf.py").write_text(
        "workers = 1\nthreads = 2\n" + ("" if listener else f"bind = ['127.0.0.1:{port}']\n"))
    (app_dir / "uwsgi.ini").write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nprocesses = 1\nthreads = 2\n")

    out = tmp_path / "units"
    out.mkdir()
    extra = {"gunicorn": [], "uwsgi": ["--server", "uwsgi"], "socket": ["--socket"]}[layout]
    assert cli.main(["systemd", "render", "--prefix", sys.prefix, "--user", "server",
                     "--workdir", str(app_dir), "--app", "probe:app", *extra,
                     "--out", str(out)]) == 0
    name = "server.service" if layout == "socket" else f"server-{server}.service"
    unit = (out / name).read_text()
    runtime = "/run/" + unit_values(unit, "RuntimeDirectory")[0]

    def local(text: str) -> str:
        return text.replace(runtime, str(run_dir))

    argv = shlex.split(local(unit_values(unit, "ExecStart")[0]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SERVER_", "LISTEN_"))}
    env.update(HOME=str(home), RUNTIME_DIRECTORY=str(run_dir),
               NOTIFY_SOCKET=str(tmp_path / "notify"))
    env.update(dict(local(v).split("=", 1) for v in unit_values(unit, "Environment")))
    pass_fds: tuple[int, ...] = ()
    if listener is not None:
        fd = listener.fileno()
        pass_fds = (fd,)
        argv = [sys.executable, "-c", ACTIVATE, str(fd), *argv]
    assert unit_values(unit, "ExecReload") == ["/bin/kill -HUP $MAINPID"]
    reload_signal = signal.SIGHUP
    kill_signal = getattr(signal, unit_values(unit, "KillSignal")[0])
    stop_timeout = float(unit_values(unit, "TimeoutStopSec")[0])

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(env["NOTIFY_SOCKET"])
    log = tmp_path / "server.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(argv, cwd=app_dir, env=env, stdout=log_file,
                                stderr=subprocess.STDOUT, pass_fds=pass_fds,
                                start_new_session=True)
    try:
        if listener is not None:
            listener.close()  # the server holds its own copy now, as with systemd
        wait_ready(notify, proc, log)
        assert get(port) == (200, b"ok"), log.read_text()
        if server == "gunicorn" and hasattr(gunicorn.config, "ControlSocket"):
            # gunicorn >= 25.1 starts its control socket once the workers are up
            assert wait_for_path(run_dir / "gunicorn.ctl", proc), (
                f"gunicorn's control socket is not in the runtime directory "
                f"($XDG_RUNTIME_DIR); log:\n{log.read_text()}")
            assert not (home / ".gunicorn").exists(), (
                "gunicorn wrote under $HOME, which ProtectHome= hides")

        proc.send_signal(reload_signal)  # ExecReload
        assert get(port) == (200, b"ok"), f"not serving after reload:\n{log.read_text()}"
        assert proc.poll() is None, "the main PID must survive a reload"

        proc.send_signal(kill_signal)  # systemctl stop
        try:
            code = proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{kill_signal.name} did not stop {server} within TimeoutStopSec="
                        f"{stop_timeout:g}; systemd would SIGKILL it. Log:\n{log.read_text()}")
        assert code == 0, f"{server} exited {code} on {kill_signal.name}:\n{log.read_text()}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        notify.close()
