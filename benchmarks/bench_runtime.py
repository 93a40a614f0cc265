"""Latency per clip of the demo model: OpenVINO f32 / bf16 (auto) / INT8, latency and throughput
hints, against OpenCV DNN and ONNX Runtime on the same ONNX file.

    python benchmarks/bench_runtime.py [--quick] [--model ONNX] [--int8 XML] [--repeats N]

The model is an .onnx (default: the demo model, seed 0, exported once and cached), or an .xml
with its .onnx beside it; without --int8 it is quantised once on a small generated clip and cached.
Setup (export, compile, quantise, one warm-up call) stays outside the timed region;
the runtimes are timed in interleaved rounds and each reports medians. Prints a table and
one JSON line per result (tagged with machine, cores and OpenVINO version).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edge.models.loading import load_model
from edge.runtime import compile_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (shared with the other suites)




def _runners(model_path: Path, int8_path: Path | None, quick: bool) -> dict:
    """name -> (implementation tag, callable(clip T,C,H,W) running one clip). All setup happens here."""
    model, info = load_model(model_path)
    runners = {}
    for name, precision, hint in (("openvino f32", "f32", "latency"), ("openvino bf16 (auto)", "auto", "latency"),
                                  ("openvino f32 throughput", "f32", "throughput")):
        if quick and "throughput" in name:
            continue
        classifier = compile_model(model, info, precision=precision, performance_hint=hint)
        runners[name] = (f"openvino-{classifier.precision}-{hint}", classifier.infer)
    if int8_path is None:  # quantised once per model and calibration clip, then cached
        int8_path = common.int8_model(model_path, common.bench_video(160, 120, 32))
    int8 = compile_model(*load_model(int8_path))
    runners["openvino int8"] = (f"openvino-int8-{int8.precision}", int8.infer)

    onnx_path = common.onnx_for(model_path)  # the same model file for every runtime
    net = cv2.dnn.readNetFromONNX(str(onnx_path))

    def run_cv2(clip):
        net.setInput(np.ascontiguousarray(clip[None].transpose(0, 2, 1, 3, 4)))
        return net.forward()

    runners["cv2.dnn"] = (f"opencv-{cv2.__version__}", run_cv2)
    try:
        import onnxruntime as ort
    except ImportError:
        pass
    else:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        runners["onnxruntime"] = (f"onnxruntime-{ort.__version__}",
                                  lambda clip: session.run(None, {"clip": np.ascontiguousarray(
                                      clip[None].transpose(0, 2, 1, 3, 4))}))
    return runners


def run(quick: bool = False, model=None, int8=None, repeats: int | None = None) -> list[dict]:
    """Benchmark every runtime; returns one dict per runtime (p50/p90 ms per clip, clips/s)."""
    repeats = repeats or (5 if quick else 20)
    model_path = Path(model) if model else common.demo_onnx()
    runners = _runners(model_path, Path(int8) if int8 else None, quick)
    clip = np.random.default_rng(0).uniform(-110, 140, (16, 3, 112, 112)).astype(np.float32)
    for _, call in runners.values():
        call(clip)  # warm-up, untimed
    times = {name: [] for name in runners}
    for _ in range(repeats):  # interleaved: every runtime once per round
        for name, (_, call) in runners.items():
            start = time.perf_counter_ns()
            call(clip)
            times[name].append((time.perf_counter_ns() - start) / 1e6)
    machine = common.machine()
    results = []
    for name, (implementation, _) in runners.items():
        p50, p90 = np.percentile(times[name], [50, 90])
        machine_fields = {k: v for k, v in machine.items() if k != "implementation"}
        results.append({**machine_fields, "benchmark": "runtime_latency", "runtime": name,
                        "implementation": implementation, "preprocess": machine.get("implementation"),
                        "model": str(model_path), "clip": "1x16x3x112x112", "repeats": repeats,
                        "p50_ms": round(float(p50), 2), "p90_ms": round(float(p90), 2),
                        "clips_per_s": round(1000.0 / float(p50), 2)})
    return results


def format_table(results: list[dict]) -> str:
    lines = [f"{'runtime':26} {'p50 ms':>9} {'p90 ms':>9} {'clips/s':>8}  implementation", "-" * 78]
    for r in results:
        lines.append(f"{r['runtime']:26} {r['p50_ms']:9.1f} {r['p90_ms']:9.1f} {r['clips_per_s']:8.2f}  "
                     f"{r['implementation']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no throughput-hint run")
    parser.add_argument("--model", help="model to benchmark: .onnx, or .xml with its .onnx beside it (default: the demo model)")
    parser.add_argument("--int8", help="an INT8 IR to use instead of quantising the model here")
    parser.add_argument("--repeats", type=int)
    args = parser.parse_args(argv)
    results = run(args.quick, args.model, args.int8, args.repeats)
    print(format_table(results))
    for result in results:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
