"""Markdown tables from benchmark results, and their history.

    python -m bench.report                     # every run in bench/results/, oldest first, one row per config
    python -m bench.report --plot history.png  # also a plot of decode / prefill tokens/s over time (matplotlib)
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def markdown_table(rows: list[dict], tests: list[str], header: bool = True) -> str:
    cols = ["model", "type", "head", "isa", "thr", "load ms", "peak RSS MB"] + [f"{t} tok/s" for t in tests]
    tg = [t for t in tests if t.startswith("tg")]
    mapped = bool(tg) and any("file_map_bandwidth" in r for r in rows)
    if tg:
        cols += ["read BW GB/s", "tg % of BW limit"]
    if mapped:  # the weights' own memory: the file's page cache pages under a memory map
        cols += ["file map BW GB/s", "tg % of map limit"]
    lines = []
    if header:
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        load = "-" if r.get("load_s") is None else f"{r['load_s'] * 1e3:.0f}"
        cells = [r["model"], r["type"], r["head"], r["isa"], str(r["threads"]), load,
                 f"{r['peak_rss_bytes'] / 2**20:.0f}"]
        for t in tests:
            s = r.get(t)  # an external engine may leave a test out (tgN@D)
            cell = f"{s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f})" if s else "-"
            if s and "pct_of_int8_peak" in s:  # the prompt's ternary MACs against the cores' int8 peak
                cell += f", {s['pct_of_int8_peak']:.0f}% of int8 peak"
            cells.append(cell)
        first_tg = r.get(tg[0], {}) if tg else {}
        if tg:
            pct = f"{first_tg['pct_of_limit']:.0f}%" if "pct_of_limit" in first_tg else "-"
            if "pct_of_paired_limit" in first_tg:  # against the probe run right after each repeat
                pct += f" (paired {first_tg['pct_of_paired_limit']:.0f}%)"
            cells += [f"{r['read_bandwidth'] / 1e9:.1f}", pct]
        if mapped and "file_map_bandwidth" in r and "pct_of_file_map_limit" in first_tg:
            cells += [f"{r['file_map_bandwidth'] / 1e9:.1f}", f"{first_tg['pct_of_file_map_limit']:.0f}%"]
        elif mapped:
            cells += ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def history(results_dir: str) -> list[dict]:
    """One row per (run, configuration) of the `python -m bench` JSON files, oldest first."""
    rows = []
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
        name = os.path.basename(path)
        if name.endswith(("-kernels.json", "-converter.json", "-quick.json")):
            continue
        with open(path) as f:
            run = json.load(f)
        for r in run.get("results", []):
            commit = run.get("commit") or ""
            row = {"run": name[:-5], "commit": commit[:7] + ("-dirty" if commit.endswith("-dirty") else ""),
                   "model": r["model"], "type": r["type"],
                   "head": r["head"], "isa": r["isa"], "threads": r["threads"], "mmap": r.get("mmap", True)}
            for key, value in r.items():
                if key[:2] in ("pp", "tg") and key[2:].isdigit():
                    row[key] = value["median"]
                    if "pct_of_limit" in value:
                        row[key + "_pct"] = value["pct_of_limit"]
            rows.append(row)
    return rows


def _plot(rows: list[dict], out: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = sorted({r["run"] for r in rows})   # a shared time axis: run stamps sort in time order
    x_of = {run: i for i, run in enumerate(runs)}
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, kind in zip(axes, ("tg", "pp")):
        series: dict[str, list] = {}
        for r in rows:
            for key in r:
                if key.startswith(kind) and key[2:].isdigit():
                    label = f"{r['model']} {r['type']}/{r['head']} {r['isa']} {r['threads']}t {key}"
                    series.setdefault(label, []).append((r["run"], r[key]))
        for label, points in sorted(series.items()):
            ax.plot([x_of[p[0]] for p in points], [p[1] for p in points], marker="o", label=label)
        ax.set_title("decode" if kind == "tg" else "prefill")
        ax.set_ylabel("tokens/s")
        ax.set_xticks(range(len(runs)), runs, rotation=60, fontsize=6)
        ax.legend(fontsize=5, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(out, dpi=130)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--plot", default=None, metavar="PNG", help="write a history plot (needs matplotlib)")
    args = ap.parse_args(argv)
    rows = history(args.results)
    tests = sorted({k for r in rows for k in r if k[:2] in ("pp", "tg") and k[2:].isdigit()})
    cols = ["run", "commit", "model", "type", "head", "isa", "threads", "mmap"] + tests
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = [str(r.get(c, "")) if c not in tests else (f"{r[c]:.1f}" if c in r else "") for c in cols]
        print("| " + " | ".join(cells) + " |")
    if args.plot:
        try:
            _plot(rows, args.plot)
        except ImportError:
            print("bench.report: matplotlib is not installed; no plot written", file=sys.stderr)
            return 1
        print(f"bench.report: wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
