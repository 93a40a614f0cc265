"""Per-frame preprocessing time: native extension, NumPy twin and cv2.dnn.blobFromImages.

Suites (``--suite``, default all):

- ``kernel``: blobFromImages gets 16 frames per call (its time is divided by 16); the native
  and twin implementations preprocess the same 16 distinct frames one by one into a
  preallocated slot.
- ``motion``: the still-scene gate's cost: a slot write with the motion measure (against the
  previous slot) vs without, per frame, and a whole ``ClipRing.push`` / ``push_yuv``.
- ``decode``: decode + preprocess CPU per 1080p frame of a real H.264 clip (libx264, made by
  the ffmpeg command): (a) cv2.VideoCapture (BGR) + ``push``, vs (b) PyAV decode with the
  planes handed straight to ``push_yuv`` (no BGR conversion), plus references. CPU time is
  ``time.process_time`` (every thread of this process: decoder threads count).

Setup stays out of the timed region, implementations are interleaved repeat by repeat, and
the median is reported.

    python benchmarks/bench_preprocess.py [--quick] [--suite kernel,motion,decode] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

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


def _timed(samples: dict, runners: dict, repeats: int, per_sample: int, clock=time.perf_counter_ns) -> None:
    for runner in runners.values():  # warm-up: tables, caches
        runner()
    for _ in range(repeats):
        for name, runner in runners.items():  # interleaved, so drift hits all alike
            start = clock()
            runner()
            samples.setdefault(name, []).append((clock() - start) / per_sample)


def run_motion(quick: bool = False) -> list[dict]:
    """The gate's own cost: slot writes with and without the fused motion measure, per frame."""
    repeats, calls = (5, 3) if quick else (21, 10)
    machine = machine_info()
    # The twin's yuv path converts the whole frame in int64 (~0.1 s at 1080p): only without the extension.
    names = ["native"] if edge.preprocess.NATIVE_AVAILABLE else ["numpy"]
    results = []
    for width, height in RESOLUTIONS:
        frames = _frames(width, height, FRAMES_PER_CALL)
        planes = [_planes(frame) for frame in frames]
        for name in names:
            hotpath = edge.preprocess.implementation(name)
            writer = hotpath.SlotWriter(SIZE)
            out, previous = np.zeros((3, SIZE, SIZE), np.float32), np.zeros((3, SIZE, SIZE), np.float32)
            ring = hotpath.ClipRing(clip_len=16, size=SIZE)

            def loop(body):
                def run():
                    for _ in range(calls):
                        for index in range(FRAMES_PER_CALL):
                            body(index)
                return run

            runners = {
                "write": loop(lambda i: writer.write(frames[i], out)),
                "write+motion": loop(lambda i: writer.write(frames[i], out, previous)),
                "ring.push": loop(lambda i: ring.push(frames[i])),
                "write_yuv": loop(lambda i: writer.write_yuv(*planes[i], out)),
                "write_yuv+motion": loop(lambda i: writer.write_yuv(*planes[i], out, previous)),
                "ring.push_yuv": loop(lambda i: ring.push_yuv(*planes[i])),
            }
            samples: dict = {}
            # Thread CPU time: on a shared machine, time spent preempted is not the kernel's.
            _timed(samples, runners, repeats, calls * FRAMES_PER_CALL, clock=time.thread_time_ns)
            for operation, values in samples.items():
                results.append({
                    "benchmark": "motion", "implementation": name, "operation": operation,
                    "resolution": f"{width}x{height}", "size": SIZE,
                    "median_us_per_frame": statistics.median(values) / 1e3, "min_us_per_frame": min(values) / 1e3,
                    "repeats": repeats, "frames_per_sample": calls * FRAMES_PER_CALL, "clock": "thread_time",
                    "machine": machine,
                })
    return results


