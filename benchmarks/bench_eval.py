"""``edge-har eval``: clips/s on a folder of clips vs the bare model, and the ``--sweep`` time over a day.

    python benchmarks/bench_eval.py [--quick] [--model M] [--scenarios clips,sweep] [--clips 24]
                                    [--clip-seconds 2] [--size 320x240] [--lanes 8] [--json OUT]

- ``clips``: ``edge.eval.evaluate`` (the engine of ``edge-har run``: file cameras, throughput mode,
  ``--lanes`` videos per service run) on a labelled-clips folder of ``--clips`` moving-shapes videos
  (mp4v, ``--size``, ``--clip-seconds`` each) vs ``bare_model.py``'s saturated AsyncInferQueue
  (throughput hint, the same model and precision). eval's clips/s = inferred clips / wall time of
  the whole evaluate call (truth reading, model compile per service run, decoding, inference,
  metrics). Target ≥ 0.85×.
- ``sweep``: a synthetic day of events (one camera, stride 8 at 25 fps: 270 000 prediction lines,
  top_k only, one activity in ~300 true segments); timed separately: reading the lines
  (``predict.read_events``), building the score tracks, and the 100-point grid
  (``sweep.sweep``, 20 min_score × 5 gap_s). Target: the grid under 10 s.

Inputs are cached under ``$EDGE_HAR_HOME/bench``; setup is outside the timed regions. One JSON line
per result (with the machine), then a table.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bare_model
import common

DAY_S = 86_400
STEP_S = 8 / 25.0
CLASSES = ("abseiling", "air drumming")


def clips_scenario(model: str, clips: int, seconds: float, size: tuple[int, int], lanes: int, rounds: int) -> list:
    from edge.config import config_from_mapping
    from edge.eval import evaluate, predict

    video = common.bench_video(size[0], size[1], int(seconds * 25))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as folder:
        data = Path(folder) / "clips"
        for number in range(clips):
            target = data / CLASSES[number % 2] / f"{number:03d}.mp4"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(video)
        cache = common.bench_cache() / "ov-cache"
        config = config_from_mapping({"model": {"path": str(model)}, "inference": {"cache_dir": str(cache)}})
        predict.LANES_PER_RUN = lanes
        evaluate(data, config)  # warm: the compiled-model cache, the page cache
        for _ in range(rounds):  # interleaved: the bare model right before each eval round
            bare = bare_model.run(str(model), hint="throughput", seconds=6.0)
            started = time.perf_counter()
            result = evaluate(data, config)
            elapsed = time.perf_counter() - started
            inferred = sum(1 for lines in result.records.values() for _, r in lines
                           if r.get("event", "prediction") == "prediction" and not r.get("gated"))
            rate = inferred / elapsed
            rows.append({"bench": "eval_clips", "videos": clips, "clip_seconds": seconds,
                         "size": f"{size[0]}x{size[1]}", "lanes_per_run": lanes, "inferred_clips": inferred,
                         "elapsed_s": round(elapsed, 3), "eval_clips_per_s": round(rate, 2),
                         "bare_clips_per_s": round(bare["async_clips_per_s"], 2),
                         "ratio": round(rate / bare["async_clips_per_s"], 3), "precision": bare["precision"],
                         "num_requests": bare["num_requests"], **common.machine()})
    if rows:
        median = round(statistics.median(row["ratio"] for row in rows), 3)
        rows.append({**rows[-1], "bench": "eval_clips_median", "ratio": median, "rounds": len(rows)})
    return rows


def synthetic_day(folder: Path, seconds: float = DAY_S) -> tuple[Path, Path]:
    """(data folder with annotations.csv and day.mp4, events file): top_k lines every 0.32 s."""
    rng = random.Random(0)
    data = folder / "day"
    data.mkdir(parents=True, exist_ok=True)
    (data / "day.mp4").write_bytes(b"")
    truth, t = [], 60.0
    while t < seconds - 120:
        length = rng.uniform(10, 60)
        truth.append((t, t + length))
        t += length + rng.uniform(60, 500)
    (data / "annotations.csv").write_text("video,start_s,end_s,activity\n" + "".join(
        f"day.mp4,{a:.2f},{b:.2f},handwash\n" for a, b in truth), encoding="utf-8")
    events = folder / "events.jsonl"
    source = str(data / "day.mp4")
    inside = iter(truth)
    current = next(inside, None)
    with open(events, "w", encoding="utf-8") as handle:
        k = 1
        while k * STEP_S < seconds:
            t = k * STEP_S
            while current is not None and t > current[1]:
                current = next(inside, None)
            active = current is not None and current[0] <= t <= current[1]
            wash = rng.uniform(0.5, 0.95) if active and rng.random() > 0.1 else rng.uniform(0.0, 0.3)
            rest = (1 - wash) / 4
            top_k = [{"label": "washing hands", "score": round(wash, 6)}] + [
                {"label": label, "score": round(rest, 6)} for label in ("abseiling", "air drumming", "archery",
                                                                          "arm wrestling")]
            top_k.sort(key=lambda item: -item["score"])
            handle.write(json.dumps({"source": source, "camera": "day", "run_id": "r1", "clip_index": k,
                                     "start_frame": 8 * k - 15, "end_frame": 8 * k, "start_time_s": t - 0.6,
                                     "end_time_s": round(t, 6), "wall_time": "2026-01-01T00:00:00+00:00",
                                     "label": top_k[0]["label"], "score": top_k[0]["score"], "top_k": top_k,
                                     "model": "m", "untrained": False}) + "\n")
            k += 1
    return data, events


def sweep_scenario(seconds: float) -> list:
    from edge.eval import predict, sweep
    from edge.eval.metrics import truth_by_activity
    from edge.eval.truth import read_truth
    from edge.models.registry import bundled_labels

    folder = common.bench_cache() / f"eval-day-{int(seconds)}s"
    data, events = folder / "day", folder / "events.jsonl"
    if not events.is_file():
        data, events = synthetic_day(folder, seconds)
    labels = bundled_labels()
    activities = {"handwash": {"labels": ["washing hands"], "min_score": 0.5, "gap_s": 2.0}}
    truth = read_truth(data, labels=labels, activities=activities, rules=())
    t0 = time.perf_counter()
    records = predict.read_events([str(events)], list(truth.videos), need_scores=False)
    t1 = time.perf_counter()
    tracks = sweep.tracks({str(v): lines for v, lines in records.items()}, activities, labels, "media")
    t2 = time.perf_counter()
    result = sweep.sweep(tracks, truth_by_activity(truth.segments))
    t3 = time.perf_counter()
    lines = sum(len(lines) for lines in records.values())
    return [{"bench": "eval_sweep", "lines": lines, "true_segments": len(truth.segments),
             "grid_points": len(result["handwash"]["grid"]), "read_s": round(t1 - t0, 3),
             "tracks_s": round(t2 - t1, 3), "grid_s": round(t3 - t2, 3), "total_s": round(t3 - t0, 3),
             "best": result["handwash"]["best"], **common.machine()}]


def main(argv=None) -> int:
    parser = common.suite_parser(__doc__)
    parser.add_argument("--scenarios", default="clips,sweep")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--clip-seconds", type=float, default=2.0)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--lanes", type=int, default=8, help="videos per service run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", help="also write the JSON lines here")
    args = parser.parse_args(argv)
    scenarios = args.scenarios.split(",")
    model = args.model or str(common.demo_onnx())
    size = tuple(int(v) for v in args.size.split("x"))
    clips, rounds, day_s = args.clips, args.rounds, DAY_S
    if args.quick or args.smoke:
        clips, rounds, day_s = (4, 1, 3600) if args.smoke else (12, 1, DAY_S)
    rows = []
    if "clips" in scenarios:
        rows += clips_scenario(model, clips, args.clip_seconds, size, args.lanes, rounds)
    if "sweep" in scenarios:
        rows += sweep_scenario(day_s)
    common.print_json_lines(rows)
    if args.json:
        Path(args.json).write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows), encoding="utf-8")
    for row in rows:
        if row["bench"] == "eval_clips_median":
            print(f"clips: median ratio over {row['rounds']} rounds: {row['ratio']} (target >= 0.85)")
        elif row["bench"] == "eval_clips":
            print(f"clips: {row['videos']} videos, {row['inferred_clips']} clips in {row['elapsed_s']} s: "
                  f"eval {row['eval_clips_per_s']} clips/s, bare model {row['bare_clips_per_s']} clips/s, "
                  f"ratio {row['ratio']} (target >= 0.85; {row['precision']}, {row['lanes_per_run']} lanes/run)")
        else:
            print(f"sweep: {row['lines']} lines, {row['grid_points']} points: read {row['read_s']} s, tracks "
                  f"{row['tracks_s']} s, grid {row['grid_s']} s (target < 10 s), best {row['best']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
