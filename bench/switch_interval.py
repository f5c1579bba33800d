"""Light-client latency under CPU-bound handlers, per interpreter switch interval.

Not a test (pytest does not collect bench/).  For each switch interval, starts
gunicorn (gthread, one worker, the benchmark app bench/apps/ours_app.py) with
``SERVER_SWITCH_INTERVAL`` set, pinned to core 0; from this process (pinned to
core 1) four python-socketio clients call the 50 ms ``cpu`` handler back to
back while one light client sends acked ``echo`` events one after another.
Reports the light client's round-trip p50/p99 and the CPU handler calls per
second.  Runs are interleaved (A B C, B C A, …) and summarised by medians, since
the machine is shared and noisy.  Bounded: ``--rounds`` × intervals runs of
``--seconds`` each.

    python bench/switch_interval.py --rounds 3 --seconds 4
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import socketio

ROOT = pathlib.Path(__file__).resolve().parent.parent
APPS = ROOT / "bench" / "apps"
INTERVALS = (0.005, 0.001, 0.0005)
CPU_CLIENTS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def calibrate() -> int:
    out = subprocess.run(_pinned(0) + [sys.executable, "burn.py", "--calibrate"], cwd=APPS,
                         check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def _pinned(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") else []


def start_server(interval: float, iters: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, SERVER_SWITCH_INTERVAL=str(interval), BENCH_CPU_ITERS=str(iters),
               PYTHONPATH=str(ROOT))
    gunicorn = str(pathlib.Path(sys.executable).with_name("gunicorn"))
    proc = subprocess.Popen(
        _pinned(0) + [gunicorn, "-w", "1", "--threads", "16", "-b", f"127.0.0.1:{port}",
                      "--log-level", "warning", "ours_app:app"],
        cwd=APPS, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError(f"gunicorn did not answer /healthz within 30 s (switch interval {interval})")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)  # by its own PID
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def measure(url: str, seconds: float) -> dict:
    clients = [socketio.Client(reconnection=False) for _ in range(CPU_CLIENTS + 1)]
    for client in clients:
        client.connect(url, transports=["websocket"], wait_timeout=10)
    stop = threading.Event()
    cpu_calls = [0] * CPU_CLIENTS

    def cpu_loop(k: int) -> None:
        while not stop.is_set():
            clients[k].call("cpu", k, timeout=30)
            cpu_calls[k] += 1

    threads = [threading.Thread(target=cpu_loop, args=(k,)) for k in range(CPU_CLIENTS)]
    for thread in threads:
        thread.start()
    light = clients[-1]
    time.sleep(0.5)  # warm-up: every CPU client has a handler running
    start_calls = sum(cpu_calls)
    rtts = []
    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        sent = time.perf_counter()
        light.call("echo", len(rtts), timeout=30)
        rtts.append((time.perf_counter() - sent) * 1000)
    elapsed = time.monotonic() - t0
    calls = sum(cpu_calls) - start_calls
    stop.set()
    for thread in threads:
        thread.join(30)
    for client in clients:
        client.disconnect()
    rtts.sort()
    return {"p50": rtts[len(rtts) // 2], "p99": rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))],
            "n": len(rtts), "cpu_per_s": calls / elapsed}


def measure_echo(url: str, seconds: float, clients_n: int = 10) -> dict:
    """No CPU handler: acked echoes from ``clients_n`` clients, back to back (round trips/s)."""
    clients = [socketio.Client(reconnection=False) for _ in range(clients_n)]
    for client in clients:
        client.connect(url, transports=["websocket"], wait_timeout=10)
    counts = [0] * clients_n
    end = time.monotonic() + seconds

    def loop(k: int) -> None:
        while time.monotonic() < end:
            clients[k].call("echo", k, timeout=30)
            counts[k] += 1

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(clients_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    for client in clients:
        client.disconnect()
    return {"echo_per_s": sum(counts) / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--echo", action="store_true",
                        help="instead: echo round trips/s of 10 clients, no CPU handler")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and shutil.which("taskset"):
        os.sched_setaffinity(0, {1})  # the clients: the other core
    iters = calibrate()
    print(f"CPU handler: {iters} iterations (50 ms on core 0); load {os.getloadavg()}",
          flush=True)
    results: dict[float, list[dict]] = {i: [] for i in INTERVALS}
    for r in range(args.rounds):
        order = INTERVALS[r % len(INTERVALS):] + INTERVALS[:r % len(INTERVALS)]
        for interval in order:
            proc, url = start_server(interval, iters)
            try:
                figures = (measure_echo if args.echo else measure)(url, args.seconds)
            finally:
                stop_server(proc)
            results[interval].append(figures)
            if args.echo:
                print(f"round {r + 1} switch {interval * 1000:g} ms: echo "
                      f"{figures['echo_per_s']:.0f} round trips/s", flush=True)
                continue
            print(f"round {r + 1} switch {interval * 1000:g} ms: light p50 "
                  f"{figures['p50']:.1f} ms p99 {figures['p99']:.1f} ms "
                  f"({figures['n']} round trips), CPU handler {figures['cpu_per_s']:.1f}/s",
                  flush=True)
    print(f"\nload after: {os.getloadavg()}\n")
    if args.echo:
        print("| switch interval | echo round trips/s, 10 clients |\n|---|---:|")
        for interval, runs in results.items():
            per = ", ".join(f"{run['echo_per_s']:.0f}" for run in runs)
            print(f"| {interval * 1000:g} ms | "
                  f"{statistics.median(r['echo_per_s'] for r in runs):.0f} ({per}) |")
        return 0
    print("| switch interval | light p50 (ms) | light p99 (ms) | CPU handler calls/s |")
    print("|---|---:|---:|---:|")
    for interval, runs in results.items():
        med = {k: statistics.median(run[k] for run in runs) for k in ("p50", "p99", "cpu_per_s")}
        per = ", ".join(f"{run['p99']:.0f}" for run in runs)
        print(f"| {interval * 1000:g} ms | {med['p50']:.1f} | {med['p99']:.1f} ({per}) | "
              f"{med['cpu_per_s']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
