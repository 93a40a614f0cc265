"""Report writers for ``benchmarks/run.py``: JSON, a Markdown table, a PNG bar chart, the targets.

JSON schema (one object; ``schema`` = ``"edge-har-bench/1"``)::

    {
      "schema": "edge-har-bench/1",
      "created": "2026-01-01T12:00:00+00:00",      # ISO 8601, when the run finished
      "command": "python benchmarks/run.py --int8 …",
      "machine": {cpu_model, logical_cores, cpu_flags [str], version (edge-har), openvino,
                  opencv, numpy, python, platform, implementation ("native"|"numpy"), native},
      "settings": {quick, smoke, rounds, model, int8_model, video, width, height, frames, suites},
      "suites": {                                   # a suite left out or failed is absent
        "runtime":    [row …],   # per row: runtime, implementation, p50_ms, p90_ms, clips_per_s,
                                 #   gflops (25.4 GFLOP per clip / p50), vs_cv2 (cv2.dnn p50 / p50)
        "preprocess": [row …],   # implementation, resolution, median_ms_per_frame, min_ms_per_frame,
                                 #   vs_blob (ms / blobFromImages ms at that resolution)
        "e2e":        [row …],   # pipeline ("seed"|"edge-har"|"bare"), mode, stride, precision
                                 #   ("auto"|"f32"|"int8"), precision_used, name, clips_per_s,
                                 #   frames_per_s, latency_p50_ms, latency_p99_ms (frame to label),
                                 #   cpu_util (0–1 of all cores), peak_rss_mb, vs_seed, vs_bare,
                                 #   sync_clips_per_s (bare only), rounds, round_clips_per_s [..]
        "memory":     [row …]    # name, frames, clips, rss_first_quarter_mb, rss_last_quarter_mb,
                                 #   rss_growth_mb, rss_samples, peak_rss_mb, rss_trace [[s, MB] …]
      },
      "targets": [{"name", "value", "threshold", "op" (">="|"<="|"<"), "status" ("PASS"|"MISS"|"n/a"),
                   "detail"} …],
      "errors": {suite: "one-line message"}
    }

Every row also carries ``suite``, ``machine`` (as above) and ``settings`` (that suite's own:
sizes, repeats, rounds, model, video …). Numbers are floats (None when not measured).
The Markdown holds one table per suite under a ``### <Title>`` heading, plus ``### Targets``;
``parse_markdown`` reads it back ({title: [{column: value}]}, numbers as floats).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

SCHEMA = "edge-har-bench/1"
GFLOP_PER_CLIP = 25.4
SUITES = ("runtime", "preprocess", "e2e", "memory")
PLOT_SIZE_IN = (8.0, 4.5)
PLOT_DPI = 100  # → 800×450 px


# ------------------------------------------------------------------------------------- JSON

def write_json(path, results: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1, sort_keys=True)
        handle.write("\n")


def read_json(path) -> dict:
    with open(path, encoding="utf-8") as handle:
        results = json.load(handle)
    if results.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not an edge-har benchmark result (schema {results.get('schema')!r})")
    return results


# ------------------------------------------------------------------------------------- derived numbers

def enrich_runtime(rows: list[dict]) -> None:
    """Add ``gflops`` and ``vs_cv2`` to the runtime suite's rows."""
    cv2_p50 = next((r["p50_ms"] for r in rows if r.get("runtime") == "cv2.dnn"), None)
    for row in rows:
        row["gflops"] = GFLOP_PER_CLIP * 1000.0 / row["p50_ms"] if row.get("p50_ms") else None
        row["vs_cv2"] = cv2_p50 / row["p50_ms"] if cv2_p50 and row.get("p50_ms") else None


def enrich_preprocess(rows: list[dict]) -> None:
    """Add ``vs_blob`` (ms per frame / blobFromImages' at the same resolution)."""
    blob = {r["resolution"]: r["median_ms_per_frame"] for r in rows if r["implementation"] == "blobFromImages"}
    for row in rows:
        reference = blob.get(row["resolution"])
        row["vs_blob"] = row["median_ms_per_frame"] / reference if reference else None


