"""Several live cameras on one model: memory, fairness under overload, and how many cameras the box holds.

    python benchmarks/bench_serve.py [--quick] [--seconds 60] [--model M] [--int8 [MODEL]] [--json OUT]
                                     [--scenarios memory,fairness,capacity,holds]

Live cameras are ffmpeg ``-re`` HTTP streams (MPEG-TS, the H.264 copied, looped) of a 1920×1080
25 fps H.264 clip on 127.0.0.1, one server per camera; ``edge-har serve`` runs as a child process
and is stopped with SIGTERM after ``--seconds``. Setup (encoding the clip, quantising INT8) is
cached and outside every timed run.

- ``memory``: peak RSS of ``serve`` with 4 cameras vs 1 camera (target ≤ 1.3×).
- ``fairness``: 3 identical cameras at rolling stride 2 (more than the box can infer): each
  camera's clips/s within ±15 % of their mean, the sum ≥ 0.85× the bare model's throughput at
  the same precision (``bare_model.py``, throughput hint, every request busy).
- ``capacity``: INT8, 4 cameras at stride 4 (25 clips/s in all) for ``--seconds``: skipped
  clips (target 0) and frame-to-label p99 (target < 500 ms).
- ``holds``: the largest number of cameras that run in real time (no skipped clip, p99
  < 500 ms) at stride 4 and 16, for bf16 (auto) and INT8, found by doubling then bisecting.

Prints JSON lines (machine, cores, OpenVINO version on each) and a table.
"""

from __future__ import annotations

import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SCENARIOS = ("memory", "fairness", "capacity", "holds")
P99_LIMIT_MS = 500.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Streams:
    """``count`` ffmpeg servers, each serving ``clip`` looped in real time on its own 127.0.0.1 port."""

    def __init__(self, clip: Path, count: int) -> None:
        self.processes, self.urls = [], []
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


def serve_run(work: Path, urls: list[str], stride: int, model: str, precision: str, seconds: float) -> dict:
    """``edge-har serve`` on ``urls`` for ``seconds``; per-camera rates, skips, latency; the process's RSS."""
    work.mkdir(parents=True, exist_ok=True)
    cameras = {f"cam{number}": {"source": url} for number, url in enumerate(urls)}
    config = {
        "model": {"path": model},
        "inference": {"precision": precision},
        "sampling": {"mode": "rolling", "stride": stride},
        "output": {"events": str(work / "{camera}.jsonl"), "summary": str(work / "{camera}.json"),
                   "log_every_s": 3600.0},
        "http": {"enabled": False},
        "cameras": cameras,
    }
    path = work / "edge-har.yaml"
    import yaml

    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    argv = [common.PYTHON, "-m", "edge", "-q", "serve", "-c", str(path)]
    # start-up (compile, the first clips) is not the steady state: 20 s more than asked for
    measured = common.measure_process(argv, timeout_s=seconds + 300.0, stop_after_s=seconds + 20.0)
    cams = {}
    for name in cameras:
        events = [json.loads(line) for line in (work / f"{name}.jsonl").read_text().splitlines() if line.strip()]
        clips = [{"done": common.parse_wall_time(e["wall_time"]), "end_frame": e["end_frame"],
                  "latency_ms": e["latency_ms"]["end_to_end"]} for e in events if "event" not in e]
        summary_path = work / f"{name}.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        steady = common.steady_state(clips, warmup_fraction=0.2)
        cams[name] = {"clips": len(clips), "clips_per_s": steady["clips_per_s"],
                      "latency_p99_ms": steady["latency_p99_ms"], "latency_p50_ms": steady["latency_p50_ms"],
                      "skipped_clips": summary.get("skipped_clips"), "dropped_frames": summary.get("dropped_frames"),
                      "state": summary.get("state"), "precision": summary.get("precision"),
                      "num_requests": summary.get("num_requests")}
    return {"cameras": cams, "peak_rss_mb": measured["peak_rss_mb"], "returncode": measured["returncode"],
            "wall_s": measured["wall_s"], "cpu_s": measured["cpu_s"], "stderr_tail": measured["stderr_tail"]}


def bare_throughput(model: str, precision: str, seconds: float = 8.0) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bare.json"
        subprocess.run([common.PYTHON, str(common.BENCH_DIR / "bare_model.py"), "--model", model, "--precision",
                        precision, "--hint", "throughput", "--seconds", str(seconds), "--out", str(out)],
                       check=True, env=common.python_env(), stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())["async_clips_per_s"]


def realtime(run: dict) -> bool:
    cams = run["cameras"].values()
    return all((c["skipped_clips"] or 0) == 0 and c["latency_p99_ms"] is not None
               and c["latency_p99_ms"] < P99_LIMIT_MS for c in cams)


def holds(work: Path, clip: Path, stride: int, model: str, precision: str, seconds: float,
          ceiling: int = 16) -> tuple[int, list[dict]]:
    """The most cameras that stay real time: double until one fails, then bisect."""
    tried: list[dict] = []

    def ok(count: int) -> bool:
        streams = Streams(clip, count)
        try:
            run = serve_run(work / f"holds-s{stride}-{precision}-{count}", streams.urls, stride, model, precision,
                            seconds)
        finally:
            streams.stop()
        good = realtime(run)
        tried.append({"cameras": count, "realtime": good, "worst_p99_ms": max(
            (c["latency_p99_ms"] or 0) for c in run["cameras"].values()),
            "skipped": sum((c["skipped_clips"] or 0) for c in run["cameras"].values())})
        return good

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


