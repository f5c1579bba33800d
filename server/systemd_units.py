"""Hardened systemd units for one install, rendered from a few arguments.

``python -m server systemd render`` calls :func:`render` and writes the result;
the files shipped in ``systemd/`` are :data:`SHIPPED_ARGS` rendered with each of
:data:`SHIPPED_VARIANTS`, and a test keeps the two in step.

Three service layouts come out of one set of sandbox settings:

``server-gunicorn.service``  gunicorn binds the address itself (Type=notify);
``server-uwsgi.service``     the same for uWSGI (its master notifies systemd);
``server.socket`` + ``server.service``  systemd binds the address and passes
    the listening socket to gunicorn (``LISTEN_FDS``), so the service itself
    runs with no network at all (PrivateNetwork=yes, AF_UNIX only).

Every file is written as a list of commented blocks: the comment says why the
settings below it are there, because a unit file is read by the operator who
has to decide whether it may be loosened.
"""
from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import NoReturn

from .errors import ConfigurationError

SERVERS = ("gunicorn", "uwsgi")

#: the arguments the files in systemd/ are rendered with (docs/systemd.md)
SHIPPED_ARGS: tuple[str, ...] = ("--prefix", "/opt/server/venv", "--user", "server")
#: the extra arguments of each shipped variant
SHIPPED_VARIANTS: tuple[tuple[str, ...], ...] = ((), ("--server", "uwsgi"), ("--socket",))

DEFAULT_WORKDIR = "/opt/server/app"
DEFAULT_ENV_FILE = "/etc/server/server.env"
DEFAULT_APP = "wsgi:app"
DEFAULT_MAX_CONNECTIONS = 10_000
#: TimeoutStopSec = graceful_timeout + this, so systemd's SIGKILL never
#: lands while the server is still closing clients within its own deadline
STOP_MARGIN_SECONDS = 10
#: descriptors per Socket.IO connection: the client socket, plus one for the
#: outbound side of whatever the handler talks to (queue, database) at peak
FDS_PER_CONNECTION = 2
#: descriptors for everything else: listeners, logs, imports, the message
#: queue's pool, the control socket, the worker heartbeat file
FD_HEADROOM = 1024
#: systemd's keywords for IPAddressAllow=, besides addresses and prefixes
IP_KEYWORDS = ("localhost", "link-local", "multicast")

_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,30}$")
_APP = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$")
# characters systemd would interpret inside a value: specifiers (%),
# variable expansion ($), quoting, escapes and whitespace
_UNSAFE_PATH = re.compile(r"[\s%$\"'\\;]")


class RenderError(ConfigurationError):
    """A render argument is wrong; the message names it, its value and the fix."""


@dataclass(frozen=True)
class UnitOptions:
    """What differs between installs.  Validated on construction."""

    prefix: str
    user: str
    workdir: str = DEFAULT_WORKDIR
    env_file: str = DEFAULT_ENV_FILE
    app: str = DEFAULT_APP
    server: str = "gunicorn"
    socket: bool = False
    dynamic_user: bool = False
    bind: str = field(default_factory=lambda: _table_default("bind"))
    threads: int = field(default_factory=lambda: _table_default("threads"))
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    graceful_timeout: float = field(default_factory=lambda: _table_default("graceful_timeout"))
    ip_allow: tuple[str, ...] = ("localhost",)

    def __post_init__(self) -> None:
        for flag, value in (("--prefix", self.prefix), ("--workdir", self.workdir),
                            ("--env-file", self.env_file)):
            _check_path(flag, value)
        for flag, value in (("--prefix", self.prefix), ("--workdir", self.workdir)):
            if hidden_by_protect_home(value):
                _fail(flag, value, "ProtectHome=yes hides /home, /root and /run/user from "
                      "the service; fix: install under /opt or /srv")
        if not _USER.match(self.user):
            _fail("--user", self.user, "must be a system user name such as 'server' "
                  "(lower case letters, digits, '_' and '-')")
        if self.user == "root":
            _fail("--user", self.user, "running as root defeats the sandbox; "
                  "create a system user (useradd --system server) and pass its name")
        if not _APP.match(self.app):
            _fail("--app", self.app, "must be MODULE:CALLABLE such as 'wsgi:app'")
        if self.server not in SERVERS:
            _fail("--server", self.server, "must be one of " + ", ".join(SERVERS))
        if self.socket and self.server != "gunicorn":
            _fail("--socket", self.server, "socket activation is rendered for gunicorn "
                  "only; drop --socket or use --server gunicorn")
        if self.threads <= 0:
            _fail("--threads", self.threads, "must be greater than zero")
        if self.max_connections <= 0:
            _fail("--max-connections", self.max_connections, "must be greater than zero")
        if not (self.graceful_timeout > 0 and math.isfinite(self.graceful_timeout)):
            _fail("--graceful-timeout", self.graceful_timeout,
                  "must be a positive number of seconds")
        _check_ip_allow(self.ip_allow)
        _check_bind(self)

    # -- derived values ----------------------------------------------------
    @property
    def unit(self) -> str:
        """The service unit's name, without ``.service``."""
        return "server" if self.socket else f"server-{self.server}"

    @property
    def runtime_dir(self) -> str:
        return "/run/" + self.unit

    @property
    def limit_nofile(self) -> int:
        return FDS_PER_CONNECTION * self.max_connections + FD_HEADROOM

    @property
    def stop_timeout(self) -> int:
        return math.ceil(self.graceful_timeout) + STOP_MARGIN_SECONDS

    def render_args(self, only: Iterable[str] | None = None) -> list[str]:
        """The shortest ``render`` arguments that give these options back
        (with ``only``, just those fields besides the required ones)."""
        args = ["--prefix", self.prefix, "--user", self.user]
        for f in fields(self):
            value = getattr(self, f.name)
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            if f.name in ("prefix", "user") or value == default:
                continue
            if only is not None and f.name not in only:
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                args.append(flag)
            elif isinstance(value, tuple):
                for item in value:
                    args += [flag, item]
            else:
                args += [flag, str(value)]
        return args


