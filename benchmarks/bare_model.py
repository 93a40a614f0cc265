"""The bare compiled model's throughput: the ceiling the pipeline is compared with.

Compiled exactly as ``edge-har run`` compiles it (``edge.runtime.compile_model``: same precision,
same performance hint, the device's optimal number of requests for that hint), then:

- ``async_clips_per_s``: an ``AsyncInferQueue`` kept saturated (every request busy) for
  ``--seconds``; finished clips / wall time.
- ``sync_clips_per_s``: 1 / the median latency of synchronous ``infer`` calls.

One input clip, prepared before timing. One JSON object goes to ``--out``.

    python benchmarks/bare_model.py --model M.onnx --precision auto --out bare.json [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np


def run(model: str, precision: str = "auto", hint: str = "latency", seconds: float = 5.0) -> dict:
    from edge.models.loading import load_model
    from edge.runtime import compile_model

    ov_model, info = load_model(model)
    started = time.perf_counter()
    classifier = compile_model(ov_model, info, precision=precision, performance_hint=hint)
    compile_s = time.perf_counter() - started
    clip = np.random.default_rng(0).uniform(-110, 140, (info.clip_len, 3, info.size, info.size)).astype(np.float32)
    classifier.infer(clip)  # warm-up, untimed

    latencies = []
    deadline = time.perf_counter() + seconds / 2
    while time.perf_counter() < deadline or len(latencies) < 3:
        t0 = time.perf_counter_ns()
        classifier.infer(clip)
        latencies.append((time.perf_counter_ns() - t0) / 1e6)

    import openvino as ov

    requests = classifier.optimal_num_requests
    queue = ov.AsyncInferQueue(classifier.compiled, requests)
    done = [0]
    queue.set_callback(lambda request, _: done.__setitem__(0, done[0] + 1))
    batch = clip[None]
    for _ in range(requests):  # fill, untimed
        queue.start_async({0: batch}, None, share_inputs=True)
    queue.wait_all()
    done[0] = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds / 2
    submitted = 0
    while time.perf_counter() < deadline or submitted < 3:
        queue.start_async({0: batch}, None, share_inputs=True)  # blocks while every request is busy
        submitted += 1
    queue.wait_all()
    elapsed = time.perf_counter() - t0
    p50 = statistics.median(latencies)
    return {"precision": classifier.precision, "requested_precision": precision, "hint": hint,
            "num_requests": requests, "compile_s": compile_s, "latency_p50_ms": p50,
            "sync_clips_per_s": 1000.0 / p50, "async_clips_per_s": submitted / elapsed,
            "async_clips": submitted, "sync_clips": len(latencies)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--precision", default="auto", choices=("auto", "f32", "bf16", "f16"))
    parser.add_argument("--hint", default="latency", choices=("latency", "throughput"))
    parser.add_argument("--seconds", type=float, default=5.0, help="time budget (half sync, half async)")
    parser.add_argument("--out", help="write the JSON result here (default: stdout)")
    args = parser.parse_args(argv)
    result = run(args.model, args.precision, args.hint, args.seconds)
    text = json.dumps(result)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
