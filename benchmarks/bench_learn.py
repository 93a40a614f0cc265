"""``edge-har learn``: feature extraction clips/s vs the bare model, and the time to train a head.

    python benchmarks/bench_learn.py [--quick] [--model M] [--scenarios extract,train] [--videos 24]
                                     [--clip-seconds 2] [--size 320x240] [--precisions f32,bf16] [--int8]
                                     [--rounds 2] [--clips 1000] [--classes 5] [--json OUT]

- ``extract``: ``edge.learn.features.extract`` with the cache off (the engine of ``edge-har run``:
  file cameras, batch clips, throughput mode, the model loaded with its pooled feature as a second
  output) on ``--videos`` real H.264 videos (libx264 from ffmpeg, ``--size``, ``--clip-seconds``) vs
  ``bare_model.py``'s saturated AsyncInferQueue (throughput hint, the same model and precision), run
  right before each round. clips/s = inferred clips / wall time of the whole extract call (model
  load and compile, decoding, preprocessing, inference). Target ≥ 0.85×. Per precision; ``--int8``
  adds the NNCF INT8 model every suite compares.
- ``train``: ``edge.learn.train.fit_head`` (standardise, 5-fold CV over the L2 grid, refit) on
  ``--clips`` feature vectors of ``--classes`` classes (512-d, non-negative like the pooled ReLU
  output, class means apart by about one standard deviation, 5 clips per video as groups). Target
  ≤ 10 s for 1,000 clips of 5 classes.

Inputs are cached under ``$EDGE_HAR_HOME/bench``; setup is outside the timed regions. One JSON line
per result (with the machine), then a table; the median over ``--rounds``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bare_model
import common


def extract_scenario(model: str, videos: int, seconds: int, size: tuple[int, int], precisions: list[str],
                     rounds: int, label: str = "") -> list:
    from edge.config import config_from_mapping
    from edge.learn.features import extract

    video = common.h264_video(size[0], size[1], seconds)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-learn-") as folder:
        paths = []
        for number in range(videos):  # distinct paths of one encoded file: the cache is off anyway
            target = Path(folder) / f"{number:03d}.mp4"
            target.symlink_to(video)
            paths.append(target)
        for precision in precisions:
            config = config_from_mapping({"model": {"path": str(model)},
                                          "inference": {"cache_dir": str(common.bench_cache() / "ov-cache"),
                                                        "precision": precision}})
            extract(config, paths[:2], use_cache=False)  # warm: the compiled-model cache, the page cache
            ratios = []
            for _ in range(rounds):
                bare = bare_model.run(str(model), precision=precision, hint="throughput", seconds=6.0)
                started = time.perf_counter()
                got = extract(config, paths, use_cache=False)
                elapsed = time.perf_counter() - started
                clips = sum(len(clip["start_s"]) for clip in got.clips.values())
                rate = clips / elapsed
                ratios.append(rate / bare["async_clips_per_s"])
                rows.append({"bench": "learn_extract", "model": label or Path(model).name, "videos": videos,
                             "clip_seconds": seconds, "size": f"{size[0]}x{size[1]}", "codec": "h264",
                             "clips": clips, "elapsed_s": round(elapsed, 3), "extract_clips_per_s": round(rate, 2),
                             "bare_clips_per_s": round(bare["async_clips_per_s"], 2), "ratio": round(ratios[-1], 3),
                             "precision": bare["precision"], **common.machine()})
            rows.append({**rows[-1], "bench": "learn_extract_median", "ratio": round(statistics.median(ratios), 3),
                         "rounds": len(ratios)})
    return rows


def synthetic_features(clips: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.gamma(2.0, 0.5, (classes, 512))
    labels = np.arange(clips) % classes
    features = np.maximum(centres[labels] + rng.normal(0.0, 0.6, (clips, 512)), 0.0).astype(np.float32)
    groups = np.arange(clips) // (5 * classes) * classes + labels  # 5 clips of one class per video
    return features, labels, groups


def train_scenario(clips: int, classes: int, rounds: int) -> list:
    from edge.learn.train import fit_head

    features, labels, groups = synthetic_features(clips, classes)
    times, rows = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        head = fit_head(features, labels, classes, groups=groups)
        times.append(time.perf_counter() - started)
        rows.append({"bench": "learn_train", "clips": clips, "classes": classes, "features": 512,
                     "seconds": round(times[-1], 3), "l2": head.l2, "cv_accuracy": round(head.cv_accuracy, 3),
                     **common.machine()})
    rows.append({**rows[-1], "bench": "learn_train_median", "seconds": round(statistics.median(times), 3),
                 "rounds": len(times)})
    return rows


def main(argv=None) -> int:
    parser = common.suite_parser(__doc__)
    parser.add_argument("--scenarios", default="extract,train")
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--clip-seconds", type=int, default=2)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--precisions", default="f32,bf16")
    parser.add_argument("--int8", action="store_true", help="also the NNCF INT8 model (extra: quantize)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--json", help="also write the JSON lines here")
    args = parser.parse_args(argv)
    scenarios = args.scenarios.split(",")
    model = args.model or str(common.demo_onnx())
    size = tuple(int(v) for v in args.size.split("x"))
    videos, rounds, clips = args.videos, args.rounds, args.clips
    if args.quick or args.smoke:
        videos, rounds, clips = (2, 1, 100) if args.smoke else (12, 1, clips)
    rows = []
    if "extract" in scenarios:
        rows += extract_scenario(model, videos, args.clip_seconds, size, args.precisions.split(","), rounds)
        if args.int8:
            rows += extract_scenario(str(common.bench_int8(model)), videos, args.clip_seconds, size, ["auto"],
                                     rounds, label="int8")
    if "train" in scenarios:
        rows += train_scenario(clips, args.classes, rounds)
    common.print_json_lines(rows)
    if args.json:
        Path(args.json).write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows), encoding="utf-8")
    for row in rows:
        if row["bench"] == "learn_extract_median":
            print(f"extract {row['model']} {row['precision']}: median ratio over {row['rounds']} rounds: "
                  f"{row['ratio']} (target >= 0.85)")
        elif row["bench"] == "learn_extract":
            print(f"extract {row['model']} {row['precision']}: {row['videos']} videos, {row['clips']} clips in "
                  f"{row['elapsed_s']} s: {row['extract_clips_per_s']} clips/s, bare model "
                  f"{row['bare_clips_per_s']} clips/s, ratio {row['ratio']}")
        elif row["bench"] == "learn_train_median":
            print(f"train: {row['clips']} clips of {row['classes']} classes: median {row['seconds']} s over "
                  f"{row['rounds']} rounds (target <= 10 s)")
        elif row["bench"] == "learn_train":
            print(f"train: {row['seconds']} s, L2 {row['l2']:g}, cross-validated accuracy {row['cv_accuracy']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