def main(argv=None) -> int:
    parser = common.suite_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=None, help="steady-state seconds per run (default 60; 20 quick)")
    parser.add_argument("--int8", nargs="?", const=True, default=None, metavar="MODEL",
                        help="INT8 model (default: quantise the demo model on the clip, cached)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list of " + ", ".join(SCENARIOS))
    parser.add_argument("--json", help="also write every row here")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        print("bench_serve: needs the ffmpeg command", file=sys.stderr)
        return 1
    seconds = args.seconds or (20.0 if args.quick else 60.0)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    clip = common.h264_video(1920, 1080, 10)
    model = args.model or str(common.demo_onnx())
    int8 = None
    if "capacity" in scenarios or "holds" in scenarios:
        int8 = args.int8 if isinstance(args.int8, str) else str(common.int8_model(model, clip, subset=16))
    tag = {"machine": common.machine(), "clip": str(clip), "seconds": seconds}
    rows: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        if "memory" in scenarios:
            peaks = {}
            for count in (1, 4):
                streams = Streams(clip, count)
                try:
                    run = serve_run(work / f"memory-{count}", streams.urls, 16, model, "auto", min(seconds, 30.0))
                finally:
                    streams.stop()
                peaks[count] = run["peak_rss_mb"]
            rows.append({"scenario": "memory", "peak_rss_mb_1": peaks[1], "peak_rss_mb_4": peaks[4],
                         "ratio": peaks[4] / peaks[1], "target": "<= 1.3", "pass": peaks[4] / peaks[1] <= 1.3})
        if "fairness" in scenarios:
            streams = Streams(clip, 3)
            try:
                run = serve_run(work / "fairness", streams.urls, 2, model, "auto", seconds)
            finally:
                streams.stop()
            rates = [c["clips_per_s"] or 0.0 for c in run["cameras"].values()]
            mean = statistics.mean(rates)
            bare = bare_throughput(model, "auto")
            spread = max(abs(r - mean) / mean for r in rates) if mean else None
            rows.append({"scenario": "fairness", "clips_per_s": rates, "mean": mean, "max_deviation": spread,
                         "sum": sum(rates), "bare_clips_per_s": bare, "sum_over_bare": sum(rates) / bare,
                         "precision": next(iter(run["cameras"].values()))["precision"],
                         "pass": spread is not None and spread <= 0.15 and sum(rates) >= 0.85 * bare})
        if "capacity" in scenarios:
            streams = Streams(clip, 4)
            try:
                run = serve_run(work / "capacity", streams.urls, 4, int8, "auto", seconds)
            finally:
                streams.stop()
            cams = run["cameras"].values()
            rows.append({"scenario": "capacity", "model": "int8", "cameras": 4, "stride": 4,
                         "clips_per_s": sum(c["clips_per_s"] or 0 for c in cams),
                         "skipped": sum(c["skipped_clips"] or 0 for c in cams),
                         "worst_p99_ms": max(c["latency_p99_ms"] or 0 for c in cams),
                         "pass": realtime(run)})
        if "holds" in scenarios:
            for label, path in (("bf16 (auto)", model), ("int8", int8)):
                for stride in (4, 16):
                    count, tried = holds(work, clip, stride, path, "auto", min(seconds, 30.0))
                    rows.append({"scenario": "holds", "model": label, "stride": stride, "cameras": count,
                                 "tried": tried})
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


def format_table(rows: list[dict]) -> str:
    lines = ["| scenario | result | target | pass |", "|---|---|---|---|"]
    for row in rows:
        if row["scenario"] == "memory":
            lines.append(f"| memory | 1 camera {row['peak_rss_mb_1']:.0f} MB, 4 cameras {row['peak_rss_mb_4']:.0f} MB"
                         f" ({row['ratio']:.2f}x) | <= 1.3x | {'PASS' if row['pass'] else 'MISS'} |")
        elif row["scenario"] == "fairness":
            rates = ", ".join(f"{r:.2f}" for r in row["clips_per_s"])
            lines.append(f"| fairness, 3 cameras stride 2, {row['precision']} | clips/s {rates}; max deviation "
                         f"{row['max_deviation']:.1%}; sum {row['sum']:.2f} = {row['sum_over_bare']:.2f}x bare "
                         f"({row['bare_clips_per_s']:.2f}) | ±15 %, >= 0.85x | {'PASS' if row['pass'] else 'MISS'} |")
        elif row["scenario"] == "capacity":
            lines.append(f"| capacity, INT8, 4 cameras stride 4 | {row['clips_per_s']:.2f} clips/s, skipped "
                         f"{row['skipped']}, p99 {row['worst_p99_ms']:.0f} ms | 0 skipped, p99 < 500 ms | "
                         f"{'PASS' if row['pass'] else 'MISS'} |")
        else:
            lines.append(f"| holds, {row['model']}, stride {row['stride']} | {row['cameras']} cameras | - | - |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
