"""The benchmark's environments, set up by the script itself, idempotently.

- the project venv (/work/main/.venv): this server, gunicorn, waitress,
  uWSGI (pip-installed there if missing; it is in the project's test extra);
- bench/.peers-venv: Flask-SocketIO 5.7.0 with eventlet, gevent,
  gevent-websocket, gunicorn, and matplotlib for the plots; the peers are
  never installed into the project venv;
- bench/node: socket.io 4 and socket.io-client from the committed
  package-lock.json (``npm ci``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
APPS = BENCH / "apps"
NODE_DIR = BENCH / "node"
PROJECT_VENV = ROOT / ".venv"
PROJECT_PY = PROJECT_VENV / "bin" / "python"
PEERS_VENV = BENCH / ".peers-venv"
PEERS_PY = PEERS_VENV / "bin" / "python"

PEER_REQUIREMENTS = ["flask-socketio==5.7.0", "eventlet", "gevent", "gevent-websocket",
                     "gunicorn", "matplotlib", "python-socketio[asyncio_client]"]
_PEER_CHECK = ("import importlib.metadata as m, flask_socketio, eventlet, gevent, geventwebsocket, "
               "gunicorn, matplotlib, aiohttp; "
               "assert m.version('flask-socketio') == '5.7.0', m.version('flask-socketio')")


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], check=True, **kw)


def _ok(argv: list[str]) -> bool:
    return subprocess.run([str(a) for a in argv], capture_output=True).returncode == 0


def ensure_project() -> None:
    if not PROJECT_PY.exists():
        sys.exit(f"bench: the project venv {PROJECT_VENV} is missing; run scripts/bootstrap test")
    if not (PROJECT_VENV / "bin" / "uwsgi").exists():
        print("bench: installing uwsgi into the project venv (the project's test extra)", flush=True)
        _run([PROJECT_PY, "-m", "pip", "install", "-q", "uwsgi>=2.0.28"])


def ensure_peers() -> None:
    if not PEERS_PY.exists():
        print(f"bench: creating {PEERS_VENV}", flush=True)
        _run([PROJECT_PY, "-m", "venv", PEERS_VENV])
    if not _ok([PEERS_PY, "-c", _PEER_CHECK]):
        print("bench: installing the peers into bench/.peers-venv: " + " ".join(PEER_REQUIREMENTS),
              flush=True)
        _run([PEERS_PY, "-m", "pip", "install", "-q", "--upgrade", "pip"])
        _run([PEERS_PY, "-m", "pip", "install", "-q", *PEER_REQUIREMENTS])


def ensure_node() -> None:
    marker = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        print("bench: npm ci in bench/node", flush=True)
        _run(["npm", "ci", "--prefix", NODE_DIR, "--no-audit", "--no-fund", "--loglevel=error"])


def ensure_all() -> None:
    ensure_project()
    ensure_peers()
    ensure_node()


def calibrate_cpu_iterations() -> int:
    """Iterations of burn.py's loop that take 50 ms on core 0, with the project's Python."""
    out = subprocess.run(["taskset", "-c", "0", str(PROJECT_PY), str(APPS / "burn.py"),
                          "--calibrate"], check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def calibrate_js_iterations() -> int:
    """The same for the Node server's loop (bench/node/server.js --calibrate)."""
    out = subprocess.run(["taskset", "-c", "0", "node", "server.js", "--calibrate"], cwd=NODE_DIR,
                         check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def versions() -> dict[str, str]:
    """Versions of everything measured, for the results file."""
    code = ("import importlib.metadata as m, json, sys; out = {'python': sys.version.split()[0]}\n"
            "for d in sys.argv[1:]:\n"
            "    try: out[d] = m.version(d)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))")
    ours = json.loads(subprocess.run(
        [str(PROJECT_PY), "-c", code, "server", "python-socketio", "python-engineio",
         "simple-websocket", "gunicorn", "uwsgi", "waitress", "flask"],
        check=True, capture_output=True, text=True).stdout)
    peers = json.loads(subprocess.run(
        [str(PEERS_PY), "-c", code, "flask-socketio", "python-socketio", "python-engineio",
         "eventlet", "gevent", "gevent-websocket", "gunicorn", "simple-websocket", "flask"],
        check=True, capture_output=True, text=True).stdout)
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())["packages"]
    node = {"node": subprocess.run(["node", "--version"], capture_output=True,
                                   text=True).stdout.strip(),
            "socket.io": lock["node_modules/socket.io"]["version"],
            "socket.io-client": lock["node_modules/socket.io-client"]["version"]}
    return {"ours": ours, "peers": peers, "node": node, "cpus": str(os.cpu_count()),
            "tree": tree_state()}


def tree_state() -> str:
    """The commit measured, and whether server/ had uncommitted changes (shared tree)."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "server"],
                           capture_output=True, text=True).stdout.split("\n")
    dirty = [ln[3:] for ln in dirty if ln.strip()]
    return head + (f" + uncommitted {', '.join(dirty)}" if dirty else "")
