"""Several live cameras on one model: memory, fairness under overload, and how many cameras the box holds.

    python benchmarks/bench_serve.py [--quick] [--seconds 60] [--model M] [--int8 [MODEL]] [--json OUT]
                                     [--scenarios memory,fairness,capacity,holds,sweep]
                                     [--resolution 640x360] [--cameras 4,5,6,7,8 | --cameras 4+] [--strides 4,8]
                                     [--precision int8|auto|f32|bf16] [--settle 5] [--stop-at-miss]

Live cameras are ffmpeg ``-re`` HTTP streams (MPEG-TS, the H.264 copied, looped) of a 25 fps
H.264 clip (``--resolution``, default 1920×1080; made once with the ffmpeg command and cached) on
127.0.0.1, one server per camera; ``edge-har serve`` runs as a child process with one config
holding every camera.

The timed window: setup — encoding the clip, quantising INT8, starting the streams, the service's
start-up and model compilation — is outside it. The window opens ``--settle`` seconds after every
camera has written its first label and lasts ``--seconds``; then the service is stopped with
SIGTERM. Over the window, per run: clips/s needed (cameras × fps / stride) and done (labels in the
window / its length), skipped clips (the ``clip_index`` numbers missing between consecutive labels
— a skipped clip writes no line — count and % of the clips offered), frame-to-label p50/p99 (the
events' ``latency_ms.end_to_end``, every camera's labels pooled; the worst camera's p99 too), the
service's RSS (median of 0.1 s samples in the window, and the peak) and its CPU share.
``summary.json``'s whole-run ``skipped_clips`` (start-up and shutdown included) is kept beside it
(``run_skipped``) as a check: if it counts many skips but no ``clip_index`` is missing anywhere
(``gap_skipped``), the row gets a ``warning``. A run *holds* when no clip is skipped in the
window, p99 < 500 ms and every camera labelled in it.

- ``sweep``: ``--cameras`` (a list, or ``N+``: N, N+1, … until the first miss) at each of
  ``--strides``, ``--precision`` (default INT8: the demo model quantised with NNCF, cached, or
  ``--int8 MODEL``). Per stride: the most cameras held, and the memory per added camera (the
  least-squares slope of the window RSS over the camera count). The bare model's throughput
  (``bare_model.py``, throughput hint, every request busy; measured once before the runs) gives
  each run's load (needed / bare).
- ``memory``: peak RSS of ``serve`` with 4 cameras vs 1 camera (target ≤ 1.3×).
- ``fairness``: 3 identical cameras at rolling stride 2 (more than the box can infer): each
  camera's clips/s within ±15 % of their mean, the sum ≥ 0.85× the bare model's throughput at
  the same precision.
- ``capacity``: ``--precision`` (INT8), 4 cameras at stride 4: skipped clips (target 0) and
  frame-to-label p99 (target < 500 ms).
- ``holds``: the largest number of cameras that hold at stride 4 and 16, for bf16 (auto) and
  INT8, found by doubling then bisecting.

Prints JSON lines (each with the machine — CPU, cores, OpenVINO and edge-har versions — and the
precision) and a table. Without the ``ffmpeg`` command it says so and exits 1.
"""

from __future__ import annotations

import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SCENARIOS = ("memory", "fairness", "capacity", "holds", "sweep")
DEFAULT_SCENARIOS = ("memory", "fairness", "capacity", "holds")
P99_LIMIT_MS = 500.0
FPS = 25
CLIP_SECONDS = 10
LEVELS = {  # the window, the settle time before it, the bare model's seconds
    "full": {"seconds": 60.0, "settle": 5.0, "bare": 8.0},
    "quick": {"seconds": 20.0, "settle": 3.0, "bare": 3.0},
    "smoke": {"seconds": 2.0, "settle": 0.5, "bare": 1.0},
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Streams:
    """``count`` ffmpeg servers, each serving ``clip`` looped in real time on its own 127.0.0.1 port."""

    def __init__(self, clip: Path, count: int) -> None:
        self.processes, self.urls = [], []
        try:
            for _ in range(count):
                port = _free_port()
                url = f"http://127.0.0.1:{port}/live.ts"
                self.processes.append(subprocess.Popen(
                    ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
                     "-c", "copy", "-f", "mpegts", "-listen", "1", url],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                self.urls.append(url)
            for port in (int(url.split(":")[2].split("/")[0]) for url in self.urls):
                _wait_listening(port)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)


def _wait_listening(port: int, timeout_s: float = 15.0) -> None:
    """Wait until something listens on ``port`` (read from /proc: a probe connection would be its client)."""
    needle = f":{port:04X} "
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table, encoding="ascii") as handle:
                    if any(needle in line and line.split()[3] == "0A" for line in handle):
                        return
            except OSError:
                continue
        time.sleep(0.05)  # polling an external process's socket table, bounded by the deadline
    raise RuntimeError(f"ffmpeg did not listen on port {port}")


