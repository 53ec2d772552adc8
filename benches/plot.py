#!/usr/bin/env python3
"""Plots a scaling curve written by a harness in benches/: `python3 benches/plot.py CSV PNG TITLE`.

CSV has a header `x,series,y` (and any further columns, ignored): one line per point. Each series
is drawn as a line against x on a log scale, with its points marked. Needs Debian's
python3-matplotlib (`apt-get install python3-matplotlib`); the harness says so when it is missing.
"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, png, title = sys.argv[1:]
    series = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            series.setdefault(row["series"], []).append((float(row["x"]), float(row["y"])))
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for name, points in series.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax.set_xscale("log", base=2)
    xs = sorted({p[0] for ps in series.values() for p in ps})
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{x:g}" for x in xs])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("streams")
    ax.set_ylabel("CPU seconds per second, per stream")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
