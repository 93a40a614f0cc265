"""Memory over a long rolling run: does ``edge-har run`` keep a flat resident set?

``edge-har run`` (a child process, ``python -m edge run``) in rolling mode over a generated
640×360 video of at least 2,000 frames (full: 2,400 frames, stride 4 → ~600 clips; quick:
2,000 frames, stride 16), events written as in production. psutil samples the child's RSS
every 0.5 s. Only samples taken while clips are being produced count (from the first
prediction to the last, so start-up — imports, compile — is not "growth"); the growth is the
median of the last quarter of those samples minus the median of the first quarter.

    python benchmarks/bench_memory.py [--quick] [--model M] [--frames N] [--stride S]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SIZE = (640, 360)
SETTINGS = {"full": (2400, 4), "quick": (2000, 16), "smoke": (64, 8)}
SAMPLE_S = 0.5


def rss_growth(samples: list, start: float, end: float) -> dict:
    """``samples``: ``[epoch_s, cpu_s, rss_mb]`` rows; the quarter medians over [start, end]."""
    window = [s[2] for s in samples if start <= s[0] <= end]
    if len(window) < 4:  # a short run: everything after the first prediction, else all
        window = [s[2] for s in samples if s[0] >= start] or [s[2] for s in samples]
        window = window if len(window) >= 4 else [s[2] for s in samples]
    quarter = max(1, len(window) // 4)
    first, last = statistics.median(window[:quarter]), statistics.median(window[-quarter:])
    return {"rss_first_quarter_mb": first, "rss_last_quarter_mb": last, "rss_growth_mb": last - first,
            "rss_samples": len(window), "rss_min_mb": min(window), "rss_max_mb": max(window)}


def run(quick: bool = False, model=None, frames: int | None = None, stride: int | None = None,
        smoke: bool = False, precision: str = "auto") -> list[dict]:
    """One long rolling run; returns one row (``rss_growth_mb`` and the samples behind it)."""
    import yaml

    level = "smoke" if smoke else "quick" if quick else "full"
    default_frames, default_stride = SETTINGS[level]
    frames, stride = frames or default_frames, stride or default_stride
    model = Path(model) if model else common.demo_onnx()
    video = common.bench_video(*SIZE, frames)
    with tempfile.TemporaryDirectory(prefix="edge-bench-mem-") as tmp:
        work = Path(tmp)
        events, summary = work / "events.jsonl", work / "summary.json"
        config = {"source": str(video), "model": {"path": str(model)},
                  "sampling": {"mode": "rolling", "stride": stride}, "inference": {"precision": precision},
                  "output": {"events": str(events), "summary": str(summary), "overwrite": True, "progress": "false"}}
        config_path = work / "memory.yaml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        measured = common.measure_process([common.PYTHON, "-m", "edge", "-q", "run", "-c", str(config_path)],
                                          sample_s=SAMPLE_S)
        if measured["returncode"] != 0:
            raise RuntimeError(f"edge-har run (memory) failed: {measured['stderr_tail']}")
        times = [common.parse_wall_time(json.loads(line)["wall_time"])
                 for line in events.read_text(encoding="utf-8").splitlines() if '"clip_index"' in line]
        run_summary = json.loads(summary.read_text(encoding="utf-8"))
    growth = rss_growth(measured["samples"], times[0], times[-1]) if times else rss_growth(measured["samples"], 0, 0)
    machine = common.machine()
    return [{
        "suite": "memory", "name": f"edge-har rolling s{stride} [{run_summary.get('precision')}]",
        **growth, "peak_rss_mb": measured["peak_rss_mb"], "frames": run_summary.get("frames"),
        "clips": run_summary.get("clips"), "wall_s": measured["wall_s"],
        "rss_trace": [[round(s[0] - measured["samples"][0][0], 2), round(s[2], 1)] for s in measured["samples"]],
        "machine": machine,
        "settings": {"level": level, "video": str(video), "width": SIZE[0], "height": SIZE[1], "frames": frames,
                     "mode": "rolling", "stride": stride, "precision": precision, "model": str(model),
                     "sample_s": SAMPLE_S},
    }]


def format_table(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        s = r["settings"]
        lines.append(f"{r['name']}: {r['frames']} frames {s['width']}x{s['height']}, {r['clips']} clips, "
                     f"{r['rss_samples']} samples: RSS {r['rss_first_quarter_mb']:.1f} -> {r['rss_last_quarter_mb']:.1f} MB "
                     f"(growth {r['rss_growth_mb']:+.2f} MB, peak {r['peak_rss_mb']:.0f} MB)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = common.suite_parser(__doc__)
    parser.add_argument("--frames", type=int, help="video length (default 2400; quick 2000)")
    parser.add_argument("--stride", type=int)
    args = parser.parse_args(argv)
    rows = run(args.quick, args.model, args.frames, args.stride, args.smoke)
    print(format_table(rows))
    common.print_json_lines([{k: v for k, v in r.items() if k != "rss_trace"} for r in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
