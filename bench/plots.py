"""PNG plots of a results JSON (bench/run.py): one bar chart per workload, medians.

Runs in bench/.peers-venv, where run.py installs matplotlib.
Usage: python plots.py RESULTS.json OUTDIR
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {"ours-gunicorn": "server\ngunicorn", "ours-uwsgi": "server\nuWSGI",
          "ours-waitress": "server\nwaitress", "ours-waitress-serve": "server\nwaitress-serve",
          "fsio-eventlet": "F-SIO\neventlet",
          "fsio-gevent": "F-SIO\ngevent", "fsio-gunicorn": "F-SIO\ngunicorn",
          "node": "Node\nsocket.io"}
PANELS = [("echo10", "median", "echo, 10 clients (round-trips/s)"),
          ("echo100", "median", "echo, 100 clients (round-trips/s)"),
          ("broadcast100", "median", "broadcast, 100 clients (deliveries/s)"),
          ("fairness", "p99_ms", "light-client p99 under CPU load (ms, lower wins)"),
          ("capacity", "median", "WebSocket clients answering (capped; n/a: the server died)"),
          ("capacity", "kb_per_conn", "RSS per connection (KB, lower wins)")]


def main(path: str, outdir: str) -> None:
    data = json.loads(Path(path).read_text())
    summ, meta = data["summary"], data["meta"]
    servers = list(summ)
    panels = [p for p in PANELS if any(p[0] in summ[s] for s in servers)]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)))
    for ax, (wl, key, title) in zip(list(axes) if len(panels) > 1 else [axes], panels):
        raw = [summ[s].get(wl, {}).get(key) for s in servers]
        vals = [v or 0 for v in raw]
        colors = ["tab:blue" if s.startswith("ours") else "tab:gray" if s != "node"
                  else "tab:green" for s in servers]
        ax.bar([LABELS.get(s, s) for s in servers], vals, color=colors)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        for i, (v, r) in enumerate(zip(vals, raw)):
            text = "n/a" if r is None else f"{v:,.0f}" if v >= 10 else f"{v:.1f}"
            ax.annotate(text, (i, v), ha="center", va="bottom", fontsize=7)
    fig.suptitle(f"{meta['mode']} run, {meta['started']}, {meta['reps']} reps, medians "
                 "(2 shared cores: compare bars, not absolutes)", fontsize=9)
    fig.tight_layout()
    out = Path(outdir) / f"{Path(path).stem}.png"
    fig.savefig(out, dpi=90)
    print(f"plots: wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
