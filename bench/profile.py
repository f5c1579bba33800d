"""Where the time goes: py-spy samples one server's worker while a workload runs.

    python bench/profile.py [--server ours-gunicorn] [--workload echo100] [--seconds 5]

Uses py-spy from bench/.peers-venv (installed there if missing; it needs to
ptrace the worker, so run as root or with CAP_SYS_PTRACE).  Writes the top
functions by own time and by inclusive time to
bench/results/profile-<server>-<workload>.md.  Only CPU-active samples count
(--gil: samples of the thread holding the GIL, i.e. Python work).
"""
from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import envs  # noqa: E402
from servers import SERVERS, RunningServer  # noqa: E402
from workloads import run_load, workloads  # noqa: E402

RESULTS = envs.BENCH / "results"


def summarise(raw: Path, top: int = 25) -> tuple[int, list, list]:
    own: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        total += int(n)
        own[frames[-1]] += int(n)
        for f in set(frames):
            incl[f] += int(n)
    return total, own.most_common(top), incl.most_common(top)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--server", choices=list(SERVERS), default="ours-gunicorn")
    p.add_argument("--workload", choices=[w.key for w in workloads(False, 1)], default="echo100")
    p.add_argument("--seconds", type=int, default=5)
    a = p.parse_args()
    spy = envs.PEERS_VENV / "bin" / "py-spy"
    if not spy.exists():
        subprocess.run([str(envs.PEERS_PY), "-m", "pip", "install", "-q", "py-spy"], check=True)
    wl = next(w for w in workloads(False, 2000) if w.key == a.workload)
    cfg = {**wl.config, "warmup_ms": 1000, "duration_ms": (a.seconds + 2) * 1000}
    RESULTS.mkdir(exist_ok=True)
    raw = RESULTS / "logs" / f"profile-{a.server}-{a.workload}.txt"
    raw.parent.mkdir(exist_ok=True)
    iters = {"python": envs.calibrate_cpu_iterations(), "node": envs.calibrate_js_iterations()}
    srv = RunningServer(SERVERS[a.server], iters, RESULTS / "logs" / f"profile-{a.server}.log",
                        nice=-10 if os.geteuid() == 0 else 0)
    result: dict = {}
    try:
        srv.wait_ready()
        worker = srv.pids[-1]  # gunicorn/uWSGI: the forked worker; others: the server itself
        load = threading.Thread(target=lambda: result.update(
            run_load(srv.url, srv.pids, cfg, nice=srv.nice)))
        load.start()
        threading.Event().wait(1.5)
        subprocess.run([str(spy), "record", "--pid", str(worker), "--duration", str(a.seconds),
                        "--rate", "200", "--format", "raw", "--nonblocking", "--gil", "--output", str(raw)],
                       check=True, capture_output=True, timeout=a.seconds + 30)
        load.join(a.seconds + 60)
    finally:
        srv.stop()
    total, own, incl = summarise(raw)
    lines = [f"# Profile: {SERVERS[a.server].label}, {wl.title}", "",
             f"py-spy, 200 Hz, {a.seconds} s, samples of the thread holding the GIL only "
             f"(--gil): {total}. Workload result "
             f"during sampling: {result.get('value', 0):,.0f} {result.get('unit', '')} "
             f"(slowed by the sampler).", "",
             "## Own time (top functions)", "", "| % | function (file) |", "|---:|---|"]
    lines += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in own]
    lines += ["", "## Inclusive time", "", "| % | function (file) |", "|---:|---|"]
    lines += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in incl]
    out = RESULTS / f"profile-{a.server}-{a.workload}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
