"""What the benchmark suites share: the machine tag, cached inputs (model, ONNX, INT8, videos),
measuring a child process (CPU time, peak RSS, RSS samples) and steady-state rates.

Inputs are cached under ``$EDGE_HAR_HOME/bench`` (default ``~/.cache/edge-har/bench``),
keyed by what they are made from, so a second run does not rebuild them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent


def machine() -> dict:
    """The machine and versions every result row carries (``edge.info.machine_info``)."""
    from edge.info import machine_info

    return machine_info()


def bench_cache() -> Path:
    from edge.models.paths import edge_home

    path = edge_home() / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_digest(path, length: int = 12) -> str:
    """SHA-1 of a file's bytes (its first ``length`` hex digits); an IR includes its ``.bin``."""
    digest = hashlib.sha1()
    path = Path(path)
    for part in (path, path.with_suffix(".bin")) if path.suffix == ".xml" else (path,):
        if part.is_file():
            with open(part, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:length]


def demo_onnx() -> Path:
    """The demo model (seed 0) exported to ONNX, cached: the one file both pipelines load."""
    from edge.models.demo import demo_metadata, demo_weights, export_onnx

    path = bench_cache() / "demo-seed0.onnx"
    if not path.is_file():
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        export_onnx(demo_weights(0), tmp, demo_metadata(0))
        tmp.replace(path)
    return path


def onnx_for(model) -> Path:
    """The ONNX file the seed's pipeline (``cv2.dnn.readNetFromONNX``) loads for ``model``.

    An ``.onnx`` is itself; an ``.xml`` needs an ``.onnx`` of the same stem beside it
    (``edge-har model fetch`` leaves both). ``ValueError`` otherwise.
    """
    path = Path(model)
    if path.suffix.lower() == ".onnx":
        return path
    sibling = path.with_suffix(".onnx")
    if sibling.is_file():
        return sibling
    raise ValueError(f"the seed's pipeline (cv2.dnn) needs the model as ONNX: put {sibling.name} beside {path} "
                     f"or pass --model MODEL.onnx")


def bench_video(width: int, height: int, frames: int, path=None, fps: float = 25.0) -> Path:
    """A moving-shapes video (mp4v), cached by size and length unless ``path`` is given."""
    from edge.synthetic import write_moving_shapes_video

    target = Path(path) if path else bench_cache() / f"shapes-{width}x{height}-{frames}f.mp4"
    if not target.is_file():
        tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
        write_moving_shapes_video(tmp, frames, width, height, fps=fps, seed=0, codec="mp4v")
        tmp.replace(target)
    return target


def h264_video(width: int, height: int, seconds: int, fps: int = 25) -> Path:
    """``seconds`` of moving shapes as real H.264 (the ffmpeg command, libx264 veryfast, crf 23,
    GOP 1 s, yuv420p) — what cameras send — cached by size and length."""
    target = bench_cache() / f"shapes-{width}x{height}-{seconds}s-h264.mp4"
    if not target.is_file():
        source = bench_video(width, height, seconds * fps, fps=float(fps))
        tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source), "-c:v", "libx264",
                        "-preset", "veryfast", "-crf", "23", "-g", str(fps), "-pix_fmt", "yuv420p", "-f", "mp4",
                        str(tmp)], check=True)
        tmp.replace(target)
    return target


def video_info(path) -> dict:
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        return {"video": str(path), "width": int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                "height": int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                "frames": int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), "fps": capture.get(cv2.CAP_PROP_FPS)}
    finally:
        capture.release()


def int8_model(model, calibration_video, subset: int = 32) -> Path:
    """``model`` quantised to INT8 with NNCF on clips of ``calibration_video``; cached by both files' hashes."""
    from edge.models.quantize import quantize_model

    key = f"{file_digest(model)}-{file_digest(calibration_video)}-{subset}"
    out_dir = bench_cache() / "int8" / key
    found = sorted(out_dir.glob("*-int8.xml")) if out_dir.is_dir() else []
    if found and found[0].with_suffix(".bin").is_file():
        return found[0]
    report = quantize_model(model, [calibration_video], out_dir, subset=subset)
    return Path(report.path)


def bench_int8(model) -> Path:
    """The INT8 model every suite compares: ``model`` quantised with NNCF on the cached 10 s
    1920×1080 H.264 clip (16 calibration clips), cached — the same file for ``bench_e2e`` and
    ``bench_serve``, so their INT8 rows are one model."""
    return int8_model(model, h264_video(1920, 1080, 10), subset=16)