def hidden_by_protect_home(path: str) -> bool:
    return any(path == top or path.startswith(top + "/")
               for top in ("/home", "/root", "/run/user"))


def _table_default(name: str) -> object:
    """The settings table's default, so a render matches an unconfigured server."""
    from .settings import BY_NAME

    return BY_NAME[name].default


def _fail(flag: str, value: object, problem: str) -> NoReturn:
    raise RenderError(f"{flag} {value!r} is invalid: {problem}")


def _check_path(flag: str, value: str) -> None:
    if not value.startswith("/"):
        _fail(flag, value, "must be an absolute path (systemd does not resolve "
              "relative ones); fix: pass it starting with '/'")
    if _UNSAFE_PATH.search(value):
        _fail(flag, value, "must not contain spaces, quotes, '%', '$', '\\' or ';' "
              "(systemd would expand or split them); fix: install to a plain path")
    if "/../" in value + "/" or "/./" in value + "/":
        _fail(flag, value, "must be a normalised path without '.' or '..' parts")


def _check_ip_allow(entries: Sequence[str]) -> None:
    if not entries:
        _fail("--ip-allow", "", "give at least one address, prefix, 'localhost' or 'any'")
    if "any" in entries and len(entries) > 1:
        _fail("--ip-allow", " ".join(entries), "'any' turns the allow-list off, so it "
              "cannot be combined with other entries")
    for entry in entries:
        if entry == "any" or entry in IP_KEYWORDS:
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            _fail("--ip-allow", entry, "must be an IP address, a prefix such as "
                  "10.0.0.0/8, one of " + ", ".join(IP_KEYWORDS) + ", or 'any'")


def _check_bind(o: UnitOptions) -> None:
    if o.bind.startswith("unix:"):
        path = o.bind[len("unix:"):]
        _check_path("--bind", path)
        if not o.socket and not path.startswith(o.runtime_dir + "/"):
            _fail("--bind", o.bind, f"the sandbox lets the server create files only in "
                  f"{o.runtime_dir}/; fix: --bind unix:{o.runtime_dir}/server.sock")
        return
    host, sep, port = o.bind.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        _fail("--bind", o.bind, "must be HOST:PORT (port 1-65535), [IPV6]:PORT or "
              "unix:/PATH")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        _fail("--bind", o.bind, "the host must be an IP address (the unit restricts "
              "addresses, so a name that resolves differently later would be wrong)")
    if int(port) < 1024 and not o.socket:
        _fail("--bind", o.bind, "ports below 1024 need CAP_NET_BIND_SERVICE, which the "
              "hardened unit drops; fix: use --socket (systemd binds the port) or a "
              "port >= 1024 behind a reverse proxy")
    if not address.is_loopback and o.ip_allow == ("localhost",):
        _fail("--bind", o.bind, "it accepts remote clients but --ip-allow allows only "
              "localhost; fix: add --ip-allow with your proxy's address or prefix, or "
              "--ip-allow any")


# -- rendering ---------------------------------------------------------------
Block = tuple[str, Sequence[tuple[str, str]]]


def _lines(blocks: Iterable[Block]) -> list[str]:
    out: list[str] = []
    for comment, entries in blocks:
        if comment:
            out.extend(("# " + line).rstrip() for line in comment.strip("\n").split("\n"))
        out.extend(f"{key}={value}" for key, value in entries)
        out.append("")
    return out


def _file(header: str, sections: Sequence[tuple[str, Iterable[Block]]]) -> str:
    lines = [("# " + line).rstrip() for line in header.strip("\n").split("\n")]
    lines.append("")
    for name, blocks in sections:
        lines.append(f"[{name}]")
        lines.extend(_lines(blocks))
    return "\n".join(lines).rstrip("\n") + "\n"


def _header(o: UnitOptions, filename: str, what: str) -> str:
    command = " ".join(("python -m server systemd render", *o.render_args()))
    return (f"{filename}: {what}\n"
            f"Rendered by: {command}\n"
            "Re-render instead of editing; put local changes in a drop-in\n"
            "(systemctl edit UNIT).  Install and reasons: docs/systemd.md.")


#: the options the environment file depends on: every layout renders it alike
ENV_FIELDS = ("bind", "threads", "max_connections", "graceful_timeout")


def _env_header(o: UnitOptions) -> str:
    command = " ".join(("python -m server systemd render", *o.render_args(ENV_FIELDS)))
    return ("server.env: the server's settings, SERVER_<NAME>=value (docs/settings.md)\n"
            f"Rendered by: {command}\n"
            f"Install as {o.env_file} and edit the values there.")


def render(o: UnitOptions) -> dict[str, str]:
    """File name -> text for the layout ``o`` asks for (always with the env file)."""
    from . import systemd_blocks as b

    files: dict[str, str] = {}
    service = o.unit + ".service"
    if o.socket:
        files["server.socket"] = _file(
            _header(o, "server.socket", "systemd binds the address and starts "
                    "server.service on the first connection"),
            b.socket_sections(o))
        what = "gunicorn on a socket systemd passes in, with no network of its own"
    else:
        what = f"{o.server} serving {o.app}, hardened"
    files[service] = _file(_header(o, service, what), b.service_sections(o))
    files["server.env"] = b.env_file(o, _env_header(o))
    return files
