#!/usr/bin/env python3
"""Turns the latest `cargo bench` run into the tables of docs/performance.md
and the plot docs/perf.png.

    cargo bench -p mqtwin-benches   # writes target/criterion/ and target/tmp/mqtwin-memory.json
    python3 docs/perf.py            # prints the Markdown tables, writes docs/perf.png

Reads criterion's `new/estimates.json` of every benchmark (the figure
criterion prints: the slope estimate when it has one, else the mean) and the
memory figures the `memory` bench wrote. The plot needs matplotlib
(`pip install matplotlib`); without it only the tables are printed.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRITERION = os.path.join(ROOT, "target", "criterion")
MEMORY = os.path.join(ROOT, "target", "tmp", "mqtwin-memory.json")
BACKENDS = ["twin", "kernel", "libc", "crossbeam"]
SCENARIOS = ["pair", "spsc", "pingpong", "mpsc"]
DEPTHS = [10, 1000, 65536]


def estimate(*path):
    """Nanoseconds per iteration of one benchmark, or None if it did not run."""
    f = os.path.join(CRITERION, *path, "new", "estimates.json")
    if not os.path.exists(f):
        return None
    with open(f) as fh:
        e = json.load(fh)
    return (e.get("slope") or e["mean"])["point_estimate"]


def fmt(ns):
    if ns is None:
        return "–"
    if ns >= 10_000:
        return f"{ns / 1000:,.1f} µs"
    if ns >= 1000:
        return f"{ns / 1000:,.2f} µs"
    return f"{ns:,.1f} ns"


def ratio(a, b, suffix="×"):
    if a is None or b is None:
        return "–"
    return f"{a / b:.2f}{suffix}"


def main():
    data = {s: {b: estimate(s, b) for b in BACKENDS} for s in SCENARIOS}
    deep = {b: {d: estimate("deep", b, str(d)) for d in DEPTHS} for b in ("twin", "kernel", "libc")}
    vt = estimate("virtual_timeout", "twin")

    print("| scenario | twin | kernel backend | raw libc | crossbeam | kernel ÷ twin | kernel backend ÷ libc | twin ÷ crossbeam |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s in SCENARIOS:
        d = data[s]
        print(
            f"| `{s}` | {fmt(d['twin'])} | {fmt(d['kernel'])} | {fmt(d['libc'])} | {fmt(d['crossbeam'])} "
            f"| {ratio(d['kernel'], d['twin'])} | {ratio(d['kernel'], d['libc'])} | {ratio(d['twin'], d['crossbeam'])} |"
        )
    print()
    print("| `deep`: depth | twin | kernel backend | raw libc | kernel ÷ twin | kernel backend ÷ libc | twin ÷ twin at 10 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = deep["twin"][10]
    for n in DEPTHS:
        t, k, l = deep["twin"][n], deep["kernel"][n], deep["libc"][n]
        print(
            f"| {n:,} | {fmt(t)} | {fmt(k) if k else 'out of reach'} | {fmt(l) if l else 'out of reach'} "
            f"| {ratio(k, t)} | {ratio(k, l)} | {ratio(t, base)} |"
        )
    print()
    print(f"`virtual_timeout` (twin): {fmt(vt)} per expired one-hour receive")
    print()
    if os.path.exists(MEMORY):
        with open(MEMORY) as fh:
            mem = json.load(fh)
        print(
            "| memory: layout | bytes per queued 64-byte message | over the payload "
            "| allocations per message | glibc heap per message (chunk headers included) |"
        )
        print("|---|---:|---:|---:|---:|")
        for m in mem:
            allocs = "–" if m["allocs_per_msg"] is None else f"{m['allocs_per_msg']:.3f}"
            heap = "–" if m.get("heap_per_msg") is None else f"{m['heap_per_msg']:.1f}"
            print(f"| {m['case']} | {m['bytes_per_msg']:.1f} | +{m['bytes_per_msg'] - 64:.1f} | {allocs} | {heap} |")
    plot(data, deep, vt)


def plot(data, deep, vt):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("\n(matplotlib not installed: no plot)", file=sys.stderr)
        return
    colors = {"twin": "#2a9d8f", "kernel": "#e76f51", "libc": "#f4a261", "crossbeam": "#577590"}
    labels = {"twin": "twin", "kernel": "kernel backend", "libc": "raw libc", "crossbeam": "crossbeam bounded"}
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.2
    for i, b in enumerate(BACKENDS):
        xs = [j + (i - 1.5) * width for j in range(len(SCENARIOS))]
        ys = [data[s][b] or 0 for s in SCENARIOS]
        ax.bar(xs, ys, width, label=labels[b], color=colors[b])
    ax.set_yscale("log")
    ax.set_xticks(range(len(SCENARIOS)))
    ax.set_xticklabels(
        ["pair\n(send+receive)", "spsc\n(per message)", "pingpong\n(round trip)", "mpsc, 4 producers\n(per message)"]
    )
    ax.set_ylabel("time (ns, log scale)")
    ax.set_title("Per operation, lower is better")
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    for b in ("twin", "kernel", "libc"):
        pts = [(n, deep[b][n]) for n in DEPTHS if deep[b][n]]
        if pts:
            ax2.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=labels[b], color=colors[b])
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("messages queued (up to 32,768 priorities)")
    ax2.set_ylabel("receive + send (ns, log scale)")
    ax2.set_title("deep: cost vs queue depth")
    ax2.grid(which="both", alpha=0.3)
    ax2.legend(fontsize=8)
    if vt:
        fig.text(0.01, 0.01, f"virtual_timeout: a one-hour timed receive expires in {fmt(vt)} of wall time", fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out = os.path.join(ROOT, "docs", "perf.png")
    fig.savefig(out, dpi=110)
    print(f"\nwrote {os.path.relpath(out, ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
