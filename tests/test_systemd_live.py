"""The rendered units behave as they promise, under systemd's protocol and sandbox.

No systemd runs here, so the test plays its part.  Protocol: it binds
$NOTIFY_SOCKET and waits for READY=1 (Type=notify), passes a listening socket
as fd 3 with LISTEN_FDS/LISTEN_PID (server.socket), sends the ExecReload signal
and then KillSignal, and expects exit code 0 within TimeoutStopSec.  Sandbox:
a mount namespace with ProtectSystem=strict's read-only tree (only the runtime
directory and a private /tmp writable), ProtectHome=, PrivateNetwork= for the
socket-activated service, plus LimitNOFILE, NoNewPrivileges,
MemoryDenyWriteExecute and the unit's SystemCallFilter as seccomp.  What runs
is the real deployment: the rendered ExecStart with the repository as working
directory (its wsgi.py, gunicorn.conf.py, uwsgi.ini) and the rendered
server.env as the environment.
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
from server import systemd_units as su

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


# The mount and network namespace systemd would set up (run as root through
# unshare): every mount read-only (ProtectSystem=strict) except the API file
# systems; /run read-only but for the runtime directory; the notify socket's
# directory bound in; a private /tmp (PrivateTmp=); /root and /home empty and
# read-only (ProtectHome=); loopback up in a private network (PrivateNetwork=).
# TEST_KEEP names the interpreter's base prefix when it lives under ~.
PRELUDE = """\
set -eu
mount --make-rprivate /
for m in $(awk '{print $5}' /proc/self/mountinfo | sort -u); do
  case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
  mount -o remount,bind,ro "$m" || { echo "sandbox: cannot make $m read-only" >&2; exit 97; }
done
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p "$RUNTIME_DIRECTORY" /run/notify /run/.keep
mount --bind "$TEST_NOTIFY_DIR" /run/notify
mount --bind "$RUNTIME_DIRECTORY" "$RUNTIME_DIRECTORY"
if [ -n "$TEST_KEEP" ]; then mount --bind "$TEST_KEEP" /run/.keep; fi
if [ -n "$TEST_TMP_KEEP" ]; then mkdir -p /run/.tmpkeep; mount --bind "$TEST_TMP_KEEP" /run/.tmpkeep; fi
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
if [ -n "$TEST_TMP_KEEP" ]; then
  # a checkout under /tmp (CI's clone, say) stays visible, read-only as
  # ProtectSystem=strict makes it: a real install never lives in /tmp
  mkdir -p "$TEST_TMP_KEEP"; mount --move /run/.tmpkeep "$TEST_TMP_KEEP"
  mount -o remount,bind,ro "$TEST_TMP_KEEP"; rmdir /run/.tmpkeep
