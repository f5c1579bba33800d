"""The workloads: a table of load-generator configurations, run by
bench/node/load.js pinned to core 1 (the server has core 0).

Each workload reports one headline ``value`` (see ``unit``; ``better`` says
which direction wins) plus the server's and the load generator's CPU%.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

from envs import NODE_DIR
from servers import pinned

LOADGEN_CORE = "1"


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    unit: str
    better: str  # "higher" or "lower"
    config: dict


def workloads(quick: bool, capacity: int) -> list[Workload]:
    warm, dur = (500, 2000) if quick else (1000, 5000)
    return [
        Workload("echo10", "echo, 10 clients", "round-trips/s", "higher",
                 {"workload": "echo", "clients": 10, "warmup_ms": warm, "duration_ms": dur}),
        Workload("echo100", "echo, 100 clients", "round-trips/s", "higher",
                 {"workload": "echo", "clients": 100, "warmup_ms": warm, "duration_ms": dur}),
        Workload("broadcast100", "broadcast, 100 clients", "deliveries/s", "higher",
                 {"workload": "broadcast", "clients": 100, "window": 8, "warmup_ms": warm,
                  "duration_ms": dur}),
        Workload("fairness", "light p99 under CPU load (4 CPU + 20 light)", "ms", "lower",
                 {"workload": "fairness", "cpu_clients": 4, "light_clients": 20,
                  "light_interval_ms": 20, "warmup_ms": warm,
                  "duration_ms": 3000 if quick else 8000}),
        Workload("capacity", f"connections (cap {capacity})", "clients answering", "higher",
                 {"workload": "capacity", "clients": capacity, "warmup_ms": 300,
                  "connect_bound_ms": 45000 if quick else 90000}),
    ]


def run_load(url: str, pids: list[int], config: dict, max_seconds: int = 150,
             nice: int = 0) -> dict:
    """Run one workload against ``url``; the load generator's JSON result."""
    cfg = {**config, "url": url, "pids": pids, "clk_tck": os.sysconf("SC_CLK_TCK"),
           "max_seconds": max_seconds}
    try:
        out = subprocess.run([*pinned(LOADGEN_CORE, nice), "node", "load.js", json.dumps(cfg)],
                             cwd=NODE_DIR, capture_output=True, text=True,
                             timeout=max_seconds + 15)
    except subprocess.TimeoutExpired:
        return {"error": f"load generator still running after {max_seconds + 15}s"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"error": f"load generator exit {out.returncode}: {out.stderr[-500:]}"}
    return json.loads(lines[-1])