def _find(rows, **match):
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def _target(name, value, op, threshold, detail=""):
    if value is None:
        status = "n/a"
    else:
        ok = {">=": value >= threshold, "<=": value <= threshold, "<": value < threshold}[op]
        status = "PASS" if ok else "MISS"
    return {"name": name, "value": value, "op": op, "threshold": threshold, "status": status, "detail": detail}


def evaluate_targets(suites: dict) -> list[dict]:
    """The issue's targets, each computed from these results (``n/a`` when not measured)."""
    e2e, runtime = suites.get("e2e", []), suites.get("runtime", [])
    targets = []
    precisions = [p for p in ("auto", "int8") if _find(e2e, pipeline="edge-har", precision=p)] or ["auto"]
    for precision in precisions:
        need = 8.0 if precision == "int8" else 6.0
        for mode in ("batch", "rolling"):
            row = _find(e2e, pipeline="edge-har", mode=mode, stride=1, precision=precision)
            label = "batch" if mode == "batch" else "rolling s1"
            targets.append(_target(f"edge-har {label} [{precision}] / seed {mode} (clips/s)",
                                   row and row.get("vs_seed"), ">=", need,
                                   "median of per-round ratios, steady state"))
    for precision in ("auto", "f32", "bf16", "int8"):
        row = _find(e2e, pipeline="edge-har", mode="rolling", stride=1, precision=precision)
        if row is not None or precision == "auto":
            hint = (row or {}).get("settings", {}).get("bare_hint", "throughput")
            targets.append(_target(f"rolling s1 steady / bare model [{precision}]", row and row.get("vs_bare"),
                                   ">=", 0.88, f"bare: AsyncInferQueue saturated, {hint} hint, same precision"))
    int8 = _find(runtime, runtime="openvino int8")
    bf16 = _find(runtime, runtime="openvino bf16 (auto)")
    f32 = _find(runtime, runtime="openvino f32")
    for other, need, label in ((bf16, 1.5, "bf16 (auto)"), (f32, 3.0, "f32")):
        value = int8["clips_per_s"] / other["clips_per_s"] if int8 and other and other.get("clips_per_s") else None
        targets.append(_target(f"INT8 / {label} (runtime suite clips/s)", value, ">=", need,
                               "latency hint, p50 per clip"))
    pre = suites.get("preprocess", [])
    native = _find(pre, implementation="native", resolution="1920x1080")
    targets.append(_target("native preprocessing / blobFromImages at 1080p (ms per frame)",
                           native and native.get("vs_blob"), "<=", 1 / 3))
    memory = suites.get("memory", [])
    targets.append(_target("RSS growth over the long rolling run (MB)",
                           memory[0]["rss_growth_mb"] if memory else None, "<", 5.0,
                           f"{memory[0]['frames']} frames" if memory else ""))
    return targets


# ------------------------------------------------------------------------------------- Markdown

def _fmt(value, digits: int) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}f}"


