"""The alternative load generator, to compare with bench/node/load.js: the echo
workload driven by python-socketio's AsyncClient, all clients in one asyncio
process.  Runs in bench/.peers-venv (aiohttp).  Same JSON in and out as load.js.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import socketio


def _ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total


async def echo(cfg: dict) -> dict:
    clients = [socketio.AsyncClient(reconnection=False) for _ in range(cfg["clients"])]
    await asyncio.wait_for(asyncio.gather(*(c.connect(cfg["url"], transports=["websocket"])
                                            for c in clients)), 60)
    counts = {"acks": 0}
    running = True

    async def loop(c: socketio.AsyncClient) -> None:
        while running:
            await c.call("echo", {"p": "x" * 32}, timeout=10)
            counts["acks"] += 1

    tasks = [asyncio.create_task(loop(c)) for c in clients]
    await asyncio.sleep(cfg["warmup_ms"] / 1000)
    a, t0, s0 = counts["acks"], time.perf_counter(), os.times()
    k0 = _ticks(cfg["pids"])
    await asyncio.sleep(cfg["duration_ms"] / 1000)
    b, t1, s1 = counts["acks"], time.perf_counter(), os.times()
    k1 = _ticks(cfg["pids"])
    running = False
    await asyncio.wait(tasks, timeout=10)
    await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
    wall = t1 - t0
    return {"workload": "echo", "value": (b - a) / wall, "unit": "round-trips/s",
            "loadgen_cpu_pct": 100 * (s1.user - s0.user + s1.system - s0.system) / wall,
            "server_cpu_pct": 100 * (k1 - k0) / os.sysconf("SC_CLK_TCK") / wall,
            "seconds": wall}


if __name__ == "__main__":
    config = json.loads(sys.argv[1])
    print(json.dumps(asyncio.run(asyncio.wait_for(echo(config), 110))))
