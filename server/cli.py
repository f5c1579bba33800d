"""``python -m server …``: the operator's command line.

Each subcommand lives in its own module and is imported only when it is
asked for, so a missing optional dependency (cryptography for ``tls``, say)
costs nothing until that command runs.  A subcommand module exposes
``add_arguments(parser)`` and ``main(args) -> int``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("server.commands.run", "serve an application (the demo app by default)"),
    "check": ("server.commands.check", "report on the current configuration"),
    "tls": ("server.commands.tls", "make and check TLS certificates"),
    "systemd": ("server.commands.systemd", "render hardened systemd units"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="Flask-SocketIO on native threads: run, check, tls, systemd.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_module", None) is None:
        # bare `python -m server` runs the demo, as the README promises
        args = parser.parse_args(["run", *(argv or [])])
    return int(args._module.main(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
