"""``python -m server``: every subcommand is listed and documented."""
import subprocess
import sys

from server import cli


def _run(*args):
    return subprocess.run([sys.executable, "-m", "server", *args], capture_output=True,
                          text=True, timeout=60)


def test_help_lists_every_command():
    done = _run("--help")
    assert done.returncode == 0, done.stderr
    for name in cli.COMMANDS:
        assert name in done.stdout


def test_unknown_command_names_the_choices():
    done = _run("frobnicate")
    assert done.returncode == 2
    assert "invalid choice: 'frobnicate'" in done.stderr


def test_each_command_has_help():
    for name in cli.COMMANDS:
        done = _run(name, "--help")
        assert done.returncode == 0, f"{name} --help failed: {done.stderr}"
        assert "usage: python -m server " + name in done.stdout
