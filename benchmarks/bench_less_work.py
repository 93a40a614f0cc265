"""Doing less work, end to end: the still-scene gate and the annotated video's cost.

    python benchmarks/bench_less_work.py [--quick] [--rounds N] [--model M] [--json OUT] [--scenarios gate,video]
                                         [--video-modes batch,rolling] [--resolution 1920x1080] [--precision auto]

Every run is ``edge-har run`` in a child process on a real H.264 file (ffmpeg, libx264), 1920×1080
at 25 fps; rates come from each run's summary.json (model compilation excluded); rounds are
interleaved and medians reported. Inputs are made once and cached (outside every timed run).

- ``gate``: a clip that is 80 % still (one frozen frame plus camera-like sensor noise, σ 3 grey
  levels, H.264-encoded so the codec's noise is real) and 20 % motion, rolling stride 1, with
  ``gating.min_motion: 0.3`` vs off. Targets: inferred clips ≤ 30 % of all clips; wall time ≤ 0.4×
  the ungated run; every clip that is not gated has the ungated run's label and score. The same
  pair on an all-motion clip: the gate costs < 3 % of wall time.
- ``video``: a default batch run with the annotated video (``output.video`` set) vs the same run
  without it (target ≥ 0.6× the clips/s), and rolling stride 1 with vs without (target ≥ 0.92×);
  ``--video-modes batch`` for the batch pair only. The ratio is the median of the per-round
  ratios (each round runs both, one after the other); the wall-time ratio (summary
  ``elapsed_s``) is beside it. ``--resolution`` changes the clip's size (1920×1080 by default).

Rows carry the machine (CPU, cores, OpenVINO and edge-har versions) and the precision used.
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
             min_motion: float = 0.0, with_video: bool = False, precision: str = "auto") -> dict:
    out = work / tag
    out.mkdir(parents=True, exist_ok=True)
    config = {"source": str(video), "model": {"path": model}, "inference": {"precision": precision},
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
            "precision": summary.get("precision"), "num_requests": summary.get("num_requests"),
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
    parser.add_argument("--video-modes", default="batch,rolling",
                        help="video scenario: batch, rolling or both (default batch,rolling)")
    parser.add_argument("--resolution", default=f"{WIDTH}x{HEIGHT}",
                        help="video scenario: the clip's size (default 1920x1080)")
    parser.add_argument("--precision", default="auto", choices=("auto", "f32", "bf16"),
                        help="inference.precision of every run (default auto)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick or args.smoke else 3)
    seconds = 2 if args.smoke else 10 if args.quick else 20
    model = args.model or str(common.demo_onnx())
    scenarios = [s.strip() for s in args.scenarios.split(",")]
    video_modes = [m.strip() for m in args.video_modes.split(",") if m.strip()]
    if set(video_modes) - {"batch", "rolling"} or not video_modes:
        parser.error(f"--video-modes: batch, rolling or both, not {args.video_modes!r}")
    width, _, height = args.resolution.lower().partition("x")
    if not (width.isdigit() and height.isdigit()):
        parser.error(f"--resolution: expected WIDTHxHEIGHT, got {args.resolution!r}")
    # setup, before any timed run: the clips are made (and cached) here
    still = still_motion_clip(seconds) if "gate" in scenarios else None
    moving = common.h264_video(int(width), int(height), seconds)
    runs: dict[str, list[dict]] = {}
    plan = []
    if "gate" in scenarios:
        plan += [("gate-still-on", still, dict(mode="rolling", min_motion=0.3)),
                 ("gate-still-off", still, dict(mode="rolling")),
                 ("gate-moving-on", moving, dict(mode="rolling", min_motion=0.3)),
                 ("gate-moving-off", moving, dict(mode="rolling"))]
    if "video" in scenarios:
        for mode in video_modes:
            plan += [(f"{mode}-video", moving, dict(mode=mode, with_video=True)),
                     (f"{mode}-novideo", moving, dict(mode=mode))]
    with tempfile.TemporaryDirectory(prefix="bench-less-") as tmp:
        for round_no in range(rounds):
            for tag, video, options in plan:
                runs.setdefault(tag, []).append(edge_run(Path(tmp), f"{tag}-{round_no}", video, model,
                                                         precision=args.precision, **options))

    def median(tag, key):
        return statistics.median(r[key] for r in runs[tag])

    def round_ratio(mode, key="clips_per_s"):
        """The median over rounds of (with video / without) in that round."""
        return statistics.median(a[key] / b[key] for a, b in zip(runs[f"{mode}-video"], runs[f"{mode}-novideo"])
                                 if a[key] and b[key])

    rows = []
    first_run = next(iter(runs.values()))[0]
    tag = {"machine": common.machine(), "rounds": rounds, "clip_seconds": seconds,
           "precision": first_run["precision"], "requested_precision": args.precision,
           "num_requests": first_run["num_requests"]}
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
        row = {"scenario": "video", "resolution": f"{width}x{height}", "video": str(moving), "modes": video_modes}
        targets = {"batch": 0.6, "rolling": 0.92}
        for mode in video_modes:
            row.update({f"{mode}_with_video": median(f"{mode}-video", "clips_per_s"),
                        f"{mode}_without": median(f"{mode}-novideo", "clips_per_s"),
                        f"{mode}_ratio": round_ratio(mode),
                        # elapsed without / with: the same ratio from wall time
                        f"{mode}_wall_ratio": 1.0 / round_ratio(mode, "elapsed_s"),
                        f"{mode}_round_ratios": [a["clips_per_s"] / b["clips_per_s"] for a, b in
                                                 zip(runs[f"{mode}-video"], runs[f"{mode}-novideo"])]})
        row["pass"] = all(row[f"{mode}_ratio"] >= targets[mode] for mode in video_modes)
        rows.append(row)
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
            parts = []
            for mode, target in (("batch", 0.6), ("rolling", 0.92)):
                if f"{mode}_ratio" in row:
                    parts.append(f"{mode if mode == 'batch' else 'rolling s1'} {row[f'{mode}_with_video']:.2f} vs "
                                 f"{row[f'{mode}_without']:.2f} clips/s = {row[f'{mode}_ratio']:.2f}x (>= {target}; "
                                 f"wall {row[f'{mode}_wall_ratio']:.2f}x)")
            print(f"video, {row['resolution']} H.264, {row['precision']}: " + "; ".join(parts)
                  + f" -> {'PASS' if row['pass'] else 'MISS'}")
    if rows:
        machine = rows[0]["machine"]
        print(f"{machine.get('cpu_model')}, {machine.get('logical_cores')} logical cores, OpenVINO "
              f"{machine.get('openvino')}, edge-har {machine.get('version')}; medians of {rounds} round(s)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
