"""Per-frame preprocessing time: native extension, NumPy twin and cv2.dnn.blobFromImages.

blobFromImages gets 16 frames per call (its time is divided by 16); the native and twin
implementations preprocess the same 16 distinct frames one by one into a preallocated
slot. Setup stays out of the timed region, implementations are interleaved repeat by
repeat, and the median is reported.

    python benchmarks/bench_preprocess.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import cv2
import numpy as np

import edge.preprocess
from edge.info import machine_info

RESOLUTIONS = ((640, 480), (1280, 720), (1920, 1080))
FRAMES_PER_CALL = 16
SIZE = 112


def _frames(width: int, height: int, count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    base = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    return [np.ascontiguousarray(np.roll(base, 7 * i, axis=1)) for i in range(count)]


def _runners(frames: list[np.ndarray]) -> dict:
    out = np.empty((3, SIZE, SIZE), np.float32)
    mean = edge.preprocess.KINETICS_MEAN

    def per_frame(module):
        def run():
            for frame in frames:
                module.preprocess_frame(frame, out)
        return run

    def blob():
        cv2.dnn.blobFromImages(frames, 1.0, (SIZE, SIZE), mean, swapRB=True, crop=True)

    runners = {"numpy": per_frame(edge.preprocess.implementation("numpy")), "blobFromImages": blob}
    if edge.preprocess.NATIVE_AVAILABLE:
        runners = {"native": per_frame(edge.preprocess.implementation("native")), **runners}
    return runners


def run(quick: bool = False) -> list[dict]:
    """Benchmark every implementation at every resolution; one dict per result."""
    repeats, calls = (5, 3) if quick else (21, 10)
    machine = machine_info()
    results = []
    for width, height in RESOLUTIONS:
        runners = _runners(_frames(width, height, FRAMES_PER_CALL))
        samples = {name: [] for name in runners}
        for runner in runners.values():  # warm-up: tables, caches, OpenCV thread pool
            runner()
        for _ in range(repeats):
            for name, runner in runners.items():  # interleaved, so drift hits all alike
                start = time.perf_counter_ns()
                for _ in range(calls):
                    runner()
                samples[name].append((time.perf_counter_ns() - start) / (calls * FRAMES_PER_CALL))
        for name, values in samples.items():
            results.append({
                "benchmark": "preprocess_frame",
                "implementation": name,
                "resolution": f"{width}x{height}",
                "size": SIZE,
                "median_ms_per_frame": statistics.median(values) / 1e6,
                "min_ms_per_frame": min(values) / 1e6,
                "repeats": repeats,
                "frames_per_sample": calls * FRAMES_PER_CALL,
                "machine": machine,
            })
    return results


def format_table(results: list[dict]) -> str:
    names = list(dict.fromkeys(r["implementation"] for r in results))
    resolutions = list(dict.fromkeys(r["resolution"] for r in results))
    cell = {(r["resolution"], r["implementation"]): r["median_ms_per_frame"] for r in results}
    header = f"{'resolution':<11}" + "".join(f"{name + ' ms':>20}" for name in names)
    if "native" in names:
        header += f"{'native/blob':>13}{'twin/native':>13}"
    lines = [header, "-" * len(header)]
    for resolution in resolutions:
        line = f"{resolution:<11}" + "".join(f"{cell[resolution, name]:>20.4f}" for name in names)
        if "native" in names:
            native = cell[resolution, "native"]
            line += f"{native / cell[resolution, 'blobFromImages']:>13.2f}{cell[resolution, 'numpy'] / native:>12.1f}x"
        lines.append(line)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the JSON lines to PATH")
    args = parser.parse_args(argv)
    results = run(quick=args.quick)
    lines = [json.dumps(result, sort_keys=True) for result in results]
    machine = results[0]["machine"]
    print(f"# {machine['cpu_model']}, {machine['logical_cores']} logical cores, OpenCV {machine['opencv']}, "
          f"OpenVINO {machine['openvino']}; median ms per frame, 112x112 output")
    print(format_table(results))
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