def _table(title: str, headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = [f"### {title}", "", "| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return lines + [""]


def _load_text(settings: dict) -> str:
    start, end = settings.get("load_average_at_start"), settings.get("load_average_at_end")
    if not start or not end:
        return ""
    return f"; 1-min load average {start[0]:.1f} at start, {end[0]:.1f} at end"


def format_markdown(results: dict) -> str:
    """The whole report as Markdown: a header line, one table per suite, the targets."""
    machine, settings, suites = results["machine"], results["settings"], results["suites"]
    flags = " ".join(machine.get("cpu_flags", []))
    lines = [
        f"**edge-har {machine.get('version')}** on {machine.get('cpu_model')}, {machine.get('logical_cores')} "
        f"logical cores ({flags}); OpenVINO {machine.get('openvino', '').split('-')[0]}, OpenCV "
        f"{machine.get('opencv')}, NumPy {machine.get('numpy')}, preprocessing {machine.get('implementation')}; "
        f"{results['created'][:16].replace('T', ' ')} UTC{_load_text(settings)}.",
        "",
        f"`{results['command']}`",
        "",
    ]
    e2e = suites.get("e2e")
    if e2e:
        s = e2e[0]["settings"]
        lines.append(f"End to end on {s['width']}×{s['height']} ({s['frames']} frames, {s['video'].rsplit('/', 1)[-1]}), "
                     f"median of {s['rounds']} interleaved round(s); steady state; frame-to-label latency; "
                     f"CPU % of all cores.")
        lines.append("")
        rows = [[r["name"], _fmt(r.get("clips_per_s"), 2), _fmt(r.get("frames_per_s"), 1),
                 _fmt(r.get("vs_seed"), 1), _fmt(r.get("vs_bare"), 2), _fmt(r.get("latency_p50_ms"), 0),
                 _fmt(r.get("latency_p99_ms"), 0),
                 _fmt(100 * r["cpu_util"] if r.get("cpu_util") is not None else None, 0),
                 _fmt(r.get("peak_rss_mb"), 0)] for r in e2e]
        lines += _table("End to end", ["pipeline", "clips/s", "frames/s", "× seed", "× bare", "p50 ms", "p99 ms",
                                       "CPU %", "peak RSS MB"], rows)
    runtime = suites.get("runtime")
    if runtime:
        rows = [[r["runtime"], _fmt(r.get("p50_ms"), 1), _fmt(r.get("p90_ms"), 1), _fmt(r.get("clips_per_s"), 2),
                 _fmt(r.get("gflops"), 0), _fmt(r.get("vs_cv2"), 1)] for r in runtime]
        lines += _table("Runtimes", ["runtime", "p50 ms", "p90 ms", "clips/s", "GFLOP/s", "× cv2.dnn"], rows)
    pre = suites.get("preprocess")
    if pre:
        rows = [[r["resolution"], r["implementation"], _fmt(r.get("median_ms_per_frame"), 3),
                 _fmt(r.get("vs_blob"), 2)] for r in pre]
        lines += _table("Preprocessing", ["resolution", "implementation", "ms/frame", "/ blobFromImages"], rows)
    memory = suites.get("memory")
    if memory:
        rows = [[r["name"], f"{r['settings']['width']}x{r['settings']['height']}", _fmt(r.get("frames"), 0),
                 _fmt(r.get("rss_samples"), 0), _fmt(r.get("rss_first_quarter_mb"), 1),
                 _fmt(r.get("rss_last_quarter_mb"), 1), _fmt(r.get("rss_growth_mb"), 2),
                 _fmt(r.get("peak_rss_mb"), 0)] for r in memory]
        lines += _table("Memory", ["run", "video", "frames", "samples", "first ¼ MB", "last ¼ MB", "growth MB",
                                   "peak MB"], rows)
    targets = results.get("targets") or []
    if targets:
        rows = [[t["name"], _fmt(t["value"], 2), f"{t['op']} {t['threshold']:.2f}", t["status"]] for t in targets]
        lines += _table("Targets", ["target", "value", "threshold", "result"], rows)
    for suite, message in (results.get("errors") or {}).items():
        lines.append(f"- **{suite} failed**: {message}")
    return "\n".join(lines).rstrip() + "\n"


_NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?$")


def parse_markdown(text: str) -> dict[str, list[dict]]:
    """Tables of ``format_markdown`` back as {title: [{column: value}]}; numbers become floats,
    ``—`` becomes None, other cells stay strings."""
    tables: dict[str, list[dict]] = {}
    title, headers = None, None
    for line in text.splitlines():
        if line.startswith("### "):
            title, headers = line[4:].strip(), None
            tables[title] = []
            continue
        if title is None or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if headers is None:
            headers = cells
        elif set("".join(cells)) <= {"-", ":"}:
            continue
        else:
            tables[title].append({h: None if c == "—" else float(c) if _NUMBER.match(c) else c
                                  for h, c in zip(headers, cells)})
    return tables


def write_markdown(path, results: dict) -> str:
    text = format_markdown(results)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")
    return text


# ------------------------------------------------------------------------------------- chart

MATPLOTLIB_MISSING = "the chart needs matplotlib: pip install 'edge-har[bench]' (or drop --plot)"


def write_plot(path, results: dict) -> Path:
    """Bar chart: clips/s per pipeline (groups) and precision (bars); the seed as reference lines.

    ``RuntimeError`` with an install hint when matplotlib is missing; ``ValueError`` without e2e rows.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError(MATPLOTLIB_MISSING) from None
    e2e = results["suites"].get("e2e") or []
    edge_rows = [r for r in e2e if r["pipeline"] in ("edge-har", "bare")]
    if not edge_rows:
        raise ValueError("no end-to-end results to plot")
    groups = [("batch", 1, "edge-har batch"), ("rolling", 1, "edge-har rolling s1"),
              ("rolling", 8, "edge-har rolling s8"), (None, None, "bare model")]
    precisions = list(dict.fromkeys(r["precision"] for r in edge_rows))
    labels = {r["precision"]: r["precision_label"] for r in edge_rows}
    colours = {"auto": "#1f77b4", "f32": "#7f7f7f", "int8": "#2ca02c"}
    fig, ax = plt.subplots(figsize=PLOT_SIZE_IN, dpi=PLOT_DPI)
    width = 0.8 / max(1, len(precisions))
    for i, precision in enumerate(precisions):
        values = []
        for mode, stride, _ in groups:
            row = _find(edge_rows, pipeline="bare" if mode is None else "edge-har", mode=mode, stride=stride,
                        precision=precision)
            values.append(row["clips_per_s"] if row and row.get("clips_per_s") else 0.0)
        xs = [g + (i - (len(precisions) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=labels[precision], color=colours.get(precision))
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    for row, style in ((_find(e2e, pipeline="seed", mode="batch"), "--"),
                       (_find(e2e, pipeline="seed", mode="rolling"), ":")):
        if row and row.get("clips_per_s"):
            ax.axhline(row["clips_per_s"], color="#d62728", linestyle=style, linewidth=1.2,
                       label=f"seed {row['mode']} (cv2.dnn) {row['clips_per_s']:.2f}")
    ax.set_xticks(range(len(groups)), [g[2] for g in groups], fontsize=9)
    ax.set_ylabel("clips/s (steady state)")
    machine = results["machine"]
    ax.set_title(f"edge-har vs the seed: {machine.get('cpu_model')}, {machine.get('logical_cores')} cores, "
                 f"{results['created'][:10]}", fontsize=10)
    top = max([b.get_height() for b in ax.patches] + [1.0])
    ax.set_ylim(0, top * 1.35)  # headroom for the legend above the bars
    ax.legend(fontsize=8, loc="upper center", ncol=3, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=PLOT_DPI)
    plt.close(fig)
    return Path(path)


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR; ``ValueError`` if it is not a PNG."""
    with open(path, "rb") as handle:
        head = handle.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def main(argv=None) -> int:
    """Re-render a saved result: ``python benchmarks/report.py results.json [--markdown OUT.md] [--plot OUT.png]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Re-render the Markdown and chart of a saved benchmark result")
    parser.add_argument("json", metavar="RESULTS.json")
    parser.add_argument("--markdown", metavar="OUT.md")
    parser.add_argument("--plot", metavar="OUT.png")
    args = parser.parse_args(argv)
    results = read_json(args.json)
    text = write_markdown(args.markdown, results) if args.markdown else format_markdown(results)
    print(text)
    if args.plot:
        write_plot(args.plot, results)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
