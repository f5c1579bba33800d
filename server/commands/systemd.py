"""Render hardened systemd units for one install.

  python -m server systemd render --prefix PREFIX --user USER [--socket]
      [--server gunicorn|uwsgi] [--app wsgi:app] [--workdir DIR]
      [--env-file PATH] [--bind HOST:PORT] [--max-connections N] [--out DIR]

PREFIX is the virtualenv (or install prefix) holding bin/gunicorn or
bin/uwsgi.  Writes server-gunicorn.service or server-uwsgi.service (or, with
--socket, server.socket + server.service) and server.env into --out.  Install
steps, what each setting does and the measured exposure scores: docs/systemd.md.
"""
from __future__ import annotations

import argparse
import os
import sys

from .. import systemd_units as su

EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="systemd_command", metavar="ACTION")
    p = sub.add_parser("render", help="write the unit files and server.env for one install",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prefix", required=True, metavar="PREFIX",
                   help="absolute path of the venv/install prefix holding bin/gunicorn, bin/uwsgi")
    p.add_argument("--user", required=True, metavar="USER",
                   help="the unprivileged system user the server runs as (not root)")
    p.add_argument("--dynamic-user", action="store_true",
                   help="let systemd allocate USER at start (DynamicUser=yes)")
    p.add_argument("--workdir", default=su.DEFAULT_WORKDIR, metavar="DIR",
                   help="the application directory: wsgi.py, gunicorn.conf.py, uwsgi.ini "
                        f"(default {su.DEFAULT_WORKDIR})")
    p.add_argument("--env-file", default=su.DEFAULT_ENV_FILE, metavar="PATH",
                   help=f"where server.env will be installed (default {su.DEFAULT_ENV_FILE})")
    p.add_argument("--app", default=su.DEFAULT_APP, metavar="MODULE:CALLABLE",
                   help=f"the WSGI application (default {su.DEFAULT_APP})")
    p.add_argument("--server", default="gunicorn", metavar="NAME",
                   help="gunicorn or uwsgi (default gunicorn)")
    p.add_argument("--socket", action="store_true",
                   help="socket activation: server.socket binds, server.service "
                        "(gunicorn) runs without a network")
    p.add_argument("--bind", default=None, metavar="ADDRESS",
                   help="HOST:PORT, [IPV6]:PORT or unix:/PATH (default: the settings "
                        "table's, 127.0.0.1:5000)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="SERVER_THREADS (default: the settings table's)")
    p.add_argument("--max-connections", type=int, default=su.DEFAULT_MAX_CONNECTIONS,
                   metavar="N", help="SERVER_MAX_CONNECTIONS; LimitNOFILE = 2 x N + 1024 "
                                     f"(default {su.DEFAULT_MAX_CONNECTIONS})")
    p.add_argument("--graceful-timeout", type=float, default=None, metavar="SECONDS",
                   help="SERVER_GRACEFUL_TIMEOUT; TimeoutStopSec = this + 10 "
                        "(default: the settings table's)")
    p.add_argument("--ip-allow", action="append", default=None, metavar="ADDRESS",
                   help="peers allowed by the IP firewall: an address, a prefix, localhost, "
                        "or 'any' for no firewall; repeatable (default localhost)")
    p.add_argument("--out", default=".", metavar="DIR",
                   help="directory to write the files to (default: the current one)")


def options_from(args: argparse.Namespace) -> su.UnitOptions:
    """UnitOptions from parsed arguments; raises RenderError on a bad one."""
    given = {name: getattr(args, name) for name in (
        "prefix", "user", "dynamic_user", "workdir", "env_file", "app", "server",
        "socket", "bind", "threads", "max_connections", "graceful_timeout")}
    given = {k: v for k, v in given.items() if v is not None}
    if args.ip_allow:
        given["ip_allow"] = tuple(args.ip_allow)
    return su.UnitOptions(**given)


def main(args: argparse.Namespace) -> int:
    if getattr(args, "systemd_command", None) != "render":
        print("usage: python -m server systemd render --prefix PREFIX --user USER [...]; "
              "see python -m server systemd render --help", file=sys.stderr)
        return EXIT_USAGE
    try:
        options = options_from(args)
    except su.RenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not os.path.isdir(args.out):
        print(f"error: --out {args.out!r} is not a directory; fix: create it first "
              f"(mkdir -p {args.out})", file=sys.stderr)
        return EXIT_USAGE
    for name, text in su.render(options).items():
        path = os.path.join(args.out, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(path)
    binary = os.path.join(options.prefix, "bin", options.server)
    if not os.access(binary, os.X_OK):
        # not an error: units are often rendered before (or away from) the install
        print(f"note: {binary} does not exist (yet); install {options.server} into "
              f"{options.prefix} before starting the service", file=sys.stderr)
    python = os.path.realpath(os.path.join(options.prefix, "bin", "python"))
    if os.path.exists(python) and su.hidden_by_protect_home(python):
        # a venv made by a Python under ~ (pyenv, say) points into it
        print(f"warning: {options.prefix}/bin/python is {python}, which ProtectHome=yes "
              f"hides from the service; fix: recreate the venv from a Python outside "
              f"/home and /root (/usr/bin/python3 -m venv {options.prefix})", file=sys.stderr)
    return 0
