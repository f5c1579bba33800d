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
import json
import os
import pathlib
import resource
import shlex
import shutil
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


# What systemd does between fork and exec, for the parts a process can do to
# itself: the listening socket as fd 3 with LISTEN_PID naming the server (execv
# keeps this PID) and LISTEN_FDS=1; LimitNOFILE; NoNewPrivileges;
# MemoryDenyWriteExecute (PR_SET_MDWE, Linux >= 6.3: the kernel's form of the
# same rule); SystemCallFilter as a seccomp allow-list through libseccomp, with
# SystemCallErrorNumber=EPERM for the rest.
LAUNCH = """\
import ctypes, errno, json, os, resource, sys
spec, argv = json.loads(sys.argv[1]), sys.argv[2:]
if spec["fd"] is not None:
    os.dup2(spec["fd"], 3)
    os.close(spec["fd"])
    os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
n = spec["nofile"] if hard == resource.RLIM_INFINITY else min(spec["nofile"], hard)
resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
libc = ctypes.CDLL(None, use_errno=True)
def prctl(option, value, what):
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), what)
prctl(38, 1, "PR_SET_NO_NEW_PRIVS")
if spec["mdwe"]:
    prctl(65, 1, "PR_SET_MDWE")
if spec["syscalls"] is not None:
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                     ctypes.c_uint]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(0x00050000 | errno.EPERM)
    for name in spec["syscalls"]:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr >= 0 and lib.seccomp_rule_add(ctx, 0x7FFF0000, nr, 0) != 0:
            raise OSError(f"seccomp_rule_add({name})")
    if lib.seccomp_load(ctx) != 0:
        raise OSError("seccomp_load")
os.execv(argv[0], argv)
"""


def syscall_groups() -> dict[str, list[str]] | None:
    """systemd's syscall groups (@system-service...) as systemd-analyze lists them."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return None
    done = subprocess.run([analyze, "syscall-filter"], capture_output=True, text=True,
                          timeout=60, check=True)
    groups: dict[str, list[str]] = {}
    current = None
    for line in done.stdout.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif current is not None and line.startswith("    ") and not line.strip().startswith("#"):
            current.append(line.strip())
    return groups


def allowed_syscalls(unit: str) -> list[str] | None:
    """The allow-list the unit's SystemCallFilter= lines give, in systemd's order:
    the first (positive) line sets it, ~ lines remove, later lines add back."""
    groups = syscall_groups()
    if groups is None:
        return None

    def expand(items: str) -> set[str]:
        out: set[str] = set()
        for item in items.split():
            out |= expand(" ".join(groups[item])) if item.startswith("@") else {item}
        return out

    allowed: set[str] = set()
    for value in unit_values(unit, "SystemCallFilter"):
        if value.startswith("~"):
            allowed -= expand(value[1:])
        else:
            allowed |= expand(value)
    return sorted(allowed)


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
    assert unit_values(unit, "SystemCallErrorNumber") == ["EPERM"]
    fd = listener.fileno() if listener is not None else None
    spec = {"fd": fd, "nofile": int(unit_values(unit, "LimitNOFILE")[0]),
            "mdwe": unit_values(unit, "MemoryDenyWriteExecute") == ["yes"],
            "syscalls": allowed_syscalls(unit)}
    argv = [sys.executable, "-c", LAUNCH, json.dumps(spec), *argv]
    assert unit_values(unit, "ExecReload") == ["/bin/kill -HUP $MAINPID"]
    reload_signal = signal.SIGHUP
    kill_signal = getattr(signal, unit_values(unit, "KillSignal")[0])
    stop_timeout = float(unit_values(unit, "TimeoutStopSec")[0])

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(env["NOTIFY_SOCKET"])
    log = tmp_path / "server.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log_file,
                                stderr=subprocess.STDOUT, pass_fds=() if fd is None else (fd,),
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
        blocked = [line for line in log.read_text().splitlines()
                   if "Operation not permitted" in line or "EPERM" in line]
        assert not blocked, "the sandbox blocked a call:\n" + "\n".join(blocked)
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


def test_launcher_enforces_the_units_sandbox(tmp_path):
    """The lifecycle test's sandbox is real: a process under it cannot call
    nice() (@resources), chown() (@privileged) or map write+execute memory."""
    assert cli.main(["systemd", "render", "--prefix", sys.prefix, "--user", "server",
                     "--out", str(tmp_path)]) == 0
    unit = (tmp_path / "server-gunicorn.service").read_text()
    syscalls = allowed_syscalls(unit)
    if syscalls is None:
        pytest.skip("systemd-analyze not installed (Debian package: systemd)")
    spec = {"fd": None, "nofile": int(unit_values(unit, "LimitNOFILE")[0]), "mdwe": True,
            "syscalls": syscalls}
    probe = (
        "import mmap, os, resource\n"
        "def attempt(f):\n"
        "    try:\n"
        "        f()\n"
        "        return 'allowed'\n"
        "    except (OSError, PermissionError) as e:\n"
        "        return type(e).__name__ + ':' + str(e.errno)\n"
        "print('nice', attempt(lambda: os.nice(1)))\n"
        "print('chown', attempt(lambda: os.chown('.', os.getuid(), os.getgid())))\n"
        "wx = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC\n"
        "print('wx', attempt(lambda: mmap.mmap(-1, 4096, prot=wx)))\n"
        "print('nofile', resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", LAUNCH, json.dumps(spec), sys.executable,
                           "-c", probe], capture_output=True, text=True, timeout=60,
                          check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert seen["nice"].endswith(":1"), f"nice() under the filter: {seen['nice']}, expected EPERM"
    assert seen["chown"].endswith(":1"), f"chown() under the filter: {seen['chown']}, expected EPERM"
    get_mdwe = "import ctypes; print(ctypes.CDLL(None).prctl(66, 0, 0, 0, 0))"
    mdwe = subprocess.run([sys.executable, "-c", get_mdwe], capture_output=True, text=True,
                          timeout=60, check=False)
    if mdwe.stdout.strip() != "-1":  # PR_GET_MDWE works: Linux >= 6.3
        assert seen["wx"] != "allowed", "write+execute memory was allowed under MDWE"
    limit = int(unit_values(unit, "LimitNOFILE")[0])
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    expected = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    assert int(seen["nofile"]) == expected, f"RLIMIT_NOFILE {seen['nofile']}, expected {expected}"
