"""Per-frame cost of writing the annotated video: cv2 mp4v against PyAV H.264 (libx264 presets).

The input is a real H.264 1080p 25 fps clip made once with the ``ffmpeg`` command
(``testsrc2`` with light temporal noise, like a camera's sensor noise) and cached.
Its frames are decoded to BGR before timing (and resized to 1280x720 for the
``max_width`` default). Each encoder writes the whole clip to an MP4 file; its
wall and CPU time (this process, every thread) per frame are timed, encoders
interleaved round by round, median reported. The ``pyav`` rows convert and encode
exactly as ``VideoSink``'s encoder thread does (OpenCV I420 → ``from_numpy_buffer``
→ encode → mux; ``t1``/``t2``: x264 threads, ``bf0``: no B-frames); the ``VideoSink``
row times the sink itself with its defaults (ultrafast, no B-frames, 1 thread) from
the caller's side (write every frame, close). Also timed: the BGR→yuv420p conversion
choices and the 1080p→720p resize a lane does before drawing (from BGR, or from a
decoder's yuv420p planes). Bitrate and luma PSNR (decoded back by PyAV, every 5th
frame) say what each preset buys.

    PYTHONPATH=$PWD python benchmarks/bench_encode.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from edge.sinks.video import VideoSink, resize_for_video, video_image_from_planes  # noqa: E402

RESOLUTIONS = ((1920, 1080), (1280, 720))
PRESETS = ("ultrafast", "superfast", "veryfast")
CRF = 23
FPS = 25


def source_clip(seconds: int) -> Path:
    """A real H.264 1080p 25 fps clip (libx264, yuv420p), made with ffmpeg once and cached."""
    target = common.bench_cache() / f"testsrc2-noise-1920x1080-{seconds}s.mp4"
    if not target.is_file():
        if shutil.which("ffmpeg") is None:
            raise SystemExit("bench_encode needs the ffmpeg command to make its input clip")
        tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", f"testsrc2=size=1920x1080:rate={FPS},noise=alls=2:allf=t", "-t", str(seconds),
                        "-c:v", "libx264", "-preset", "medium", "-crf", "20", "-pix_fmt", "yuv420p",
                        "-f", "mp4", str(tmp)], check=True)
        tmp.replace(target)
    return target


def decode_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


# ------------------------------------------------------------------------------------- encoders

def _pyav_encoder(preset: str, threads: int, x264_params: str = ""):
    options = {"preset": preset, "crf": str(CRF), "threads": str(threads)}
    if x264_params:
        options["x264-params"] = x264_params

    def encode(frames: list[np.ndarray], path: Path) -> None:
        height, width = frames[0].shape[:2]
        with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=FPS, options=dict(options))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for index, image in enumerate(frames):
                frame = av.VideoFrame.from_numpy_buffer(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420),
                                                        format="yuv420p")
                frame.pts = index
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    return encode


def _mp4v(frames: list[np.ndarray], path: Path) -> None:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (width, height))
    try:
        for image in frames:
            writer.write(image)
    finally:
        writer.release()


def _sink():
    def encode(frames: list[np.ndarray], path: Path) -> None:
        height, width = frames[0].shape[:2]
        sink = VideoSink(path, FPS, (width, height), max_width=0, hwaccel="none", crf=CRF)
        for image in frames:
            sink.write(image)
        sink.close()
    return encode


def encoders(quick: bool) -> dict:
    runners = {"cv2 mp4v": _mp4v}
    for preset in PRESETS:
        runners[f"pyav libx264 {preset} t1"] = _pyav_encoder(preset, 1)
    runners["pyav libx264 superfast bf0 t1"] = _pyav_encoder("superfast", 1, "bframes=0")
    if not quick:
        runners["pyav libx264 ultrafast t2"] = _pyav_encoder("ultrafast", 2)
    runners["VideoSink (default)"] = _sink()
    return runners


def _luma_psnr(path: Path, frames: list[np.ndarray], every: int = 5) -> float | None:
    """PSNR of the luma plane, decoded file against the input's BT.601 Y (what the encoder lost;
    4:2:0 chroma subsampling, the same for every encoder here, is left out)."""
    errors = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % every or index >= len(frames):
                continue
            height = frame.height
            decoded = frame.reformat(format="yuv420p").to_ndarray()[:height].astype(np.float32)
            source = cv2.cvtColor(frames[index], cv2.COLOR_BGR2YUV_I420)[:height].astype(np.float32)
            errors.append(np.mean((decoded - source) ** 2))
    mse = float(np.mean(errors)) if errors else 0.0
    return 10.0 * np.log10(255.0 ** 2 / mse) if mse > 0 else None


def run_encode(frames_1080: list[np.ndarray], rounds: int, quick: bool, machine: dict, video: Path) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="edge-har-bench-encode-") as scratch:
        for width, height in RESOLUTIONS:
            frames = frames_1080 if width == 1920 else [resize_for_video(f, (width, height)) for f in frames_1080]
            frames = [np.ascontiguousarray(f) for f in frames]
            runners = encoders(quick)
            wall = {name: [] for name in runners}
            cpu = {name: [] for name in runners}
            paths = {name: Path(scratch) / f"{name.replace(' ', '_')}-{width}.mp4" for name in runners}
            for _ in range(rounds):
                for name, runner in runners.items():  # interleaved, so drift and neighbours hit all alike
                    start_wall, start_cpu = time.perf_counter_ns(), time.process_time_ns()
                    runner(frames, paths[name])
                    wall[name].append((time.perf_counter_ns() - start_wall) / 1e6 / len(frames))
                    cpu[name].append((time.process_time_ns() - start_cpu) / 1e6 / len(frames))
            for name in runners:
                size_bits = paths[name].stat().st_size * 8
                rows.append({
                    "benchmark": "encode", "implementation": name, "resolution": f"{width}x{height}",
                    "wall_ms_per_frame": statistics.median(wall[name]),
                    "cpu_ms_per_frame": statistics.median(cpu[name]),
                    "mbit_per_s": size_bits / (len(frames) / FPS) / 1e6, "psnr_y_db": _luma_psnr(paths[name], frames),
                    "frames": len(frames), "rounds": rounds, "machine": machine,
                    "settings": {"video": str(video), "crf": CRF, "fps": FPS},
                })
    return rows


# ------------------------------------------------------------------------------------- conversion, resize

def _time_per_frame(function, frames, rounds: int) -> tuple[float, float]:
    function(frames[0])  # warm-up: tables, thread pools
    walls, cpus = [], []
    for _ in range(rounds):
        start_wall, start_cpu = time.perf_counter_ns(), time.process_time_ns()
        for image in frames:
            function(image)
        walls.append((time.perf_counter_ns() - start_wall) / 1e6 / len(frames))
        cpus.append((time.process_time_ns() - start_cpu) / 1e6 / len(frames))
    return statistics.median(walls), statistics.median(cpus)


def _planes(frames: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """yuv420p planes (Y, U, V) of BGR frames, as a PyAV source delivers them."""
    result = []
    for image in frames:
        height, width = image.shape[:2]
        flat = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).reshape(-1)
        area = width * height
        result.append((flat[:area].reshape(height, width),
                       flat[area:area * 5 // 4].reshape(height // 2, width // 2),
                       flat[area * 5 // 4:].reshape(height // 2, width // 2)))
    return result


def run_steps(frames_1080: list[np.ndarray], rounds: int, machine: dict, video: Path) -> list[dict]:
    frames_720 = [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_AREA) for f in frames_1080]
    steps = [
        ("convert", "cv2 I420 + from_numpy_buffer", frames_720,
         lambda im: av.VideoFrame.from_numpy_buffer(cv2.cvtColor(im, cv2.COLOR_BGR2YUV_I420), format="yuv420p")),
        ("convert", "from_ndarray bgr24 + reformat", frames_720,
         lambda im: av.VideoFrame.from_ndarray(im, format="bgr24").reformat(format="yuv420p")),
        ("convert", "from_numpy_buffer bgr24 + reformat", frames_720,
         lambda im: av.VideoFrame.from_numpy_buffer(im, format="bgr24").reformat(format="yuv420p")),
        ("resize", "cv2 INTER_AREA", frames_1080,
         lambda im: cv2.resize(im, (1280, 720), interpolation=cv2.INTER_AREA)),
        ("resize", "cv2 INTER_LINEAR", frames_1080,
         lambda im: cv2.resize(im, (1280, 720), interpolation=cv2.INTER_LINEAR)),
        ("resize", "planes: video_image_from_planes", _planes(frames_1080[:50]),
         lambda planes: video_image_from_planes(*planes, (1280, 720))),
    ]
    rows = []
    for benchmark, name, frames, function in steps:
        wall, cpu = _time_per_frame(function, frames, rounds)
        height, width = (frames[0][0] if isinstance(frames[0], tuple) else frames[0]).shape[:2]
        rows.append({"benchmark": benchmark, "implementation": name, "resolution": f"{width}x{height}",
                     "wall_ms_per_frame": wall, "cpu_ms_per_frame": cpu, "mbit_per_s": None, "psnr_y_db": None,
                     "frames": len(frames), "rounds": rounds, "machine": machine,
                     "settings": {"video": str(video), "opencv_threads": cv2.getNumThreads()}})
    return rows


def run(quick: bool = False) -> list[dict]:
    video = source_clip(2 if quick else 6)
    frames = decode_frames(video)
    rounds = 1 if quick else 3
    machine = common.machine()
    return run_encode(frames, rounds, quick, machine, video) + run_steps(frames, rounds * 2, machine, video)


def _cell(value, digits):
    return "—" if value is None else f"{value:.{digits}f}"


def format_table(rows: list[dict]) -> str:
    header = f"{'step':<8}{'implementation':<36}{'resolution':<11}{'wall ms':>9}{'CPU ms':>9}{'Mbit/s':>8}{'Y PSNR':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row['benchmark']:<8}{row['implementation']:<36}{row['resolution']:<11}"
                     f"{_cell(row['wall_ms_per_frame'], 2):>9}{_cell(row['cpu_ms_per_frame'], 2):>9}"
                     f"{_cell(row['mbit_per_s'], 2):>8}{_cell(row['psnr_y_db'], 1):>8}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 2 s clip, one round, fewer encoders")
    parser.add_argument("--json", metavar="PATH", help="also write the JSON lines to PATH")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick)
    machine = rows[0]["machine"]
    print(f"# {machine['cpu_model']}, {machine['logical_cores']} logical cores, OpenCV {machine['opencv']}, "
          f"PyAV {av.__version__}; per frame, median of {rows[0]['rounds']} round(s), crf {CRF}, "
          f"{rows[0]['frames']} frames of {Path(rows[0]['settings']['video']).name}")
    print(format_table(rows))
    lines = [json.dumps(row, sort_keys=True) for row in rows]
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