# ------------------------------------------------------------------------- one measured run

def predictions(path: Path) -> list[dict]:
    """A camera's labels from its events.jsonl, in file order: ``done`` (epoch s), ``clip_index``,
    ``end_frame``, ``latency_ms`` (frame-to-label). Other lines (``"event"`` keys: gaps) are left out."""
    found = []
    if not path.is_file():
        return found
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        if "event" in event:
            continue
        found.append({"done": common.parse_wall_time(event["wall_time"]), "clip_index": event["clip_index"],
                      "end_frame": event["end_frame"],
                      "latency_ms": (event.get("latency_ms") or {}).get("end_to_end")})
    return found


def _has_label(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            return any(line.strip() and '"event"' not in line for line in handle)
    except OSError:
        return False


def window_numbers(labels: list[dict], start: float, end: float) -> dict:
    """One camera's labels whose ``done`` is in [start, end): ``done`` (count), ``skipped`` (the
    ``clip_index`` numbers missing just before each of them: a skipped clip writes no line), and
    their ``latencies`` (ms)."""
    done = skipped = 0
    latencies = []
    previous = None
    for label in labels:
        if start <= label["done"] < end:
            done += 1
            if previous is not None:
                skipped += max(0, label["clip_index"] - previous["clip_index"] - 1)
            if label["latency_ms"] is not None:
                latencies.append(label["latency_ms"])
        previous = label
    return {"done": done, "skipped": skipped, "latencies": latencies}


def _watch_window(paths: list[Path], stop: threading.Event, settle_s: float, seconds: float,
                  startup_timeout_s: float, window: dict) -> None:
    """Open the window once every camera has a label (+ ``settle_s``), close it ``seconds`` later and
    set ``stop`` (the service gets SIGTERM). ``stop`` set by ``measure_process`` (the service ended)
    ends the watch early. ``window`` gets ``ready``, ``start``, ``end`` or ``error``."""
    began = time.time()
    while not all(_has_label(path) for path in paths):
        if stop.wait(0.2):  # polls the child's files; returns at once if the service exited
            window["error"] = "the service ended before every camera had a label"
            return
        if time.time() - began > startup_timeout_s:
            window["error"] = f"not every camera had a label after {startup_timeout_s:.0f} s"
            stop.set()
            return
    window["ready"] = time.time()
    window["start"] = window["ready"] + settle_s
    window["end"] = window["start"] + seconds
    if stop.wait(window["end"] + 0.5 - time.time()):
        window["error"] = "the service ended inside the window"
        return
    stop.set()


def serve_run(work: Path, urls: list[str], stride: int, model: str, precision: str, seconds: float,
              settle_s: float = 5.0, startup_timeout_s: float = 300.0, extra: dict | None = None) -> dict:
    """``edge-har serve`` on ``urls`` (one camera each), measured over a window of ``seconds`` that
    opens ``settle_s`` after every camera's first label (see the module's docstring). ``extra``: more
    top-level config sections (e.g. ``record``, ``evidence``)."""
    work.mkdir(parents=True, exist_ok=True)
    names = [f"cam{number}" for number in range(len(urls))]
    config = {
        "model": {"path": model},
        "inference": {"precision": precision},
        "sampling": {"mode": "rolling", "stride": stride},
        "output": {"events": str(work / "{camera}.jsonl"), "rotate": "none", "summary": str(work / "{camera}.json"),
                   "log_every_s": 3600.0},
        "http": {"enabled": False},
        "cameras": {name: {"source": url} for name, url in zip(names, urls)},
        **(extra or {}),
    }
    path = work / "edge-har.yaml"
    import yaml

    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    argv = [common.PYTHON, "-m", "edge", "-q", "serve", "-c", str(path)]
    stop, window = threading.Event(), {}
    watcher = threading.Thread(target=_watch_window, daemon=True,
                               args=([work / f"{name}.jsonl" for name in names], stop, settle_s, seconds,
                                     startup_timeout_s, window))
    watcher.start()
    measured = common.measure_process(argv, timeout_s=startup_timeout_s + settle_s + seconds + 120.0,
                                      stop_event=stop)
    watcher.join(5.0)
    start, end = window.get("start"), window.get("end")
    if start is None and not window.get("error"):
        window["error"] = "no window"
    cams, pooled = {}, []
    for name in names:
        labels = predictions(work / f"{name}.jsonl")
        summary_path = work / f"{name}.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        numbers = window_numbers(labels, start, end) if start else {"done": 0, "skipped": 0, "latencies": []}
        pooled += numbers["latencies"]
        cams[name] = {"labels": len(labels), "done": numbers["done"], "skipped_clips": numbers["skipped"],
                      "gap_skipped": window_numbers(labels, float("-inf"), float("inf"))["skipped"],
                      "clips_per_s": numbers["done"] / seconds,
                      "latency_p50_ms": _pct(numbers["latencies"], 50),
                      "latency_p99_ms": _pct(numbers["latencies"], 99),
                      "run_skipped": summary.get("skipped_clips"), "dropped_frames": summary.get("dropped_frames"),
                      "state": summary.get("state"), "precision": summary.get("precision"),
                      "num_requests": summary.get("num_requests"),
                      "performance_hint": (summary.get("shared_model") or {}).get("performance_hint")}
    done = sum(c["done"] for c in cams.values())
    skipped = sum(c["skipped_clips"] for c in cams.values())
    samples = measured["samples"]
    in_window = [s for s in samples if start and start <= s[0] <= end]
    first = next(iter(cams.values()), {})
    result = {
        "cameras": cams, "window_s": seconds, "settle_s": settle_s, "error": window.get("error"),
        "startup_s": window["ready"] - samples[0][0] if window.get("ready") and samples else None,
        "done": done, "skipped": skipped, "done_clips_per_s": done / seconds,
        "offered_clips_per_s": (done + skipped) / seconds,
        "skipped_pct": 100.0 * skipped / (done + skipped) if done + skipped else None,
        "latency_p50_ms": _pct(pooled, 50), "latency_p99_ms": _pct(pooled, 99),
        "worst_camera_p99_ms": max((c["latency_p99_ms"] for c in cams.values() if c["latency_p99_ms"] is not None),
                                   default=None),
        "run_skipped": sum(c["run_skipped"] or 0 for c in cams.values()),
        "gap_skipped": sum(c["gap_skipped"] for c in cams.values()),
        "rss_mb": statistics.median(s[2] for s in in_window) if in_window else None,
        "peak_rss_mb": measured["peak_rss_mb"],
        "cpu_util": common.cpu_utilisation(samples, start, end, _cores()) if start else None,
        "precision": first.get("precision"), "num_requests": first.get("num_requests"),
        "performance_hint": first.get("performance_hint"),
        "returncode": measured["returncode"], "wall_s": measured["wall_s"], "cpu_s": measured["cpu_s"],
        "stderr_tail": measured["stderr_tail"],
    }
    result["warning"] = None
    if result["run_skipped"] > 2 * len(cams) and not result["gap_skipped"]:
        # many skips in summary.json, none visible as a missing clip_index: either all at start-up or
        # shutdown, or the engine no longer numbers skipped clips — say so rather than trust the 0
        result["warning"] = (f"summary.json counts {result['run_skipped']} skipped clips but no clip_index is "
                             f"missing from the events: check that skipped clips still take a number")
    result["held"] = held(result)
    return result


def held(run: dict) -> bool:
    """No clip skipped in the window, frame-to-label p99 < 500 ms, and every camera labelled in it."""
    return bool(not run.get("error") and run["skipped"] == 0 and run["latency_p99_ms"] is not None
                and run["latency_p99_ms"] < P99_LIMIT_MS and all(c["done"] > 0 for c in run["cameras"].values()))


realtime = held  # the earlier name


def _pct(values, q):
    return common.percentile(values, q) if values else None


def _cores() -> int:
    return common.machine().get("logical_cores") or 1


def bare_throughput(model: str, precision: str, seconds: float = 8.0) -> float:
    """The bare compiled model's clips/s: throughput hint, its optimal number of requests, all busy."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bare.json"
        subprocess.run([common.PYTHON, str(common.BENCH_DIR / "bare_model.py"), "--model", model, "--precision",
                        precision, "--hint", "throughput", "--seconds", str(seconds), "--out", str(out)],
                       check=True, env=common.python_env(), stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())["async_clips_per_s"]


def run_cameras(work: Path, clip: Path, count: int, stride: int, model: str, precision: str, seconds: float,
                settle_s: float) -> dict:
    """``count`` live streams of ``clip`` at ``stride``: the streams start (outside the window),
    ``serve_run`` measures, the streams stop."""
    streams = Streams(clip, count)
    try:
        return serve_run(work, streams.urls, stride, model, precision, seconds, settle_s)
    finally:
        streams.stop()


def holds(work: Path, clip: Path, stride: int, model: str, precision: str, seconds: float,
          ceiling: int = 16, settle_s: float = 5.0) -> tuple[int, list[dict]]:
    """The most cameras that hold: double until one fails, then bisect."""
    tried: list[dict] = []

    def ok(count: int) -> bool:
        run = run_cameras(work / f"holds-s{stride}-{Path(model).stem}-{count}", clip, count, stride, model,
                          precision, seconds, settle_s)
        tried.append({"cameras": count, "realtime": run["held"], "worst_p99_ms": run["worst_camera_p99_ms"],
                      "skipped": run["skipped"]})
        return run["held"]

    low, high = 0, None
    count = 1
    while count <= ceiling:
        if ok(count):
            low, count = count, count * 2
        else:
            high = count
            break
    if high is None:
        return low, tried
    while high - low > 1:
        middle = (low + high) // 2
        if ok(middle):
            low = middle
        else:
            high = middle
    return low, tried


# ------------------------------------------------------------------------------ the sweep

def camera_counts(text: str) -> tuple[list[int], bool]:
    """``"4,5,6"`` → ([4, 5, 6], False); ``"4+"`` → ([4], True): from 4 up until the first miss."""
    text = text.strip()
    if text.endswith("+"):
        counts = [int(text[:-1])]
        open_ended = True
    else:
        counts = sorted({int(part) for part in text.split(",") if part.strip()})
        open_ended = False
    if not counts or counts[0] < 1:
        raise ValueError(f"--cameras: expected positive counts (4,5,6) or N+ (4+), got {text!r}")
    return counts, open_ended


def parse_resolution(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise ValueError(f"--resolution: expected WIDTHxHEIGHT, got {text!r}")
    return int(width), int(height)


def sweep_row(run: dict, count: int, stride: int, label: str, resolution: str, bare: float | None) -> dict:
    """One JSON row for ``count`` cameras at ``stride`` (the sweep's and ``capacity``'s)."""
    needed = count * FPS / stride
    row = {"cameras": count, "stride": stride, "model": label, "resolution": resolution, "fps": FPS,
           "needed_clips_per_s": needed, "bare_clips_per_s": bare, "load_vs_bare": needed / bare if bare else None}
    for key in ("done_clips_per_s", "offered_clips_per_s", "done", "skipped", "skipped_pct", "latency_p50_ms",
                "latency_p99_ms", "worst_camera_p99_ms", "run_skipped", "gap_skipped", "warning", "rss_mb",
                "peak_rss_mb", "cpu_util", "precision", "num_requests", "performance_hint", "window_s", "settle_s",
                "startup_s", "error", "held"):
        row[key] = run.get(key)
    row["per_camera"] = {name: {k: c[k] for k in ("done", "skipped_clips", "latency_p99_ms", "run_skipped",
                                                  "dropped_frames", "state")}
                         for name, c in run["cameras"].items()}
    if run.get("error") or run.get("returncode") not in (0, None):
        row["stderr_tail"] = run.get("stderr_tail")
    return row


def sweep(work: Path, clip: Path, counts: list[int], open_ended: bool, stride: int, model: str, label: str,
          resolution: str, seconds: float, settle_s: float, bare: float | None, stop_at_miss: bool = False,
          max_cameras: int = 32, log=None) -> list[dict]:
    """A row per camera count at ``stride``, then a ``sweep-summary`` row (the most held, memory per camera)."""
    rows: list[dict] = []
    queue = list(counts)
    while queue:
        count = queue.pop(0)
        if log:
            log(f"stride {stride}: {count} camera(s) ...")
        run = run_cameras(work / f"sweep-s{stride}-{count}", clip, count, stride, model, "auto", seconds, settle_s)
        row = {"scenario": "sweep", **sweep_row(run, count, stride, label, resolution, bare)}
        rows.append(row)
        if log:
            log(format_sweep_line(row))
        if not row["held"] and (stop_at_miss or open_ended):
            break
        if open_ended and not queue and count < max_cameras:
            queue.append(count + 1)
    rows.append(sweep_summary(rows, stride, label, resolution))
    return rows


def sweep_summary(rows: list[dict], stride: int, label: str, resolution: str) -> dict:
    """The most cameras held (largest count that held), the first that missed, and the memory per added
    camera: the least-squares slope of the window RSS (and of the peak) over the camera count."""
    counts = [r["cameras"] for r in rows]
    return {"scenario": "sweep-summary", "stride": stride, "model": label, "resolution": resolution,
            "tried": counts, "held": [r["cameras"] for r in rows if r["held"]],
            "most_held": max((r["cameras"] for r in rows if r["held"]), default=0),
            "first_missed": min((r["cameras"] for r in rows if not r["held"]), default=None),
            "rss_mb_per_camera": common.slope(counts, [r["rss_mb"] for r in rows]),
            "peak_rss_mb_per_camera": common.slope(counts, [r["peak_rss_mb"] for r in rows])}


# ---------------------------------------------------------------------------------- main

def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] bench_serve: {message}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    parser = common.suite_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=None,
                        help="the timed window per run, in seconds (default 60; 20 quick)")
    parser.add_argument("--settle", type=float, default=None,
                        help="seconds after every camera's first label before the window opens (default 5; 3 quick)")
    parser.add_argument("--int8", nargs="?", const=True, default=None, metavar="MODEL",
                        help="INT8 model (default: quantise the demo model on the 1080p clip, cached)")
    parser.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS),
                        help="comma list of " + ", ".join(SCENARIOS) + " (default: all but sweep)")
    parser.add_argument("--resolution", default="1920x1080", help="the streamed clip's size (default 1920x1080)")
    parser.add_argument("--cameras", default="4,5,6,7,8", help="sweep: camera counts, a list or N+ (default 4,5,6,7,8)")
    parser.add_argument("--strides", default="4,8", help="sweep: rolling strides (default 4,8)")
    parser.add_argument("--precision", default="int8", choices=("int8", "auto", "f32", "bf16"),
                        help="sweep and capacity: the model (int8: the INT8 model) (default int8)")
    parser.add_argument("--stop-at-miss", action="store_true", help="sweep: stop a stride at its first miss")
    parser.add_argument("--max-cameras", type=int, default=32, help="sweep with N+: the ceiling (default 32)")
    parser.add_argument("--bare-seconds", type=float, default=None,
                        help="the bare model's measurement (default 8; 0: leave it out)")
    parser.add_argument("--json", help="also write every row here")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        print("bench_serve: needs the ffmpeg command (apt install ffmpeg)", file=sys.stderr)
        return 1
    level = LEVELS["smoke" if args.smoke else "quick" if args.quick else "full"]
    seconds = args.seconds or level["seconds"]
    settle = level["settle"] if args.settle is None else args.settle
    bare_seconds = level["bare"] if args.bare_seconds is None else args.bare_seconds
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    try:
        width, height = parse_resolution(args.resolution)
        counts, open_ended = camera_counts(args.cameras)
        strides = [int(part) for part in args.strides.split(",") if part.strip()]
    except ValueError as error:
        parser.error(str(error))
    resolution = f"{width}x{height}"

    # setup, outside every timed run: the clip, the model, the INT8 model, the bare model's rate
    clip = common.h264_video(width, height, CLIP_SECONDS, fps=FPS)
    model = args.model or str(common.demo_onnx())
    int8 = None
    wants_int8 = "holds" in scenarios or (args.precision == "int8" and {"capacity", "sweep"} & set(scenarios))
    if wants_int8:
        int8 = args.int8 if isinstance(args.int8, str) else str(common.bench_int8(model))
    # the sweep's and capacity's model and config precision
    main_model, main_precision, label = ((int8, "auto", "int8") if args.precision == "int8"
                                         else (model, args.precision, args.precision))
    bare = None
    if bare_seconds > 0 and {"sweep", "capacity"} & set(scenarios):
        _log(f"the bare model [{label}] for {bare_seconds:.0f} s ...")
        bare = bare_throughput(main_model, main_precision, bare_seconds)
    tag = {"machine": common.machine(), "clip": str(clip), "seconds": seconds, "settle_s": settle}
    rows: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        if "memory" in scenarios:
            peaks = {}
            for count in (1, 4):
                run = run_cameras(work / f"memory-{count}", clip, count, 16, model, "auto", min(seconds, 30.0),
                                  settle)
                peaks[count] = run["peak_rss_mb"]
            rows.append({"scenario": "memory", "peak_rss_mb_1": peaks[1], "peak_rss_mb_4": peaks[4],
                         "ratio": peaks[4] / peaks[1], "target": "<= 1.3", "pass": peaks[4] / peaks[1] <= 1.3})
        if "fairness" in scenarios:
            run = run_cameras(work / "fairness", clip, 3, 2, model, "auto", seconds, settle)
            rates = [c["clips_per_s"] or 0.0 for c in run["cameras"].values()]
            mean = statistics.mean(rates)
            fair_bare = bare_throughput(model, "auto", max(bare_seconds, 1.0))
            spread = max(abs(r - mean) / mean for r in rates) if mean else None
            rows.append({"scenario": "fairness", "clips_per_s": rates, "mean": mean, "max_deviation": spread,
                         "sum": sum(rates), "bare_clips_per_s": fair_bare, "sum_over_bare": sum(rates) / fair_bare,
                         "precision": next(iter(run["cameras"].values()))["precision"],
                         "pass": spread is not None and spread <= 0.15 and sum(rates) >= 0.85 * fair_bare})
        if "capacity" in scenarios:
            _log(f"capacity: 4 cameras, stride 4, {label} ...")
            run = run_cameras(work / "capacity", clip, 4, 4, main_model, main_precision, seconds, settle)
            row = {"scenario": "capacity", **sweep_row(run, 4, 4, label, resolution, bare)}
            row.update({"clips_per_s": row["done_clips_per_s"], "worst_p99_ms": row["worst_camera_p99_ms"],
                        "pass": row["held"]})
            rows.append(row)
        if "holds" in scenarios:
            for holds_label, path in (("bf16 (auto)", model), ("int8", int8)):
                for stride in (4, 16):
                    count, tried = holds(work, clip, stride, path, "auto", min(seconds, 30.0), settle_s=settle)
                    rows.append({"scenario": "holds", "model": holds_label, "stride": stride, "cameras": count,
                                 "tried": tried})
        if "sweep" in scenarios:
            for stride in strides:
                rows += sweep(work, clip, counts, open_ended, stride, main_model, label, resolution, seconds, settle,
                              bare, args.stop_at_miss, args.max_cameras, log=_log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for row in rows:
        row.update(tag)
    common.print_json_lines(rows)
    print()
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


# ---------------------------------------------------------------------------------- tables

def _f(value, spec: str, none: str = "-") -> str:
    return none if value is None else format(value, spec)


def format_sweep_line(row: dict) -> str:
    """One run in words: ``6 cameras, stride 4: 37.50 needed, 37.48 done (72% of bare); skipped 0 (0.0%); ...``."""
    return (f"{row['cameras']} camera(s), stride {row['stride']}: {row['needed_clips_per_s']:.2f} clips/s needed"
            f" ({_f(row['load_vs_bare'], '.0%')} of bare), {row['done_clips_per_s']:.2f} done; skipped "
            f"{row['skipped']} ({_f(row['skipped_pct'], '.1f')}%); p50 {_f(row['latency_p50_ms'], '.0f')} ms, p99 "
            f"{_f(row['latency_p99_ms'], '.0f')} ms; RSS {_f(row['rss_mb'], '.0f')} MB -> "
            f"{'held' if row['held'] else 'MISSED'}" + (f" ({row['error']})" if row.get("error") else "")
            + (f" [warning: {row['warning']}]" if row.get("warning") else ""))


def format_table(rows: list[dict]) -> str:
    lines = ["| scenario | result | target | pass |", "|---|---|---|---|"]
    sweep_rows = [r for r in rows if r["scenario"] in ("sweep", "capacity")]
    for row in rows:
        if row["scenario"] == "memory":
            lines.append(f"| memory | 1 camera {row['peak_rss_mb_1']:.0f} MB, 4 cameras {row['peak_rss_mb_4']:.0f} MB"
                         f" ({row['ratio']:.2f}x) | <= 1.3x | {'PASS' if row['pass'] else 'MISS'} |")
        elif row["scenario"] == "fairness":
            rates = ", ".join(f"{r:.2f}" for r in row["clips_per_s"])
            lines.append(f"| fairness, 3 cameras stride 2, {row['precision']} | clips/s {rates}; max deviation "
                         f"{_f(row['max_deviation'], '.1%')}; sum {row['sum']:.2f} = {row['sum_over_bare']:.2f}x bare "
                         f"({row['bare_clips_per_s']:.2f}) | ±15 %, >= 0.85x | {'PASS' if row['pass'] else 'MISS'} |")
        elif row["scenario"] == "capacity":
            lines.append(f"| capacity, {row['model']}, 4 cameras {row['resolution']} stride 4 | "
                         f"{row['done_clips_per_s']:.2f} clips/s, skipped {row['skipped']}, p99 "
                         f"{_f(row['latency_p99_ms'], '.0f')} ms | 0 skipped, p99 < 500 ms | "
                         f"{'PASS' if row['pass'] else 'MISS'} |")
        elif row["scenario"] == "holds":
            lines.append(f"| holds, {row['model']}, stride {row['stride']} | {row['cameras']} cameras | - | - |")
        elif row["scenario"] == "sweep-summary":
            lines.append(f"| most cameras held, {row['model']}, {row['resolution']} stride {row['stride']} | "
                         f"{row['most_held']} (tried {', '.join(map(str, row['tried']))}); memory per added camera "
                         f"{_f(row['rss_mb_per_camera'], '.1f')} MB (peak {_f(row['peak_rss_mb_per_camera'], '.1f')}"
                         f" MB) | 0 skipped, p99 < 500 ms | - |")
    if sweep_rows:
        lines += ["", "| cameras | stride | size | model | needed clips/s | × bare | done clips/s | skipped "
                      "| skipped % | p50 ms | p99 ms | RSS MB | peak RSS MB | CPU % | held |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sweep_rows:
            lines.append(f"| {r['cameras']} | {r['stride']} | {r['resolution']} | {r['model']} ({r['precision']}) | "
                         f"{r['needed_clips_per_s']:.2f} | {_f(r['load_vs_bare'], '.2f')} | "
                         f"{r['done_clips_per_s']:.2f} | {r['skipped']} | {_f(r['skipped_pct'], '.1f')} | "
                         f"{_f(r['latency_p50_ms'], '.0f')} | {_f(r['latency_p99_ms'], '.0f')} | "
                         f"{_f(r['rss_mb'], '.0f')} | {_f(r['peak_rss_mb'], '.0f')} | "
                         f"{_f(r['cpu_util'] and 100 * r['cpu_util'], '.0f')} | {'yes' if r['held'] else 'NO'} |")
    if rows:
        machine = rows[0]["machine"]
        bare = next((r["bare_clips_per_s"] for r in sweep_rows if r.get("bare_clips_per_s")), None)
        lines += ["", f"{machine.get('cpu_model')}, {machine.get('logical_cores')} logical cores, OpenVINO "
                      f"{machine.get('openvino')}, edge-har {machine.get('version')}; window {rows[0]['seconds']:g} s "
                      f"after {rows[0]['settle_s']:g} s settle" + (f"; bare model {bare:.2f} clips/s" if bare else "")]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
