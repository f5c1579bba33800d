"""Medians, per-run ratios to Flask-SocketIO + eventlet, and the Markdown report."""
from __future__ import annotations

import statistics
from typing import Any

from servers import BASELINE, SERVERS

TARGETS_NOTE = ("Targets (from the issue): echo at 100 clients >= 1.0x Flask-SocketIO+eventlet "
                "on gunicorn and on uWSGI; broadcast >= 1.0x; light-client p99 under CPU load "
                "<= 0.25x eventlet's and Node's; >= 5,000 concurrent WebSocket clients in one "
                "process at <= 60 KB RSS each.")


def _values(runs: list[dict], server: str, wl: str, key: str = "value") -> dict[int, float]:
    return {r["rep"]: r["result"][key] for r in runs
            if r["server"] == server and r["workload"] == wl
            and "error" not in r["result"] and r["result"].get(key) is not None}


def median(runs: list[dict], server: str, wl: str, key: str = "value") -> float | None:
    vals = list(_values(runs, server, wl, key).values())
    return statistics.median(vals) if vals else None


def ratios(runs: list[dict], server: str, wl: str, to: str = BASELINE) -> list[float]:
    """Per-rep ratio of ``server`` to ``to`` (same rep, so the same machine noise)."""
    a, b = _values(runs, server, wl), _values(runs, to, wl)
    return [a[r] / b[r] for r in sorted(a) if r in b and b[r]]


