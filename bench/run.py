"""Comparative benchmark: this server vs Flask-SocketIO 5.7.0 vs Node socket.io 4.

    python bench/run.py [--quick] [--reps N] [--only NAME,...] [--workloads KEY,...]

Sets up its own environments (see envs.py), then for each repetition runs
every server in turn (A B C … A B C …), each freshly started on a free
loopback port pinned to core 0, through every workload (workloads.py,
driven by bench/node/load.js on core 1).  Writes bench/results/<name>.md and
.json (medians and per-run ratios to Flask-SocketIO + eventlet) and, with
matplotlib from bench/.peers-venv, PNG plots to docs/_static/perf/.
Everything is bounded: client counts by the workload table, time by
--max-minutes and per-run time limits.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import envs  # noqa: E402
import report  # noqa: E402
from servers import SERVERS, RunningServer, pinned  # noqa: E402
from workloads import LOADGEN_CORE, run_load, workloads  # noqa: E402

RESULTS = envs.BENCH / "results"
PLOTS = envs.ROOT / "docs" / "_static" / "perf"


def _csv(choices: list[str]):
    def parse(text: str) -> list[str]:
        items = [x.strip() for x in text.split(",") if x.strip()]
        bad = [x for x in items if x not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"unknown name(s) {', '.join(bad) or '(none given)'}; choose from: {', '.join(choices)}")
        return items
    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    wl_keys = [w.key for w in workloads(False, 1)]
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="1 repetition, 2 s windows, 500-connection cap (under ~5 minutes)")
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 3, --quick 1)")
    p.add_argument("--capacity", type=int, default=None,
                   help="connection cap of the capacity workload (default 2000, --quick 500)")
    p.add_argument("--only", type=_csv(list(SERVERS)),
                   default=[n for n, s in SERVERS.items() if not s.extra],
                   help="comma-separated servers: " + ", ".join(SERVERS) + "; by default "
                   "all but " + ", ".join(n for n, s in SERVERS.items() if s.extra))
    p.add_argument("--workloads", type=_csv(wl_keys), default=wl_keys,
                   help="comma-separated workloads: " + ", ".join(wl_keys))
    p.add_argument("--name", default="latest", help="results file name (default: latest)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--no-loadgen-compare", action="store_true",
                   help="skip timing the Node load generator against python-socketio's "
                        "AsyncClient (always skipped with --quick)")
    p.add_argument("--skip-setup", action="store_true", help="trust the environments as they are")
    p.add_argument("--nice", type=int, default=-10 if os.geteuid() == 0 else 0,
                   help="priority of the server and the load generator (default -10 as root, "
                        "else 0): on a shared machine the scheduler splits a core per thread, "
                        "so without it a 100-thread server wins CPU from other work that a "
                        "one-thread event loop cannot")
    p.add_argument("--max-minutes", type=float, default=60.0,
                   help="stop starting new runs after this long (default 60)")
    a = p.parse_args(argv)
    if a.reps is None:
        a.reps = 1 if a.quick else 3
    if a.capacity is None:
        a.capacity = 500 if a.quick else 2000
    if a.reps < 1 or not 1 <= a.capacity <= 10_000:
        p.error(f"--reps must be >= 1 (got {a.reps}) and --capacity 1..10000 (got {a.capacity})")
    return a


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def compare_loadgens(cpu_iters: dict, quick: bool, nice: int) -> dict:
    """echo/100 clients against the Node server: Node load.js vs python-socketio AsyncClient."""
    cfg = {"workload": "echo", "clients": 100, "warmup_ms": 500 if quick else 1000,
           "duration_ms": 2000 if quick else 5000}
    out = {}
    srv = RunningServer(SERVERS["node"], cpu_iters, RESULTS / "logs" / "loadgen-node.log", nice)
    try:
        srv.wait_ready()
        out["Node, socket.io-client (one process)"] = run_load(srv.url, srv.pids, cfg, nice=nice)
        py = subprocess.run([*pinned(LOADGEN_CORE, nice), str(envs.PEERS_PY), str(envs.BENCH / "pyload.py"),
                             json.dumps({**cfg, "url": srv.url, "pids": srv.pids})],
                            capture_output=True, text=True, timeout=120)
        lines = [ln for ln in py.stdout.splitlines() if ln.startswith("{")]
        out["Python asyncio, python-socketio AsyncClient (one process)"] = (
            json.loads(lines[-1]) if lines else {"error": py.stderr[-300:]})
    finally:
        srv.stop()
    return out


#: seconds the health probe goes on after the capacity workload has closed its clients
PROBE_AFTER_S = 3.0


class HealthProbe:
    """GETs a health URL every 100 ms on a fresh connection until stop().

    Runs in this process (not the load generator's, whose event loop is busy
    opening thousands of sockets), so the latency is the server's answer time.
    """

    def __init__(self, url: str, nice: int = 0, interval: float = 0.1,
                 timeout: float = 5.0) -> None:
        self.url, self.nice, self.interval, self.timeout = url, nice, interval, timeout
        self.times_ms: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self.nice:
            # the server and the load generator run at this priority: a probe
            # below it would measure its own wait for a core, not the server
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        while not self._stop.wait(self.interval):
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=self.timeout) as r:
                    r.read()
                self.times_ms.append((time.perf_counter() - started) * 1000)
            except (OSError, ValueError):
                self.failures += 1

    def stop(self, after: float = 0.0) -> dict:
        """Probe ``after`` seconds more (the workload's clients are leaving), then stop."""
        self._stop.wait(after)
        self._stop.set()
        self._thread.join(self.timeout + 1)
        t = sorted(self.times_ms)
        return {"health_probes": len(t), "health_failures": self.failures,
                "health_ms": [round(x, 1) for x in self.times_ms],
                "health_max_ms": round(t[-1], 1) if t else None,
                "health_p99_ms": round(t[min(len(t) - 1, int(len(t) * 0.99))], 1) if t else None}


def write_results(args: argparse.Namespace, meta: dict, runs: list[dict], wls: list[str],
                  final: bool) -> None:
    """Rewrite the results files (after every server run, so a stopped run keeps its data)."""
    meta["finished"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta["loadavg_after"] = _loadavg()
    meta["complete"] = final
    summ = report.summary(runs, args.only, wls)
    (RESULTS / f"{args.name}.json").write_text(
        json.dumps({"meta": meta, "summary": summ, "runs": runs}, indent=1))
    md = report.markdown(meta, summ, args.only, wls)
    (RESULTS / f"{args.name}.md").write_text(md)
    if final:
        print(md)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.monotonic()
    (RESULTS / "logs").mkdir(parents=True, exist_ok=True)
    if not args.skip_setup:
        envs.ensure_all()
    cpu_iters = {"python": envs.calibrate_cpu_iterations(), "node": envs.calibrate_js_iterations()}
    wls = [w for w in workloads(args.quick, args.capacity) if w.key in args.workloads]
    meta = {"mode": "quick" if args.quick else "full", "reps": args.reps,
            "capacity": args.capacity, "cpu_iters": cpu_iters, "nice": args.nice,
            "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "loadavg_before": _loadavg(), "versions": envs.versions(),
            "loadgen": "Node, socket.io-client, one process",
            "workloads": {w.key: {"title": w.title, "unit": w.unit, "better": w.better,
                                  "config": w.config} for w in wls}}
    print(f"bench: cpu handler = {cpu_iters} iterations, nice {args.nice}; {args.reps} rep(s) × "
          f"{len(args.only)} servers × {len(wls)} workloads", flush=True)
    if not (args.quick or args.no_loadgen_compare):
        meta["loadgen_comparison"] = compare_loadgens(cpu_iters, args.quick, args.nice)
        print(f"bench: load generators: {json.dumps(meta['loadgen_comparison'])}", flush=True)
    runs: list[dict] = []
    for rep in range(args.reps):
        for name in args.only:
            if time.monotonic() - t_start > args.max_minutes * 60:
                print(f"bench: --max-minutes {args.max_minutes} reached; stopping", flush=True)
                break
            srv = RunningServer(SERVERS[name], cpu_iters, RESULTS / "logs" / f"{name}-{rep}.log",
                                args.nice)
            try:
                srv.wait_ready()
                for w in wls:
                    probe = HealthProbe(srv.url + srv.spec.health, args.nice) if w.key == "capacity" else None
                    res = run_load(srv.url, srv.pids, w.config, nice=args.nice)
                    if probe is not None:
                        # thousands of clients leaving at once is part of the run
                        res.update(probe.stop(after=PROBE_AFTER_S))
                    runs.append({"rep": rep, "server": name, "workload": w.key, "result": res})
                    shown = res.get("error") or f"{res['value']:,.1f} {res['unit']}"
                    print(f"  rep {rep + 1} {name:14s} {w.key:13s} {shown}", flush=True)
            except RuntimeError as e:
                for w in wls:
                    runs.append({"rep": rep, "server": name, "workload": w.key,
                                 "result": {"error": str(e)}})
                print(f"  rep {rep + 1} {name}: {e}", flush=True)
            finally:
                srv.stop()
            write_results(args, meta, runs, [w.key for w in wls], final=False)
    write_results(args, meta, runs, [w.key for w in wls], final=True)
    if not args.no_plots:
        PLOTS.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(envs.PEERS_PY), str(envs.BENCH / "plots.py"),
                        str(RESULTS / f"{args.name}.json"), str(PLOTS)], check=False)
    print(f"bench: wrote {RESULTS / (args.name + '.md')} in {time.monotonic() - t_start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
