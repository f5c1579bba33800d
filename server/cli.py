"""``python -m server …``: the operator's command line.

Each subcommand lives in its own module and is imported only when it is
asked for, so a missing optional dependency (cryptography for ``tls``, say)
or an unfinished command costs nothing until that command runs.  A subcommand module exposes
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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand's module is imported."""
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="Flask-SocketIO on native threads: run, tls, systemd.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command is None and not any(a in ("-h", "--help") for a in argv):
        # bare `python -m server` runs the demo, as the README promises
        argv, command = ["run", *argv], "run"
    if command not in COMMANDS:
        command = ""  # let argparse list the commands (or report the bad one)
    parser = build_parser(only=command)
    args = parser.parse_args(argv)
    if getattr(args, "_module", None) is None:
        parser.print_help()
        return 2
    return int(args._module.main(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