def summary(runs: list[dict], servers: list[str], wls: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in servers:
        out[s] = {}
        for w in wls:
            rs = ratios(runs, s, w)
            out[s][w] = {"median": median(runs, s, w), "ratios": rs,
                         "ratio_median": statistics.median(rs) if rs else None,
                         "server_cpu_pct": median(runs, s, w, "server_cpu_pct"),
                         "loadgen_cpu_pct": median(runs, s, w, "loadgen_cpu_pct"),
                         "p50_ms": median(runs, s, w, "p50_ms"),
                         "p99_ms": median(runs, s, w, "p99_ms"),
                         "errors": [r["result"]["error"] for r in runs
                                    if r["server"] == s and r["workload"] == w
                                    and "error" in r["result"]]}
            if w == "fairness":
                out[s][w]["cpu_calls_per_s"] = median(runs, s, w, "cpu_calls_per_s")
                out[s][w]["ratios_to_node"] = ratios(runs, s, w, "node")
            if w == "capacity":
                for k in ("connected", "kb_per_conn", "peak_threads", "peak_rss_kb",
                          "base_rss_kb", "connect_seconds", "health_max_ms", "health_p99_ms",
                          "health_failures"):
                    out[s][w][k] = median(runs, s, w, k)
    return out


def _f(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "—"
    return f"{v:,.{digits}f}"


def _r(rs: list[float]) -> str:
    if not rs:
        return "—"
    return f"**{statistics.median(rs):.2f}x** ({', '.join(f'{x:.2f}' for x in rs)})"


def markdown(meta: dict, summ: dict, servers: list[str], wls: list[str]) -> str:
    L = [f"# Benchmark results ({meta['mode']})", "",
         *([] if meta.get("complete", True) else ["**Incomplete: the run was still going or was "
                                                  "stopped; figures so far.**", ""]),
         f"{meta['started']} → {meta['finished']}, {meta['reps']} interleaved repetitions "
         f"(A B C … A B C …), medians. Machine: {meta['versions']['cpus']} cores, load average "
         f"before {meta['loadavg_before']}, after {meta['loadavg_after']} (shared and noisy: "
         "read the ratios, which compare runs made seconds apart, rather than the absolutes). "
         f"Server pinned to core 0, load generator ({meta['loadgen']}) to core 1. CPU handler: "
         f"{meta['cpu_iters']['python']:,} Python / {meta['cpu_iters']['node']:,} JavaScript loop "
         f"iterations (each 50 ms, calibrated once on core 0). Priority: nice {meta.get('nice', 0)}. "
         f"Tree measured: {meta['versions'].get('tree', '?')}.",
         ""]
    g = lambda s, w, k="median": summ[s].get(w, {}).get(k)  # noqa: E731
    L += ["## Medians", "",
          "| server | echo 10 clients (rt/s) | echo 100 clients (rt/s) | broadcast 100 (deliveries/s) "
          "| light p50 / p99 under CPU load (ms) | CPU handler calls/s | connections answering / open "
          "| RSS per connection (KB) | threads at peak | health max during capacity (ms) |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in servers:
        L.append(f"| {SERVERS[s].label} | {_f(g(s, 'echo10'))} | {_f(g(s, 'echo100'))} "
                 f"| {_f(g(s, 'broadcast100'))} "
                 f"| {_f(g(s, 'fairness', 'p50_ms'), 1)} / {_f(g(s, 'fairness', 'p99_ms'), 1)} "
                 f"| {_f(g(s, 'fairness', 'cpu_calls_per_s'), 1)} "
                 f"| {_f(g(s, 'capacity'))} / {_f(g(s, 'capacity', 'connected'))} "
                 f"| {_f(g(s, 'capacity', 'kb_per_conn'), 1)} "
                 f"| {_f(g(s, 'capacity', 'peak_threads'))} "
                 f"| {_f(g(s, 'capacity', 'health_max_ms'), 1)} |")
    L += ["", "## Ratios to Flask-SocketIO + eventlet", "",
          "Median of the per-run ratios (each run divided by the eventlet run of the same "
          "repetition), per-run ratios in brackets. Above 1 is better except for light p99, "
          "where below 1 is better.", "",
          "| server | echo 10 | echo 100 | broadcast 100 | light p99 (lower wins) "
          "| light p99 vs Node | connections |",
          "|---|---|---|---|---|---|---|"]
    for s in servers:
        L.append(f"| {SERVERS[s].label} | {_r(g(s, 'echo10', 'ratios'))} "
                 f"| {_r(g(s, 'echo100', 'ratios'))} | {_r(g(s, 'broadcast100', 'ratios'))} "
                 f"| {_r(g(s, 'fairness', 'ratios'))} | {_r(g(s, 'fairness', 'ratios_to_node'))} "
                 f"| {_r(g(s, 'capacity', 'ratios'))} |")
    L += ["", "## CPU use (median %, server / load generator)", "",
          "A load generator near 100% would mean it, not the server, is the bottleneck.", "",
          "| server | echo 10 | echo 100 | broadcast 100 | CPU-load fairness |",
          "|---|---|---|---|---|"]
    for s in servers:
        cells = [f"{_f(g(s, w, 'server_cpu_pct'))} / {_f(g(s, w, 'loadgen_cpu_pct'))}"
                 for w in ("echo10", "echo100", "broadcast100", "fairness")]
        L.append(f"| {SERVERS[s].label} | " + " | ".join(cells) + " |")
    L += ["", "## Targets", "", TARGETS_NOTE, "", "| target | measured | met |", "|---|---|---|"]
    L += _targets(summ, meta)
    errs = [(s, w, e) for s in servers for w in wls for e in summ[s].get(w, {}).get("errors", [])]
    if errs:
        L += ["", "## Runs that failed", "", "| server | workload | error |", "|---|---|---|"]
        L += [f"| {SERVERS[s].label} | {w} | {e.replace('|', '/')[:200]} |" for s, w, e in errs]
    if meta.get("loadgen_comparison"):
        L += ["", "## Load generators compared", "",
              "echo, 100 clients, against the Node server; same core, same duration.", "",
              "| load generator | round-trips/s | load generator CPU% | server CPU% |",
              "|---|---:|---:|---:|"]
        for name, res in meta["loadgen_comparison"].items():
            L.append(f"| {name} | {_f(res.get('value'))} | {_f(res.get('loadgen_cpu_pct'))} "
                     f"| {_f(res.get('server_cpu_pct'))} |" if "error" not in res
                     else f"| {name} | error: {res['error'][:120]} | | |")
    L += ["", "Versions: " + "; ".join(f"{k}: " + ", ".join(f"{a} {b}" for a, b in v.items())
                                       if isinstance(v, dict) else f"{k}: {v}"
                                       for k, v in meta["versions"].items()), ""]
    return "\n".join(L)


def _targets(summ: dict, meta: dict) -> list[str]:
    def row(label: str, rs: list[float] | None, ok) -> str:
        if not rs:
            return f"| {label} | not measured | — |"
        m = statistics.median(rs)
        return f"| {label} | {_r(rs)} | {'yes' if ok(m) else '**no**'} |"
    out = []
    for s, name in (("ours-gunicorn", "gunicorn"), ("ours-uwsgi", "uWSGI"),
                    ("ours-waitress", "waitress")):
        if s in summ:
            out.append(row(f"echo 100 clients on {name} >= 1.0x eventlet",
                           summ[s].get("echo100", {}).get("ratios"), lambda m: m >= 1.0))
    for s, name in (("ours-gunicorn", "gunicorn"), ("ours-uwsgi", "uWSGI"),
                    ("ours-waitress", "waitress")):
        if s in summ:
            out.append(row(f"broadcast on {name} >= 1.0x eventlet",
                           summ[s].get("broadcast100", {}).get("ratios"), lambda m: m >= 1.0))
    for s, name in (("ours-gunicorn", "gunicorn"), ("ours-uwsgi", "uWSGI"),
                    ("ours-waitress", "waitress")):
        if s in summ:
            f = summ[s].get("fairness", {})
            out.append(row(f"light p99 on {name} <= 0.25x eventlet's", f.get("ratios"),
                           lambda m: m <= 0.25))
            out.append(row(f"light p99 on {name} <= 0.25x Node's", f.get("ratios_to_node"),
                           lambda m: m <= 0.25))
    for s in ("ours-gunicorn", "ours-uwsgi", "ours-waitress"):
        c = summ.get(s, {}).get("capacity")
        if not c or c.get("connected") is None:
            continue
        n, kb = c["median"] or 0, c["kb_per_conn"]
        health, failed = c.get("health_max_ms"), c.get("health_failures")
        ok = (n >= 5000 and kb is not None and kb <= 60 and health is not None
              and health < 50 and not failed)
        note = "" if meta["capacity"] >= 5000 else f" (cap {meta['capacity']} in this run)"
        out.append(f"| 5,000 clients at <= 60 KB each, health < 50 ms, {SERVERS[s].label} "
                   f"| {_f(n)} clients answering, {_f(kb, 1)} KB each, health max "
                   f"{_f(health, 1)} ms ({_f(failed)} failed){note} | {'yes' if ok else '**no**'} |")
    return out
