"""Markdown tables from benchmark results."""
from __future__ import annotations


def markdown_table(rows: list[dict], tests: list[str], header: bool = True) -> str:
    cols = ["model", "type", "head", "isa", "thr", "load ms", "peak RSS MB"] + [f"{t} tok/s" for t in tests]
    if any(t.startswith("tg") for t in tests):
        cols += ["read BW GB/s", "tg % of BW limit"]
    lines = []
    if header:
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        load = "-" if r.get("load_s") is None else f"{r['load_s'] * 1e3:.0f}"
        cells = [r["model"], r["type"], r["head"], r["isa"], str(r["threads"]), load,
                 f"{r['peak_rss_bytes'] / 2**20:.0f}"]
        for t in tests:
            s = r[t]
            cells.append(f"{s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f})")
        tg = [t for t in tests if t.startswith("tg")]
        if tg:
            cells += [f"{r['read_bandwidth'] / 1e9:.1f}", f"{r[tg[0]]['pct_of_limit']:.0f}%"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