def python_env() -> dict:
    """The environment for child processes: this interpreter's, with the repo importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_DIR), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def measure_process(argv: list[str], sample_s: float = 0.1, timeout_s: float = 1800.0,
                    stop_after_s: float | None = None, stop_event: threading.Event | None = None) -> dict:
    """Run ``argv`` and measure it from outside: ``wall_s``, ``cpu_s`` (user+system, from the
    kernel's rusage at exit), ``peak_rss_mb`` (the child's VmHWM), ``samples`` — a list of
    ``[epoch_s, cpu_s, rss_mb]`` taken every ``sample_s`` with psutil (when installed), and the
    child's ``returncode`` / ``stderr_tail``. The child's own numbers are its own: nothing
    of this process is counted. ``stop_after_s``: send the child SIGTERM then (a service);
    ``stop_event``: send it SIGTERM when the event is set (another thread decides; the event is
    set here too once the child has exited, so that thread can tell).
    """
    try:
        import psutil
    except ImportError:
        psutil = None
    started = time.time()
    process = subprocess.Popen(argv, env=python_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, errors="replace")
    samples: list[list[float]] = []
    high_water = [0.0]
    stderr_lines: list[str] = []
    reader = threading.Thread(target=lambda: stderr_lines.extend(process.stderr), daemon=True)
    reader.start()
    done = threading.Event()

    def sample():
        if psutil is None:
            return
        try:
            handle = psutil.Process(process.pid)
            while not done.is_set():
                with handle.oneshot():
                    cpu = handle.cpu_times()
                    rss = handle.memory_info().rss
                samples.append([time.time(), cpu.user + cpu.system, rss / 2**20])
                high_water[0] = max(high_water[0], _vm_hwm_mb(process.pid) or 0.0)
                done.wait(sample_s)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timer = threading.Timer(timeout_s, process.kill)
    timer.start()
    stopper = threading.Timer(stop_after_s, process.send_signal, (signal.SIGTERM,)) if stop_after_s else None
    if stopper is not None:
        stopper.start()
    if stop_event is not None:
        def stop_on_event():
            stop_event.wait()
            if not done.is_set():
                process.send_signal(signal.SIGTERM)

        threading.Thread(target=stop_on_event, daemon=True).start()
    try:
        # wait4 reaps this very child and returns its own rusage (RUSAGE_CHILDREN would mix runs).
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
        if stopper is not None:
            stopper.cancel()
        done.set()
        if stop_event is not None:
            stop_event.set()
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - started
    sampler.join(1.0)
    reader.join(5.0)
    return {
        "returncode": process.returncode,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        # ru_maxrss survives execve (it would report the parent's size at fork), so the peak is
        # the kernel's high-water mark of the child's own address space, read while it runs.
        "peak_rss_mb": max(high_water[0], max((s[2] for s in samples), default=0.0)) or None,
        "samples": samples,
        "stderr_tail": "".join(stderr_lines[-15:]),
    }


def _vm_hwm_mb(pid: int) -> float | None:
    """The peak resident set (``VmHWM``) of ``pid`` in MiB, from /proc (Linux); None elsewhere."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def cpu_utilisation(samples: list, start: float, end: float, cores: int) -> float | None:
    """Process CPU time / wall / cores between epoch ``start`` and ``end`` from ``measure_process``
    samples (linear interpolation between samples); None if the window is not covered."""
    if len(samples) < 2 or end <= start:
        return None

    def cpu_at(t):
        for (t0, c0, _), (t1, c1, _) in zip(samples, samples[1:]):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * ((t - t0) / (t1 - t0) if t1 > t0 else 0.0)
        return None

    first, last = cpu_at(start), cpu_at(min(end, samples[-1][0]))
    if first is None or last is None:
        return None
    span = min(end, samples[-1][0]) - start
    return (last - first) / span / cores if span > 0 else None


def parse_wall_time(text: str) -> float:
    """An events.jsonl ``wall_time`` (ISO 8601 with offset) as epoch seconds."""
    return datetime.fromisoformat(text).timestamp()


def steady_state(clips: list[dict], warmup_fraction: float = 0.1, tail: int = 1) -> dict:
    """Rates over the steady part of a run.

    ``clips``: one dict per prediction in completion order with ``done`` (epoch s),
    ``end_frame`` and ``latency_ms`` (frame-to-label). The first clip and the first
    ``warmup_fraction`` of the clips (compile, caches, filling the pipeline) and the last
    ``tail`` (the drain burst at end of file) are left out. Returns ``clips_per_s``,
    ``frames_per_s`` (source frames advanced per second), ``latency_p50_ms``,
    ``latency_p99_ms``, ``window`` (start, end epoch) and ``steady_clips``; rates are None
    when fewer than 3 clips remain.
    """
    n = len(clips)
    first = max(1, int(n * warmup_fraction + 0.999))
    last = n - 1 - tail
    result = {"clips_total": n, "steady_clips": max(0, last - first + 1), "clips_per_s": None,
              "frames_per_s": None, "latency_p50_ms": None, "latency_p99_ms": None, "window": None}
    if last - first < 2:
        first, last = (0, n - 1) if n >= 2 else (0, 0)  # too short to trim: the whole run, flagged below
        result["steady_clips"] = 0
    if n >= 2 and last > first:
        span = clips[last]["done"] - clips[first]["done"]
        if span > 0:
            result["clips_per_s"] = (last - first) / span
            result["frames_per_s"] = (clips[last]["end_frame"] - clips[first]["end_frame"]) / span
            result["window"] = [clips[first]["done"], clips[last]["done"]]
    latencies = [c["latency_ms"] for c in clips[first:last + 1] if c.get("latency_ms") is not None]
    if latencies:
        result["latency_p50_ms"] = percentile(latencies, 50)
        result["latency_p99_ms"] = percentile(latencies, 99)
    return result


def percentile(values, q: float) -> float:
    """Linear-interpolated percentile (as ``numpy.percentile``)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def slope(xs, ys) -> float | None:
    """The least-squares slope of ``ys`` over ``xs`` (None with fewer than two distinct ``xs``)."""
    pairs = [(float(x), float(y)) for x, y in zip(xs, ys) if x is not None and y is not None]
    if len({x for x, _ in pairs}) < 2:
        return None
    mean_x = sum(x for x, _ in pairs) / len(pairs)
    mean_y = sum(y for _, y in pairs) / len(pairs)
    return (sum((x - mean_x) * (y - mean_y) for x, y in pairs)
            / sum((x - mean_x) ** 2 for x, _ in pairs))


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def print_json_lines(rows: list[dict]) -> None:
    for row in rows:
        print(json.dumps(row, sort_keys=True))


PYTHON = sys.executable


def suite_parser(doc: str) -> argparse.ArgumentParser:
    """The flags every end-to-end suite script shares: --quick, --smoke (CI), --model."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # CI: tiny everything
    parser.add_argument("--model", help="model (.xml, .onnx or a directory); default: the demo model")
    return parser
