"""Still-scene gate: the motion the hot path measures on still camera footage vs a moving object.

A textured still scene gets fresh Gaussian sensor noise every frame (σ grey levels per pixel and
channel), is H.264-encoded by the ffmpeg command (libx264, veryfast, a 1 s GOP like a camera, crf
as given) so the compression noise and the keyframe pulses are real, decoded by PyAV and pushed as
yuv420p planes into the clip ring (``ClipRing.push_yuv``, the production path). The same is done
with a textured square of 15 % of the frame's area moving a few pixels per frame (a person-sized
object), and with the noisy still frames pushed uncompressed (kind "raw": a USB camera). Reported: the per-frame motion (mean |slot - previous slot|, grey levels) and the
clip-level value the gate compares (``max_motion`` over 16-frame clips), and the recommended
``gating.min_motion``: between the largest still clip and the smallest moving clip.

    python benchmarks/bench_gate_noise.py [--quick] [--size 1280x720] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

import edge.preprocess
from edge.info import machine_info

CLIP_LEN = 16
FPS = 25


def scene(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A still BGR scene with detail at several scales (walls, objects, edges)."""
    rng = np.random.default_rng(seed)
    picture = np.zeros((height, width, 3), np.float32)
    for cells, weight in ((4, 0.5), (24, 0.3), (120, 0.2)):
        coarse = rng.uniform(0, 255, (cells * height // width + 2, cells + 2, 3)).astype(np.float32)
        picture += weight * cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(12):  # hard edges: furniture, door frames
        x, y = rng.integers(0, width), rng.integers(0, height)
        cv2.rectangle(picture, (int(x), int(y)), (int(x + rng.integers(20, width // 4)), int(y + rng.integers(20, height // 4))),
                      tuple(float(c) for c in rng.uniform(0, 255, 3)), -1)
    return np.clip(picture, 0, 255).astype(np.uint8)


def frames(kind: str, width: int, height: int, count: int, sigma: float, step: int, seed: int = 0):
    """BGR frames: the still scene (+ noise), or with a textured square moving ``step`` px/frame."""
    background = scene(width, height, seed).astype(np.float32)
    side = int(round((0.15 * width * height) ** 0.5))
    patch = scene(side, side, seed + 1).astype(np.float32)
    rng = np.random.default_rng(seed + 2)
    for index in range(count):
        picture = background.copy()
        if kind == "moving":
            # Back and forth across the centre crop, so the object stays in view.
            travel = max(1, (width - side) // 2)
            offset = (step * index) % (2 * travel)
            x = width // 4 + (offset if offset < travel else 2 * travel - offset) - travel // 2
            x = int(np.clip(x, 0, width - side))
            y = (height - side) // 2
            picture[y : y + side, x : x + side] = patch
        if sigma > 0:
            picture += rng.normal(0.0, sigma, picture.shape).astype(np.float32)
        yield np.clip(picture, 0, 255).astype(np.uint8)


def encode(path: Path, source, width: int, height: int, crf: int) -> None:
    command = [shutil.which("ffmpeg"), "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
               "-s", f"{width}x{height}", "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "veryfast",
               "-crf", str(crf), "-g", str(FPS), "-pix_fmt", "yuv420p", str(path)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    for frame in source:
        process.stdin.write(frame.tobytes())
    process.stdin.close()
    if process.wait() != 0:
        raise RuntimeError(f"ffmpeg failed: {process.stderr.read().decode(errors='replace')}")


def _collect(pushes, hotpath, interpolation: str) -> dict:
    """Per-frame motion (frames 1.., keyframes apart) and, per 16-frame clip (every 4th frame as
    the last), max_motion (what the gate compares), the second largest, and whether a keyframe
    is inside. ``pushes`` yields (push(ring) -> seq, is_keyframe)."""
    ring = hotpath.ClipRing(clip_len=CLIP_LEN, size=112, capacity=2 * CLIP_LEN, interpolation=interpolation)
    keyframes: dict[int, bool] = {}
    found = {"p_frames": [], "keyframes": [], "clips_max": [], "clips_max_no_key": [], "clips_second": []}
    for push, key in pushes:
        seq = push(ring)
        keyframes[seq] = key
        if seq == 0:
            continue  # 255: no previous frame
        found["keyframes" if key else "p_frames"].append(ring.motion(seq))
        if seq >= CLIP_LEN and seq % 4 == 0:
            first = seq - CLIP_LEN + 1
            found["clips_max"].append(ring.max_motion(first, seq))
            found["clips_second"].append(ring.max_motion(first, seq, ignore_largest=1))
            if not any(keyframes[s] for s in range(first, seq + 1)):
                found["clips_max_no_key"].append(ring.max_motion(first, seq))
    return found


def measure(path: Path, hotpath, interpolation: str) -> dict:
    """The H.264 file decoded by PyAV, its planes pushed with push_yuv."""
    import av

    def pushes():
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                planes = tuple(np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
                               for plane in frame.planes)
                yield (lambda ring, planes=planes: ring.push_yuv(*planes)), bool(frame.key_frame)

    return _collect(pushes(), hotpath, interpolation)


def measure_raw(source, hotpath, interpolation: str) -> dict:
    """Uncompressed frames (a USB camera's raw or MJPEG-like output) pushed as BGR."""
    return _collect((((lambda ring, frame=frame: ring.push(frame)), False) for frame in source), hotpath, interpolation)


def quantiles(values: list[float]) -> dict:
    ordered = np.asarray(sorted(values))
    return {"min": float(ordered[0]), "p10": float(np.percentile(ordered, 10)), "p50": float(np.median(ordered)),
            "p90": float(np.percentile(ordered, 90)), "p99": float(np.percentile(ordered, 99)), "max": float(ordered[-1])}


def run(quick: bool = False, width: int = 1280, height: int = 720, interpolations=("linear", "area")) -> list[dict]:
    hotpath = edge.preprocess.implementation("native" if edge.preprocess.NATIVE_AVAILABLE else "numpy")
    count = 4 * CLIP_LEN + 1 if quick else 12 * CLIP_LEN + 1
    sigmas = (3.0,) if quick else (2.0, 3.0, 4.0)
    crfs = (23, 28) if quick else (23, 28)
    cases = [("still", sigma, crf, 0) for sigma in sigmas for crf in crfs]
    cases += [("moving", sigma, crf, step) for sigma in (max(sigmas),) for crf in crfs for step in (1, 2, 4)]
    cases += [("raw", sigma, 0, 0) for sigma in sigmas]  # crf 0 here: not encoded at all
    machine = machine_info()
    results = []
    with tempfile.TemporaryDirectory(prefix="edge-gate-") as folder:
        for kind, sigma, crf, step in cases:
            path = Path(folder) / f"{kind}-{sigma}-{crf}-{step}.mp4"
            if kind != "raw":
                encode(path, frames(kind, width, height, count, sigma, step), width, height, crf)
            for interpolation in interpolations:
                if kind == "raw":
                    found = measure_raw(frames("still", width, height, count, sigma, 0), hotpath, interpolation)
                else:
                    found = measure(path, hotpath, interpolation)
                results.append({
                    "benchmark": "gate_noise", "kind": kind, "sigma": sigma, "crf": crf, "step_px": step,
                    "interpolation": interpolation, "resolution": f"{width}x{height}",
                    "frames": len(found["p_frames"]) + len(found["keyframes"]) + 1, "gop": FPS,
                    "implementation": hotpath.name, "clips": len(found["clips_max"]), "machine": machine,
                    **{name: quantiles(values) for name, values in found.items() if values},
                })
    return results


def recommend(results: list[dict], interpolation: str) -> dict:
    """Thresholds between still and moving clips (geometric mean of the two edges), for the gate as
    contracted (max_motion: a keyframe pulse counts) and for still clips without a keyframe.
    H.264 footage only; raw (unencoded) noise is reported beside it."""
    raw = [r for r in results if r["interpolation"] == interpolation and r["kind"] == "raw"]
    rows = [r for r in results if r["interpolation"] == interpolation and r["kind"] != "raw"]
    moving = min(r["clips_max"]["min"] for r in rows if r["kind"] == "moving")
    still = max(r["clips_max"]["max"] for r in rows if r["kind"] == "still")
    still_p = max(r["clips_max_no_key"]["max"] for r in rows if r["kind"] == "still" and "clips_max_no_key" in r)
    still_second = max(r["clips_second"]["max"] for r in rows if r["kind"] == "still")
    moving_second = min(r["clips_second"]["min"] for r in rows if r["kind"] == "moving")

    def between(low, high):
        return round((low * high) ** 0.5, 2) if high > low else None

    return {"interpolation": interpolation, "moving_clip_min": moving, "still_clip_max": still,
            "still_clip_max_without_keyframe": still_p, "still_clip_second_max": still_second,
            "moving_clip_second_min": moving_second,
            "min_motion_all_still_clips": between(still, moving),
            "min_motion_still_clips_without_keyframe": between(still_p, moving),
            "min_motion_on_second_largest": between(still_second, moving_second),
            "raw_noise_clip_max": {str(r["sigma"]): r["clips_max"]["max"] for r in raw}}


def format_table(results: list[dict]) -> str:
    header = (f"{'kind':<7}{'σ':>4}{'crf':>5}{'px/f':>6}{'interp':>8} | {'P-frame p50':>11}{'p99':>7}"
              f"{'keyframe p50':>13} | {'clip max: min':>13}{'max':>7}{'no-key max':>11}{'2nd max':>8}")
    lines = [header, "-" * len(header)]
    for r in results:
        p, k, c = r["p_frames"], r.get("keyframes", {"p50": float("nan")}), r["clips_max"]
        no_key = r.get("clips_max_no_key", {"max": float("nan")})["max"]
        lines.append(f"{r['kind']:<7}{r['sigma']:>4.0f}{r['crf']:>5}{r['step_px']:>6}{r['interpolation']:>8} | "
                     f"{p['p50']:>11.3f}{p['p99']:>7.3f}{k['p50']:>13.3f} | {c['min']:>13.3f}{c['max']:>7.3f}"
                     f"{no_key:>11.3f}{r['clips_second']['max']:>8.3f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames and cases (a smoke run)")
    parser.add_argument("--size", default="1280x720", help="frame size WxH (default 1280x720)")
    parser.add_argument("--json", metavar="PATH", help="also write the JSON lines to PATH")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        print("bench_gate_noise: needs the ffmpeg command", file=sys.stderr)
        return 2
    width, height = (int(part) for part in args.size.lower().split("x"))
    results = run(quick=args.quick, width=width, height=height)
    lines = [json.dumps(result, sort_keys=True) for result in results]
    machine = results[0]["machine"]
    print(f"# {machine['cpu_model']}; {width}x{height} H.264 (libx264 veryfast, GOP {FPS}), decoded by PyAV, "
          f"push_yuv into a 112x112 ring ({results[0]['implementation']}); motion in grey levels")
    print(format_table(results))
    for interpolation in dict.fromkeys(r["interpolation"] for r in results):
        advice = recommend(results, interpolation)
        lines.append(json.dumps({"benchmark": "gate_noise_recommendation", **advice}, sort_keys=True))
        print(f"# {interpolation}: smallest moving clip {advice['moving_clip_min']:.3f}; largest still clip "
              f"{advice['still_clip_max']:.3f} (keyframe pulse), without a keyframe "
              f"{advice['still_clip_max_without_keyframe']:.3f} -> min_motion gating every still clip: "
              f"{advice['min_motion_all_still_clips']}, still clips between keyframes: "
              f"{advice['min_motion_still_clips_without_keyframe']}; on the 2nd largest frame: "
              f"{advice['min_motion_on_second_largest']}; uncompressed noise clips by σ: {advice['raw_noise_clip_max']}")
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
