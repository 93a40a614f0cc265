"""Doing less work, end to end: the still-scene gate and the annotated video's cost.

    python benchmarks/bench_less_work.py [--quick] [--rounds N] [--model M] [--json OUT]

Every run is ``edge-har run`` in a child process on a real H.264 file (ffmpeg, libx264), 1920×1080
at 25 fps; rates come from each run's summary.json (model compilation excluded); rounds are
interleaved and medians reported. Inputs are made once and cached (outside every timed run).

- ``gate``: a clip that is 80 % still (one frozen frame plus camera-like sensor noise, σ 3 grey
  levels, H.264-encoded so the codec's noise is real) and 20 % motion, rolling stride 1, with
  ``gating.min_motion: 0.3`` vs off. Targets: inferred clips ≤ 30 % of all clips; wall time ≤ 0.4×
  the ungated run; every clip that is not gated has the ungated run's label and score. The same
  pair on an all-motion clip: the gate costs < 3 % of wall time.
- ``video``: a default batch run with the annotated video vs the same run without it (target
  ≥ 0.6× the clips/s), and rolling stride 1 with vs without (target ≥ 0.92×).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

WIDTH, HEIGHT, FPS = 1920, 1080, 25


def _encode(frames, path: Path) -> None:
    """Raw BGR frames → H.264 (libx264, crf 23, GOP 25) through the ffmpeg command."""
    process = subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo",
                                "-pix_fmt", "bgr24", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "-",
                                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "25",
                                "-pix_fmt", "yuv420p", str(path)], stdin=subprocess.PIPE)
    for frame in frames:
        process.stdin.write(frame.tobytes())
    process.stdin.close()
    if process.wait() != 0:
        raise RuntimeError(f"ffmpeg could not encode {path}")


def still_motion_clip(seconds: int) -> Path:
    """``seconds`` of video: blocks of 4 s of a frozen noisy frame then 1 s of motion (80 % still)."""
    target = common.bench_cache() / f"still80-{WIDTH}x{HEIGHT}-{seconds}s.mp4"
    if target.is_file():
        return target
    import cv2

    from edge.synthetic import moving_shapes_frame

    rng = np.random.default_rng(0)
    still = cv2.GaussianBlur(moving_shapes_frame(0, WIDTH, HEIGHT, seed=3), (0, 0), 3).astype(np.float32)

    def frames():
        for index in range(FPS * seconds):
            if (index // FPS) % 5 == 4:  # the fifth second of every five moves
                yield moving_shapes_frame(index, WIDTH, HEIGHT, seed=3)
            else:  # sensor noise, σ 3 grey levels, on a frozen scene
                yield np.clip(still + rng.normal(0.0, 3.0, still.shape).astype(np.float32), 0, 255).astype(np.uint8)

    tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    _encode(frames(), tmp)
    tmp.replace(target)
    return target


def edge_run(work: Path, tag: str, video: Path, model: str, *, mode: str, stride: int = 1,
             min_motion: float = 0.0, with_video: bool = False) -> dict:
    out = work / tag
    out.mkdir(parents=True, exist_ok=True)
    config = {"source": str(video), "model": {"path": model},
              "sampling": {"mode": mode, "stride": stride}, "gating": {"min_motion": min_motion},
              "output": {"events": str(out / "events.jsonl"), "summary": str(out / "summary.json"),
                         "video": str(out / "annotated.mp4") if with_video else None, "progress": False,
                         "overwrite": True}}
    import yaml

    (out / "cfg.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    measured = common.measure_process([common.PYTHON, "-m", "edge", "-q", "run", "-c", str(out / "cfg.yaml")])
    if measured["returncode"] != 0:
        raise RuntimeError(f"{tag}: edge-har run failed: {measured['stderr_tail']}")
    summary = json.loads((out / "summary.json").read_text())
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    return {"tag": tag, "clips_per_s": summary["clips_per_s"], "elapsed_s": summary["elapsed_s"],
            "clips": summary["clips"], "gated": summary["gated_clips"], "cpu_s": measured["cpu_s"],
            "wall_s": measured["wall_s"], "events": [e for e in events if "event" not in e]}


def same_predictions(gated_run: dict, plain_run: dict) -> tuple[int, int]:
    """(clips compared, clips whose label and score differ) over the clips the gate let through."""
    plain = {e["clip_index"]: e for e in plain_run["events"]}
    compared = differ = 0
    for event in gated_run["events"]:
        if event.get("gated"):
            continue
        compared += 1
        other = plain[event["clip_index"]]
        if event["label"] != other["label"] or abs(event["score"] - other["score"]) > 1e-6:
            differ += 1
    return compared, differ


def main(argv=None) -> int:
    parser = common.suite_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; 1 quick)")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--scenarios", default="gate,video")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    seconds = 10 if args.quick else 20
    model = args.model or str(common.demo_onnx())
    scenarios = [s.strip() for s in args.scenarios.split(",")]
    still = still_motion_clip(seconds)
    moving = common.h264_video(WIDTH, HEIGHT, seconds)
    runs: dict[str, list[dict]] = {}
    plan = []
    if "gate" in scenarios:
        plan += [("gate-still-on", still, dict(mode="rolling", min_motion=0.3)),
                 ("gate-still-off", still, dict(mode="rolling")),
                 ("gate-moving-on", moving, dict(mode="rolling", min_motion=0.3)),
                 ("gate-moving-off", moving, dict(mode="rolling"))]
    if "video" in scenarios:
        plan += [("batch-video", moving, dict(mode="batch", with_video=True)),
                 ("batch-novideo", moving, dict(mode="batch")),
                 ("rolling-video", moving, dict(mode="rolling", with_video=True)),
                 ("rolling-novideo", moving, dict(mode="rolling"))]
    with tempfile.TemporaryDirectory(prefix="bench-less-") as tmp:
        for round_no in range(rounds):
            for tag, video, options in plan:
                runs.setdefault(tag, []).append(edge_run(Path(tmp), f"{tag}-{round_no}", video, model, **options))

    def median(tag, key):
        return statistics.median(r[key] for r in runs[tag])

    rows = []
    tag = {"machine": common.machine(), "rounds": rounds, "clip_seconds": seconds}
    if "gate" in scenarios:
        on, off = runs["gate-still-on"][0], runs["gate-still-off"][0]
        compared, differ = same_predictions(on, off)
        inferred = (on["clips"] - on["gated"]) / on["clips"]
        wall_ratio = median("gate-still-on", "elapsed_s") / median("gate-still-off", "elapsed_s")
        cost = median("gate-moving-on", "elapsed_s") / median("gate-moving-off", "elapsed_s") - 1.0
        rows.append({"scenario": "gate", "clips": on["clips"], "gated": on["gated"], "inferred_fraction": inferred,
                     "wall_ratio": wall_ratio, "compared": compared, "differ": differ,
                     "moving_gated": runs["gate-moving-on"][0]["gated"], "cost_on_motion": cost,
                     "pass": inferred <= 0.30 and wall_ratio <= 0.4 and differ == 0 and cost < 0.03})
    if "video" in scenarios:
        batch = median("batch-video", "clips_per_s") / median("batch-novideo", "clips_per_s")
        rolling = median("rolling-video", "clips_per_s") / median("rolling-novideo", "clips_per_s")
        rows.append({"scenario": "video", "batch_with_video": median("batch-video", "clips_per_s"),
                     "batch_without": median("batch-novideo", "clips_per_s"), "batch_ratio": batch,
                     "rolling_with_video": median("rolling-video", "clips_per_s"),
                     "rolling_without": median("rolling-novideo", "clips_per_s"), "rolling_ratio": rolling,
                     "pass": batch >= 0.6 and rolling >= 0.92})
    for row in rows:
        row.update(tag)
    common.print_json_lines(rows)
    print()
    for row in rows:
        if row["scenario"] == "gate":
            print(f"gate: {row['gated']}/{row['clips']} clips gated, inferred {row['inferred_fraction']:.0%} "
                  f"(target <= 30%); wall {row['wall_ratio']:.2f}x ungated (<= 0.4); {row['differ']} of "
                  f"{row['compared']} inferred clips differ from the ungated run (0); on an all-motion clip "
                  f"{row['moving_gated']} gated, cost {row['cost_on_motion']:+.1%} (< 3%) -> "
                  f"{'PASS' if row['pass'] else 'MISS'}")
        else:
            print(f"video: batch {row['batch_with_video']:.2f} vs {row['batch_without']:.2f} clips/s = "
                  f"{row['batch_ratio']:.2f}x (>= 0.6); rolling s1 {row['rolling_with_video']:.2f} vs "
                  f"{row['rolling_without']:.2f} = {row['rolling_ratio']:.2f}x (>= 0.92) -> "
                  f"{'PASS' if row['pass'] else 'MISS'}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
