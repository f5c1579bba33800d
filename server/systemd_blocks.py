"""The commented blocks the systemd units are made of (see systemd_units.py).

Each block is ``(why, [(key, value), ...])``; the comment is written above
the settings in the unit file.  Values come from a validated UnitOptions.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .systemd_units import Block, UnitOptions

Sections = Sequence[tuple[str, Sequence["Block"]]]


def service_sections(o: UnitOptions) -> Sections:
    return [("Unit", _unit(o)), ("Service", _service(o)), ("Install", _install(o))]


def socket_sections(o: UnitOptions) -> Sections:
    listen = o.bind.removeprefix("unix:")
    blocks: list[Block] = [
        ("", [("Description", "Flask-SocketIO server: listening socket")]),
    ]
    socket: list[Block] = [
        (("systemd binds the address (any port: the service needs no capability)\n"
          "and hands the listening socket to gunicorn as LISTEN_FDS=1; gunicorn\n"
          "then ignores its own bind setting.  Accept=no: one gunicorn serves every\n"
          "connection."), [("ListenStream", listen), ("Accept", "no")]),
    ]
    if o.ip_allow != ("any",):
        socket.append(
            (("The IP access list for connections on this socket (cgroup BPF); the\n"
              "service's own IPAddressDeny= does not cover sockets passed in."),
             [("IPAddressDeny", "any"), ("IPAddressAllow", " ".join(o.ip_allow))]))
    return [("Unit", blocks), ("Socket", socket),
            ("Install", [("", [("WantedBy", "sockets.target")])])]


def _unit(o: UnitOptions) -> list[Block]:
    if o.socket:
        return [
            ("", [("Description", "Flask-SocketIO server (gunicorn, socket-activated)")]),
            (("The listening socket comes from server.socket: without it the service\n"
              "has nothing to serve (it has no network of its own)."),
             [("Requires", "server.socket"), ("After", "server.socket")]),
        ]
    return [
        ("", [("Description", f"Flask-SocketIO server ({o.server})")]),
        (("Start once the network is configured, so a specific --bind address and a\n"
          "remote message queue are reachable at boot."),
         [("Wants", "network-online.target"), ("After", "network-online.target")]),
    ]


def _install(o: UnitOptions) -> list[Block]:
    if o.socket:
        return [("Enabling the service enables its socket; the socket starts it.",
                 [("Also", "server.socket")])]
    return [("", [("WantedBy", "multi-user.target")])]


def _service(o: UnitOptions) -> list[Block]:
    return [*_process(o), *_sandbox(o)]


def _process(o: UnitOptions) -> list[Block]:
    gunicorn = o.server == "gunicorn"
    if gunicorn:
        ready = ("gunicorn's arbiter sends READY=1 to $NOTIFY_SOCKET once its listeners are\n"
                 "open (gunicorn/systemd.py), so `systemctl start` returns when the port\n"
                 "accepts and units ordered after this one start on time.  Only the main\n"
                 "process may report: a worker running application code cannot.")
        command = (f"{o.prefix}/bin/gunicorn -c {o.workdir}/gunicorn.conf.py "
                   f"--worker-tmp-dir {o.runtime_dir} {o.app}")
        command_why = ("gunicorn.conf.py (in the working directory) holds the server settings;\n"
                       "the worker heartbeat file goes to the runtime directory, a tmpfs, so\n"
                       "its fchmod never waits on a disk.")
        reload_why = ("SIGHUP: gunicorn re-reads its configuration and replaces the workers\n"
                      "gracefully; the main PID stays the same.")
        stop_why = (f"SIGTERM to the arbiter only (KillMode=mixed) is gunicorn's graceful stop:\n"
                    f"workers stop accepting and get graceful_timeout ({o.graceful_timeout:g} s,\n"
                    f"SERVER_GRACEFUL_TIMEOUT) to close their clients.  TimeoutStopSec is that\n"
                    f"plus a margin; then systemd sends SIGKILL to the whole cgroup.")
    else:
        ready = ("uWSGI's master sends READY=1 to $NOTIFY_SOCKET itself once its workers\n"
                 "are up, so `systemctl start` returns when the socket accepts.  Only the\n"
                 "main process (the master) may report.")
        command = (f"{o.prefix}/bin/uwsgi --ini {o.workdir}/uwsgi.ini --master --die-on-term "
                   f"--module {o.app}")
        command_why = ("uwsgi.ini (in the working directory) holds the server settings; the\n"
                       "shipped one sets these two as well, but the unit depends on them, so\n"
                       "they are repeated here.  --master: one long-lived main process for\n"
                       "systemd to track.  --die-on-term: SIGTERM stops uWSGI (2.0 otherwise\n"
                       "takes it as a brutal reload, and a stop would wait for SIGKILL).")
        reload_why = ("SIGHUP is uWSGI's graceful reload: workers finish their requests and\n"
                      "the master re-executes itself under the same PID.")
        stop_why = (f"SIGTERM to the master only (KillMode=mixed).  With --die-on-term the\n"
                    f"master stops its workers, whose exit hook (uwsgi.atexit) closes the\n"
                    f"Socket.IO clients; uwsgi.ini's worker-reload-mercy (SERVER_GRACEFUL_TIMEOUT,\n"
                    f"{o.graceful_timeout:g} s) bounds that.  TimeoutStopSec is the graceful timeout\n"
                    f"plus a margin; then systemd sends SIGKILL to the whole cgroup.")
    if o.dynamic_user:
        identity: Block = (
            ("A user allocated by systemd for the lifetime of the service: it owns\n"
            "nothing on disk but the state directory, and is never root."),
            [("DynamicUser", "yes"), ("User", o.user)])
    else:
        identity = (
            ("A dedicated unprivileged system user, never root; it needs to read the\n"
            "application and the venv, and owns nothing but the state directory."),
            [("User", o.user), ("Group", o.user)])
    env: list[tuple[str, str]] = [
        ("WorkingDirectory", o.workdir),
        ("EnvironmentFile", o.env_file),
        ("Environment", "PYTHONUNBUFFERED=1"),
    ]
    env_why = ("The application directory (wsgi.py and the server's configuration; the\n"
               "server puts it on sys.path).  The SERVER_* settings file is read by\n"
               "systemd as root before the sandbox starts, so it stays root:root 0600 and\n"
               "may hold secrets (a message-queue password); a missing file fails the\n"
               "start, on purpose.  Unbuffered output reaches the journal as written.")
    if gunicorn:
        env.append(("Environment", f"XDG_RUNTIME_DIR={o.runtime_dir}"))
        env_why += ("\ngunicorn >= 25.1 opens a control socket (gunicornc) in $XDG_RUNTIME_DIR,\n"
                    "else under $HOME, which ProtectHome= hides: when the configuration\n"
                    "enables it (the shipped gunicorn.conf.py does not), it lands in the\n"
                    f"runtime directory (gunicornc -s {o.runtime_dir}/gunicorn.ctl).  Older\n"
                    "gunicorn ignores the variable.")
    return [
        (ready, [("Type", "notify"), ("NotifyAccess", "main")]),
        identity,
        (env_why, env),
        (command_why, [("ExecStart", command)]),
        (reload_why, [("ExecReload", "/bin/kill -HUP $MAINPID")]),
        (stop_why, [("KillSignal", "SIGTERM"), ("KillMode", "mixed"),
                    ("TimeoutStopSec", str(o.stop_timeout))]),
        (("Restart after a crash or a failed start, not after `systemctl stop`; the\n"
          "pause keeps a crash loop from spinning (the start limit ends it)."),
         [("Restart", "on-failure"), ("RestartSec", "2")]),
        ((f"Each Socket.IO connection holds about 2 descriptors (the client socket and,\n"
          f"at peak, one outbound); 2 x max_connections ({o.max_connections},\n"
          f"SERVER_MAX_CONNECTIONS) + 1024 for listeners, logs, imports and the queue.\n"
          f"Re-render with --max-connections to change both together."),
         [("LimitNOFILE", str(o.limit_nofile))]),
    ]


def _sandbox(o: UnitOptions) -> list[Block]:
    unix_bind = o.bind.startswith("unix:") and not o.socket
    syscalls: list[tuple[str, str]] = [
        ("SystemCallArchitectures", "native"),
        ("SystemCallFilter", "@system-service"),
        ("SystemCallFilter", "~@privileged @resources"),
    ]
    syscalls_why = ("Only the system calls services use, minus the privileged and\n"
                    "resource-tuning ones (setuid, chown, mount, setrlimit, nice...); a\n"
                    "blocked call fails with EPERM, so the error shows in the log instead\n"
                    "of a killed process.")
    if unix_bind:
        syscalls.append(("SystemCallFilter", "@chown"))
        syscalls_why += ("\ngunicorn chowns a unix: socket it binds (to its own user), so chown\n"
                         "is allowed back for --bind unix:.")
    syscalls.append(("SystemCallErrorNumber", "EPERM"))
    return [
        (("Writable: only the runtime directory (/run/NAME, a tmpfs removed at stop:\n"
          "control socket, heartbeat, a unix: socket) and the state directory\n"
          "(/var/lib/server, kept; $STATE_DIRECTORY).  Files created are private."),
         [("RuntimeDirectory", o.unit), ("RuntimeDirectoryMode", "0750"),
          ("StateDirectory", "server"), ("StateDirectoryMode", "0700"),
          ("UMask", "0077")]),
        (("No capabilities, and no way to gain any (setuid binaries, file\n"
          "capabilities, other users' IDs): the server needs none."),
         [("NoNewPrivileges", "yes"), ("CapabilityBoundingSet", ""),
          ("AmbientCapabilities", ""), ("RestrictSUIDSGID", "yes"),
          ("PrivateUsers", "yes"), ("RemoveIPC", "yes"), ("KeyringMode", "private")]),
        (("The file system is read-only apart from the directories above; /home,\n"
          "/root and /run/user look empty; /tmp is private; /dev holds only pseudo\n"
          "devices; other users' processes are hidden.  ProcSubset=pid is left out on\n"
          "purpose: prometheus-client reads /proc/stat for the process_* metrics\n"
          "(open fds against the limit, memory) and silently drops them without it."),
         [("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
          ("PrivateDevices", "yes"), ("DevicePolicy", "closed"), ("PrivateMounts", "yes"),
          ("ProtectProc", "invisible")]),
        (("A web server has no business with sysctls, kernel modules, the kernel\n"
          "log, cgroups, the clock or the host name."),
         [("ProtectKernelTunables", "yes"), ("ProtectKernelModules", "yes"),
          ("ProtectKernelLogs", "yes"), ("ProtectControlGroups", "yes"),
          ("ProtectClock", "yes"), ("ProtectHostname", "yes")]),
        *_network(o),
        (("No memory both writable and executable (CPython and cryptography need\n"
          "none; old-style cffi callbacks do: if one fails with \"Cannot allocate\n"
          "write+execute memory\", turn MemoryDenyWriteExecute off in a drop-in), no\n"
          "realtime scheduling, no new namespaces, no personality changes."),
         [("MemoryDenyWriteExecute", "yes"), ("LockPersonality", "yes"),
          ("RestrictRealtime", "yes"), ("RestrictNamespaces", "yes")]),
        (syscalls_why, syscalls),
    ]


def _network(o: UnitOptions) -> list[Block]:
    if o.socket:
        return [(
            ("An empty network namespace of its own: the listening socket is passed in\n"
            "by server.socket, and the service can open nothing but Unix sockets\n"
            "(journald, sd_notify, the control socket).  So nothing goes out either:\n"
            "a remote message queue needs server-gunicorn.service instead."),
            [("PrivateNetwork", "yes"), ("RestrictAddressFamilies", "AF_UNIX"),
             ("IPAddressDeny", "any")])]
    blocks: list[Block] = [(
        ("TCP/IP for clients and the message queue; AF_UNIX for journald, sd_notify\n"
        "and unix: sockets.  No netlink, packet or other socket families."),
        [("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX")])]
    if o.ip_allow != ("any",):
        blocks.append((
            ("IP firewall (cgroup BPF) for every packet in or out: only these peers.\n"
            "Loopback is all a server behind a local proxy with a local Redis needs;\n"
            "re-render with --ip-allow ADDRESS/PREFIX (repeatable) for remote ones."),
            [("IPAddressDeny", "any"), ("IPAddressAllow", " ".join(o.ip_allow))]))
    return blocks


# -- the environment file --------------------------------------------------
def env_file(o: UnitOptions, header: str) -> str:
    """SERVER_<NAME> lines: the rendered values set, every other setting listed."""
    from .settings import SETTINGS

    chosen = {"bind": o.bind, "threads": o.threads, "max_connections": o.max_connections,
              "graceful_timeout": o.graceful_timeout}
    lines = [("# " + line).rstrip() for line in header.split("\n")]
    lines += [
        "#",
        "# One NAME=value per line, no quotes needed, no trailing comments.  systemd",
        "# reads this file as root before starting the sandboxed service: keep it",
        "# root:root 0600.  Settings given in code win over these.  What each one",
        "# does: docs/settings.md.",
        "",
        "# Rendered: max_connections and graceful_timeout are also in the unit",
        "# (LimitNOFILE, TimeoutStopSec), and a socket-activated server listens where",
        "# server.socket says, not at SERVER_BIND: change those three by re-rendering.",
    ]
    others = []
    for setting in SETTINGS:
        if setting.env_var is None:
            continue
        if setting.name in chosen:
            lines.append(f"{setting.env_var}={_env_value(chosen[setting.name])}")
        else:
            others.append(f"#{setting.env_var}={_env_value(setting.default)}")
    lines += ["", "# Every other setting, at its default:", *others]
    return "\n".join(lines) + "\n"


def _env_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)