def _planes(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    height, width = frame.shape[:2]
    i420 = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).reshape(-1)
    y = i420[: width * height].reshape(height, width)
    u = i420[width * height : width * height * 5 // 4].reshape(height // 2, width // 2)
    v = i420[width * height * 5 // 4 :].reshape(height // 2, width // 2)
    return y, u, v


def format_motion_table(results: list[dict]) -> str:
    cell = {(r["resolution"], r["implementation"], r["operation"]): r["median_us_per_frame"] for r in results}
    lines = []
    for name in dict.fromkeys(r["implementation"] for r in results):
        header = (f"{name:<7}{'resolution':<11}{'write':>9}{'+motion':>9}{'gate':>8}{'push':>9}"
                  f"{'yuv':>9}{'+motion':>9}{'gate':>8}{'push_yuv':>10}   (median thread-CPU µs per frame)")
        lines += [header, "-" * len(header)]
        for resolution in dict.fromkeys(r["resolution"] for r in results):
            c = {op: cell[resolution, name, op] for op in ("write", "write+motion", "ring.push", "write_yuv",
                                                          "write_yuv+motion", "ring.push_yuv")}
            lines.append(f"{'':<7}{resolution:<11}{c['write']:>9.1f}{c['write+motion']:>9.1f}"
                         f"{c['write+motion'] - c['write']:>+8.1f}{c['ring.push']:>9.1f}{c['write_yuv']:>9.1f}"
                         f"{c['write_yuv+motion']:>9.1f}{c['write_yuv+motion'] - c['write_yuv']:>+8.1f}"
                         f"{c['ring.push_yuv']:>10.1f}")
    return "\n".join(lines)


DECODE_FRAMES = 100


def decode_clip(frames: int = DECODE_FRAMES, width: int = 1920, height: int = 1080) -> Path:
    """A 1080p 25 fps H.264 clip (libx264 medium, crf 23, yuv420p) of ffmpeg's testsrc2 with temporal
    noise (a camera's grain keeps the bitrate honest), made once by the ffmpeg command and cached."""
    from common import bench_cache

    path = bench_cache() / f"testsrc2-noise-{width}x{height}-{frames}f-x264.mp4"
    if not path.is_file():
        tmp = path.with_name(f".tmp-{path.name}")
        command = [shutil.which("ffmpeg"), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                   f"testsrc2=size={width}x{height}:rate=25", "-vf", "noise=alls=6:allf=t", "-frames:v", str(frames),
                   "-c:v", "libx264", "-preset", "medium", "-crf", "23", "-pix_fmt", "yuv420p", "-f", "mp4", str(tmp)]
        subprocess.run(command, check=True)
        tmp.replace(path)
    return path


def _decode_runners(path: Path) -> dict:
    import av

    native = edge.preprocess.implementation("native" if edge.preprocess.NATIVE_AVAILABLE else "numpy")
    ring = native.ClipRing(clip_len=16, size=SIZE)

    def cv2_bgr_push():
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            ring.push(frame)
        capture.release()

    def pyav(body):
        def run():
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    body(frame)
        return run

    def planes_push_yuv(frame):
        ring.push_yuv(*(np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
                        for plane in frame.planes))

    def to_ndarray_push_yuv(frame):
        i420 = frame.to_ndarray(format="yuv420p")  # one (H*3/2)×W copy of the planes
        height, width = frame.height, frame.width
        chroma = i420[height:].reshape(-1)
        ring.push_yuv(i420[:height], chroma[: chroma.size // 2].reshape(height // 2, width // 2),
                      chroma[chroma.size // 2 :].reshape(height // 2, width // 2))

    return {
        "a: cv2.VideoCapture BGR + push": cv2_bgr_push,
        "b: PyAV planes + push_yuv": pyav(planes_push_yuv),
        "b': PyAV to_ndarray(yuv420p) + push_yuv": pyav(to_ndarray_push_yuv),
        "ref: PyAV to_ndarray(bgr24) + push": pyav(lambda frame: ring.push(frame.to_ndarray(format="bgr24"))),
        "ref: PyAV decode only": pyav(lambda frame: None),
    }


def run_decode(quick: bool = False) -> list[dict]:
    """Decode + preprocess CPU (and wall) per 1080p frame, today's path vs YUV straight into the ring."""
    repeats = 3 if quick else 7
    path = decode_clip()
    runners = _decode_runners(path)
    cpu: dict = {}
    wall: dict = {}
    for _ in range(repeats + 1):  # the first round warms up (file cache, libraries) and is dropped
        for name, runner in runners.items():
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            runner()
            cpu.setdefault(name, []).append((time.process_time() - start_cpu) / DECODE_FRAMES)
            wall.setdefault(name, []).append((time.perf_counter() - start_wall) / DECODE_FRAMES)
    machine = machine_info()
    baseline = statistics.median(cpu["a: cv2.VideoCapture BGR + push"][1:])
    return [{
        "benchmark": "decode_preprocess", "path": name, "video": path.name, "resolution": "1920x1080",
        "frames": DECODE_FRAMES, "median_cpu_ms_per_frame": statistics.median(cpu[name][1:]) * 1e3,
        "median_wall_ms_per_frame": statistics.median(wall[name][1:]) * 1e3,
        "cpu_vs_a": statistics.median(cpu[name][1:]) / baseline, "repeats": repeats,
        "implementation": edge.preprocess.IMPLEMENTATION, "machine": machine,
    } for name in runners]


def format_decode_table(results: list[dict]) -> str:
    header = f"{'path (1080p H.264, per frame)':<44}{'CPU ms':>9}{'wall ms':>9}{'CPU vs a':>10}"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(f"{r['path']:<44}{r['median_cpu_ms_per_frame']:>9.2f}{r['median_wall_ms_per_frame']:>9.2f}"
                     f"{r['cpu_vs_a']:>10.2f}")
    return "\n".join(lines)


SUITES = ("kernel", "motion", "decode")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--suite", default=",".join(SUITES), help=f"comma-separated subset of {', '.join(SUITES)}")
    parser.add_argument("--json", metavar="PATH", help="also write the JSON lines to PATH")
    args = parser.parse_args(argv)
    suites = [name.strip() for name in args.suite.split(",") if name.strip()]
    unknown = set(suites) - set(SUITES)
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(sorted(unknown))}; choose from {', '.join(SUITES)}")
    machine = machine_info()
    print(f"# {machine['cpu_model']}, {machine['logical_cores']} logical cores, OpenCV {machine['opencv']}, "
          f"OpenVINO {machine['openvino']}; 112x112 output")
    lines = []
    if "kernel" in suites:
        results = run(quick=args.quick)
        print("# kernel: median ms per frame")
        print(format_table(results))
        lines += [json.dumps(result, sort_keys=True) for result in results]
    if "motion" in suites:
        results = run_motion(quick=args.quick)
        print("# motion: the gate's measure fused into the slot write")
        print(format_motion_table(results))
        lines += [json.dumps(result, sort_keys=True) for result in results]
    if "decode" in suites:
        if shutil.which("ffmpeg") is None:
            print("# decode: skipped (needs the ffmpeg command)")
        else:
            results = run_decode(quick=args.quick)
            print("# decode + preprocess: median per frame over the clip (CPU = all threads of this process)")
            print(format_decode_table(results))
            lines += [json.dumps(result, sort_keys=True) for result in results]
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