fi
for top in /root /home; do
  # inaccessible, as ProtectHome=yes makes it; traversable if it holds TEST_KEEP
  case "$TEST_KEEP/" in "$top"/*) mode=0755 ;; *) mode=000 ;; esac
  mount -t tmpfs -o mode=$mode tmpfs $top
done
if [ -n "$TEST_KEEP" ]; then mkdir -p "$TEST_KEEP"; mount --move /run/.keep "$TEST_KEEP"; fi
rmdir /run/.keep
mount -o remount,bind,ro /run
mount -o remount,ro /root
mount -o remount,ro /home
if [ -n "$TEST_PRIVATE_NETWORK" ]; then "$TEST_PYTHON" -c "$TEST_LO_UP"; fi
unset TEST_NOTIFY_DIR TEST_PRIVATE_NETWORK TEST_KEEP TEST_TMP_KEEP TEST_PYTHON TEST_LO_UP
exec "$@"
"""


# systemd brings loopback up in a private network; SIOCGIFFLAGS/SIOCSIFFLAGS
# with IFF_UP does the same without needing iproute2
LO_UP = """\
import fcntl, socket, struct
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    flags = struct.unpack("16sh22x", fcntl.ioctl(s, 0x8913, struct.pack("16sh22x", b"lo", 0)))[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sh22x", b"lo", flags | 1))
"""


def namespaces_or_skip() -> None:
    """The mount namespace needs root and util-linux's unshare (scripts/test runs as root)."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        pytest.skip("emulating the unit's sandbox needs root, unshare and setpriv "
                    "(util-linux)")
    done = subprocess.run(["unshare", "--mount", "--net", "true"], capture_output=True,
                          text=True, timeout=60, check=False)
    if done.returncode != 0:
        pytest.skip(f"unshare is not permitted here: {done.stderr.strip()}")


def _under_tmp() -> str:
    """The checkout (with its venv) if it lives under /tmp, which PrivateTmp= hides."""
    for path in (REPO, pathlib.Path(sys.prefix)):
        if pathlib.Path("/tmp") in path.resolve().parents:
            top = path.resolve()
            while top.parent != pathlib.Path("/tmp"):
                top = top.parent
            return str(top)
    return ""


def sandbox_env(unit: str, notify_dir: pathlib.Path) -> dict[str, str]:
    """What systemd sets for the unit (and PRELUDE reads): runtime directory,
    notify socket, the service user's hidden home."""
    return {
        "HOME": "/home/server",
        "RUNTIME_DIRECTORY": "/run/" + unit_values(unit, "RuntimeDirectory")[0],
        "NOTIFY_SOCKET": "/run/notify/notify", "TEST_NOTIFY_DIR": str(notify_dir),
        "TEST_KEEP": sys.base_prefix if su.hidden_by_protect_home(sys.base_prefix) else "",
        "TEST_TMP_KEEP": _under_tmp(),
        "TEST_PRIVATE_NETWORK": "1" if unit_values(unit, "PrivateNetwork") == ["yes"] else "",
        "TEST_PYTHON": sys.executable, "TEST_LO_UP": LO_UP,
    }


def sandboxed(unit: str, argv: list[str], fd: int | None,
              restrict_families: bool = True) -> list[str]:
    """``argv`` wrapped as systemd would start it for ``unit`` (``restrict_families``
    off lets a self-test look at the network namespace behind the family filter)."""
    spec = {"fd": fd, "nofile": int(unit_values(unit, "LimitNOFILE")[0]),
            "mdwe": unit_values(unit, "MemoryDenyWriteExecute") == ["yes"],
            "syscalls": allowed_syscalls(unit),
            "families": address_families(unit) if restrict_families else None}
    net = ["--net"] if unit_values(unit, "PrivateNetwork") == ["yes"] else []
    assert unit_values(unit, "CapabilityBoundingSet") == [""]
    # CapabilityBoundingSet= (empty): even uid 0 keeps no capability past exec
    no_caps = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all"]
    return ["unshare", "--mount", *net, "--", "/bin/sh", "-c", PRELUDE, "sh", *no_caps,
            sys.executable, "-c", LAUNCH, json.dumps(spec), *argv]


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
if spec["mdwe"] and libc.prctl(65, 1, 0, 0, 0) != 0:
    if ctypes.get_errno() != errno.EINVAL:
        raise OSError(ctypes.get_errno(), "PR_SET_MDWE")
    print("sandbox: this kernel has no PR_SET_MDWE (< 6.3); W+X memory not refused",
          file=sys.stderr)
if spec["syscalls"] is not None:
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                     ctypes.c_uint]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    class ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
        _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                    ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(ArgCmp)]
    ctx = lib.seccomp_init(0x00050000 | errno.EPERM)
    families = spec["families"]
    for name in spec["syscalls"]:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:
            continue
        if name == "socket" and families is not None:
            # RestrictAddressFamilies=: socket() only for the listed families
            for family in families:
                cmp = ArgCmp(0, 4, family, 0)  # arg 0 == family (SCMP_CMP_EQ)
                if lib.seccomp_rule_add_array(ctx, 0x7FFF0000, nr, 1, ctypes.byref(cmp)):
                    raise OSError(f"seccomp_rule_add_array(socket, {family})")
        elif lib.seccomp_rule_add(ctx, 0x7FFF0000, nr, 0) != 0:
            raise OSError(f"seccomp_rule_add({name})")
    if lib.seccomp_load(ctx) != 0:
        raise OSError("seccomp_load")
os.execv(argv[0], argv)
"""


def address_families(unit: str) -> list[int]:
    """RestrictAddressFamilies= as numbers (AF_UNIX, AF_INET...)."""
    (value,) = unit_values(unit, "RestrictAddressFamilies")
    return [int(getattr(socket, name)) for name in value.split()]


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
    namespaces_or_skip()
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
    notify_dir = tmp_path / "notify"
    notify_dir.mkdir()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SERVER_", "LISTEN_"))}
    env.update(env_file((out / "server.env").read_text()))
    env.update(dict(v.split("=", 1) for v in unit_values(unit, "Environment")))
    # production installs the package into the venv; here it is the checkout
    env.update(sandbox_env(unit, notify_dir), PYTHONPATH=str(REPO))
    assert unit_values(unit, "SystemCallErrorNumber") == ["EPERM"]
    fd = listener.fileno() if listener is not None else None
    argv = sandboxed(unit, shlex.split(unit_values(unit, "ExecStart")[0]), fd)
    assert unit_values(unit, "ExecReload") == ["/bin/kill -HUP $MAINPID"]
    reload_signal = signal.SIGHUP
    kill_signal = getattr(signal, unit_values(unit, "KillSignal")[0])
    stop_timeout = float(unit_values(unit, "TimeoutStopSec")[0])

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_dir / "notify"))
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
                   if any(sign in line for sign in (
                       "Operation not permitted", "EPERM", "Read-only file system", "EROFS"))]
        assert not blocked, "the sandbox blocked a call:\n" + "\n".join(blocked)
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
    nice() (@resources), chown() (@privileged), open a netlink socket
    (RestrictAddressFamilies=) or map write+execute memory."""
    assert cli.main(["systemd", "render", "--prefix", sys.prefix, "--user", "server",
                     "--out", str(tmp_path)]) == 0
    unit = (tmp_path / "server-gunicorn.service").read_text()
    syscalls = allowed_syscalls(unit)
    if syscalls is None:
        pytest.skip("systemd-analyze not installed (Debian package: systemd)")
    spec = {"fd": None, "nofile": int(unit_values(unit, "LimitNOFILE")[0]), "mdwe": True,
            "syscalls": syscalls, "families": address_families(unit)}
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
        "import socket\n"
        "print('netlink', attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)))\n"
        "print('inet', attempt(lambda: socket.socket().close()))\n"
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
    assert seen["netlink"].endswith(":1"), f"AF_NETLINK under the filter: {seen['netlink']}"
    assert seen["inet"] == "allowed", f"AF_INET under the filter: {seen['inet']}"
    limit = int(unit_values(unit, "LimitNOFILE")[0])
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    expected = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    assert int(seen["nofile"]) == expected, f"RLIMIT_NOFILE {seen['nofile']}, expected {expected}"


@pytest.mark.parametrize("layout", ["gunicorn", "socket"])
def test_sandbox_mounts_are_what_the_unit_says(tmp_path, layout):
    """The lifecycle test's namespace is real: the tree is read-only but for the
    runtime directory and a private /tmp, home is hidden, no capability is left
    (no port below 1024), and the socket-activated service cannot reach the
    host's loopback."""
    namespaces_or_skip()
    extra = ["--socket"] if layout == "socket" else []
    assert cli.main(["systemd", "render", "--prefix", sys.prefix, "--user", "server",
                     *extra, "--out", str(tmp_path)]) == 0
    name = "server.service" if layout == "socket" else "server-gunicorn.service"
    unit = (tmp_path / name).read_text()
    (tmp_path / "notify").mkdir()
    host_marker = tmp_path / "visible-outside"
    host_marker.write_text("x")
    with socket.socket() as host_listener:
        host_listener.bind(("127.0.0.1", 0))
        host_listener.listen(1)
        port = host_listener.getsockname()[1]
        probe = (
            "import os, socket, sys\n"
            "def attempt(f):\n"
            "    try:\n"
            "        f()\n"
            "        return 'ok'\n"
            "    except OSError as e:\n"
            "        return 'errno' + str(e.errno)\n"
            "def write(path):\n"
            "    return attempt(lambda: open(path, 'w').close())\n"
            f"print('repo', write({str(REPO / 'sandbox-probe')!r}))\n"
            "print('run', write('/run/probe'))\n"
            "print('runtime', write(os.environ['RUNTIME_DIRECTORY'] + '/probe'))\n"
            "print('tmp', write('/tmp/probe'))\n"
            f"print('tmp_private', 'no' if os.path.exists({str(host_marker)!r}) else 'yes')\n"
            "print('home', write('/home/server'))\n"
            "print('root', write('/root/probe'))\n"
            f"print('host_loopback', attempt(lambda: socket.create_connection("
            f"('127.0.0.1', {port}), timeout=5).close()))\n"
            "caps = [line.split()[1] for line in open('/proc/self/status')\n"
            "        if line.startswith(('CapEff', 'CapBnd'))]\n"
            "print('caps', ','.join(caps))\n"
            "print('port80', attempt(lambda: socket.create_server(('127.0.0.1', 80)).close()))\n"
        )
        env = {**os.environ, **sandbox_env(unit, tmp_path / "notify")}
        argv = sandboxed(unit, [sys.executable, "-c", probe], None, restrict_families=False)
        done = subprocess.run(argv,
                              capture_output=True, text=True, env=env, timeout=60,
                              check=False)
    assert done.returncode == 0, done.stderr
    seen = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    # home: EACCES (inaccessible, no capability to override) or EROFS (read-only)
    for key in ("home", "root"):
        assert seen.get(key) in ("errno13", "errno30"), f"{key} inside the sandbox: {seen}"
        seen[key] = "refused"
    # port 80: EACCES (no CAP_NET_BIND_SERVICE) or EPERM (refused by the
    # kernel's filter); host loopback from the private network: ECONNREFUSED
    # (its own empty loopback) or EPERM — both mean unreachable (seen under load)
    assert seen.get("port80") in ("errno13", "errno1"), f"port 80 inside the sandbox: {seen}"
    seen["port80"] = "refused"
    if layout == "socket":
        assert seen.get("host_loopback") in ("errno111", "errno1"), \
            f"host loopback inside the private network: {seen}"
        seen["host_loopback"] = "unreachable"
    expected = {"repo": "errno30", "run": "errno30", "runtime": "ok", "tmp": "ok",
                "tmp_private": "yes", "home": "refused", "root": "refused",
                "host_loopback": "unreachable" if layout == "socket" else "ok",
                "caps": "0000000000000000,0000000000000000", "port80": "refused"}
    assert seen == expected, f"inside the sandbox: {seen}, expected {expected}"
