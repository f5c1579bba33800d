"""The rendered ExecStart lines behave as their units promise, under systemd's protocol.

No systemd runs here, so the test plays its part: it binds $NOTIFY_SOCKET and
waits for READY=1 (Type=notify), passes a listening socket as fd 3 with
LISTEN_FDS/LISTEN_PID (server.socket), sends the ExecReload signal and then
KillSignal, and expects a clean exit within TimeoutStopSec.  What runs is the
real deployment: the rendered unit's ExecStart with the repository as working
directory (its wsgi.py, gunicorn.conf.py, uwsgi.ini) and the rendered server.env
as the environment.  The runtime directory is a temporary one (systemd would
mount /run/NAME).
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

import pytest

from server import cli

pytestmark = pytest.mark.live

REPO = pathlib.Path(__file__).resolve().parent.parent


def unit_values(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_file(text: str) -> dict[str, str]:
    """NAME=value lines, as systemd's EnvironmentFile= reads them."""
    return dict(line.split("=", 1) for line in text.splitlines()
                if line and not line.startswith("#"))


def get(port: int) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/healthz")
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
    run_dir, home = tmp_path / "run", tmp_path / "home"
    for d in (run_dir, home):
        d.mkdir()
    port = free_port()
    listener = None
    if layout == "socket":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]

    out = tmp_path / "units"
    out.mkdir()
    extra = {"gunicorn": [], "uwsgi": ["--server", "uwsgi"], "socket": ["--socket"]}[layout]
    assert cli.main(["systemd", "render", "--prefix", sys.prefix, "--user", "server",
                     "--workdir", str(REPO), "--bind", f"127.0.0.1:{port}", *extra,
                     "--out", str(out)]) == 0
    name = "server.service" if layout == "socket" else f"server-{server}.service"
    unit = (out / name).read_text()
    runtime = "/run/" + unit_values(unit, "RuntimeDirectory")[0]

    def local(text: str) -> str:
        return text.replace(runtime, str(run_dir))

    argv = shlex.split(local(unit_values(unit, "ExecStart")[0]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SERVER_", "LISTEN_"))}
    env.update(env_file((out / "server.env").read_text()))
    # production installs the package into the venv; here it is the checkout
    env.update(HOME=str(home), RUNTIME_DIRECTORY=str(run_dir), PYTHONPATH=str(REPO),
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
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log_file,
                                stderr=subprocess.STDOUT, pass_fds=pass_fds,
                                start_new_session=True)
    try:
        if listener is not None:
            listener.close()  # the server holds its own copy now, as with systemd
        wait_ready(notify, proc, log)
        assert get(port)[0] == 200, log.read_text()

        proc.send_signal(reload_signal)  # ExecReload
        assert get(port)[0] == 200, f"not serving after reload:\n{log.read_text()}"
        assert proc.poll() is None, "the main PID must survive a reload"

        proc.send_signal(kill_signal)  # systemctl stop
        try:
            code = proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{kill_signal.name} did not stop {server} within TimeoutStopSec="
                        f"{stop_timeout:g}; systemd would SIGKILL it. Log:\n{log.read_text()}")
        assert code == 0, f"{server} exited {code} on {kill_signal.name}:\n{log.read_text()}"
        assert not list(home.iterdir()), (
            f"{server} wrote {list(home.iterdir())} under $HOME, which ProtectHome= hides")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        notify.close()


def test_gunicorn_control_socket_follows_the_units_runtime_directory(tmp_path):
    """gunicorn >= 25.1 defaults its control socket to $XDG_RUNTIME_DIR (else
    $HOME/.gunicorn, hidden by ProtectHome=); the unit sets the variable.  This
    pins that gunicorn behaviour, read at import (gunicorn/config.py)."""
    assert cli.main(["systemd", "render", "--prefix", sys.prefix, "--user", "server",
                     "--out", str(tmp_path)]) == 0
    unit = (tmp_path / "server-gunicorn.service").read_text()
    env = dict(v.split("=", 1) for v in unit_values(unit, "Environment"))
    runtime = "/run/" + unit_values(unit, "RuntimeDirectory")[0]
    assert env.get("XDG_RUNTIME_DIR") == runtime
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    probe = ("import gunicorn.config as c; "
             "print(c.ControlSocket.default if hasattr(c, 'ControlSocket') else 'none')")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**os.environ, "XDG_RUNTIME_DIR": str(run_dir),
                               "HOME": str(tmp_path / "home")}, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    if done.stdout.strip() == "none":
        pytest.skip("this gunicorn has no control socket (< 25.1)")
    assert done.stdout.strip() == str(run_dir / "gunicorn.ctl"), (
        f"gunicorn puts its control socket at {done.stdout.strip()}, expected it in "
        f"$XDG_RUNTIME_DIR ({run_dir}); the unit's Environment= needs updating")
