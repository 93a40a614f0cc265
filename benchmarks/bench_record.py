"""Recording's cost: ``edge-har serve`` on N live cameras with continuous recording vs without.

    python benchmarks/bench_record.py [--cameras 4] [--seconds 60] [--settle 5] [--stride 8]
                                      [--resolution 1920x1080] [--repeats 1] [--json OUT]

The cameras are ``bench_serve``'s: ffmpeg ``-re`` HTTP streams (MPEG-TS, H.264 copied, looped) of a
25 fps clip, one server per camera. Each run is ``bench_serve.serve_run`` (the service's own CPU
over a window that opens ``--settle`` s after every camera's first label). Without: ``evidence.clips:
none`` and no continuous recording, so no recorder exists. With: ``record.continuous: true``, every
camera's packets remuxed into MP4 segments (the inference source's demuxer tapped: no second
connection, no decode, no encode). The runs alternate ``--repeats`` times; the medians are compared.
Target (issue 16): 4 cameras of 1080p at 25 fps cost ≤ 5 % of one core more with recording.

A whole serve is loud (decode and inference take most of the box; on a busy or saturated box the
difference drowns), so ``direct`` (on by default; ``--scenarios``) measures recording alone, in this
process: N threads demux the N streams as the inference reader does (no decode) and hand each packet to
a tap, either a ``Recorder`` or one that drops it; the process's CPU over the window, recorder minus
drop, is recording's cost (the tap on the reader threads and the recorder threads), and each
recorder thread's own CPU time is reported too.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_serve  # noqa: E402
import common  # noqa: E402

sys.path.insert(0, str(common.REPO_DIR))  # the direct scenario imports this tree's edge

TARGET_CORES = 0.05


def one(work: Path, clip: Path, count: int, stride: int, model: str, seconds: float, settle: float,
        record: bool) -> dict:
    if record:
        extra = {"record": {"continuous": True, "segment_s": 10.0, "dir": str(work / "rec" / "{camera}")},
                 "evidence": {"clips": "none"}}
    else:
        extra = {"evidence": {"clips": "none"}, "record": {"continuous": False}}
    streams = bench_serve.Streams(clip, count)
    try:
        run = bench_serve.serve_run(work, streams.urls, stride, model, "auto", seconds, settle, extra=extra)
    finally:
        streams.stop()
    files = list((work / "rec").rglob("*.mp4")) if record else []
    cores = common.machine().get("logical_cores") or 1
    return {"record": record, "cpu_cores": run["cpu_util"] * cores if run["cpu_util"] is not None else None,
            "segments": len(files), "bytes": sum(path.stat().st_size for path in files),
            "done_clips_per_s": run["done_clips_per_s"], "skipped": run["skipped"], "error": run["error"],
            "rss_mb": run["rss_mb"], "stderr_tail": run["stderr_tail"] if run["error"] else None}


class _Drop:
    """A tap that takes every packet and keeps none: the demux alone."""

    def connected(self, stream) -> None:
        pass

    def packet(self, packet) -> None:
        pass

    def disconnected(self, reason: str) -> None:
        pass


def direct(work: Path, clip: Path, count: int, seconds: float, settle: float, record: bool) -> dict:
    """N streams demuxed (no decode) into taps for ``seconds``: the process's CPU cores over the window."""
    import av

    from edge.evidence.record import Recorder

    streams = bench_serve.Streams(clip, count)
    stop = threading.Event()
    taps = [Recorder(f"cam{n}", work / f"cam{n}", segment_s=10.0, continuous=True).start() if record else _Drop()
            for n in range(count)]

    def demux(url: str, tap) -> None:
        with av.open(url, timeout=(10.0, 10.0)) as container:
            stream = container.streams.video[0]
            tap.connected(stream)
            for packet in container.demux(stream):
                if stop.is_set():
                    break
                tap.packet(packet)
            tap.disconnected("stopped")

    threads = [threading.Thread(target=demux, args=(url, tap), daemon=True) for url, tap in zip(streams.urls, taps)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(settle)  # the window opens once every stream flows (setup outside it)
        cpu0, wall0 = time.process_time(), time.monotonic()
        recorder_cpu0 = [getattr(tap, "cpu_s", 0.0) for tap in taps]
        time.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        recorder_cpu = sum(getattr(tap, "cpu_s", 0.0) - before for tap, before in zip(taps, recorder_cpu0))
    finally:
        stop.set()
        streams.stop()
        for thread in threads:
            thread.join(15.0)
        for tap in taps:
            if record:
                tap.close()
    status = [tap.status() for tap in taps] if record else []
    return {"record": record, "cpu_cores": cpu / wall, "recorder_threads_cores": recorder_cpu / wall if record else None,
            "segments": sum(s["segments"] for s in status), "bytes": sum(s["bytes"] for s in status),
            "dropped_packets": sum(s["dropped_packets"] for s in status)}


def main(argv=None) -> int:
    parser = common.suite_parser(__doc__)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=None, help="the timed window (default 60; 20 quick)")
    parser.add_argument("--settle", type=float, default=None, help="default 5; 3 quick")
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--resolution", default="1920x1080")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--scenarios", default="direct,serve", help="direct, serve (default both)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        print("bench_record: needs the ffmpeg command (apt install ffmpeg)", file=sys.stderr)
        return 1
    level = bench_serve.LEVELS["smoke" if args.smoke else "quick" if args.quick else "full"]
    seconds = args.seconds or level["seconds"]
    settle = level["settle"] if args.settle is None else args.settle
    width, height = bench_serve.parse_resolution(args.resolution)
    clip = common.h264_video(width, height, bench_serve.CLIP_SECONDS, fps=bench_serve.FPS)
    model = args.model or str(common.demo_onnx())
    scenarios = [part.strip() for part in args.scenarios.split(",") if part.strip()]
    rows, lines = [], []
    work = Path(tempfile.mkdtemp(prefix="bench-record-"))
    try:
        for scenario in ("direct", "serve"):
            if scenario not in scenarios:
                continue
            runs: list[dict] = []
            for repeat in range(args.repeats):
                for record in (False, True):
                    bench_serve._log(f"{scenario}: {args.cameras} cameras, {'with' if record else 'without'} "
                                     f"recording ({repeat + 1}/{args.repeats}) ...")
                    folder = work / f"{scenario}-{repeat}-{int(record)}"
                    if scenario == "direct":
                        runs.append(direct(folder, clip, args.cameras, seconds, settle, record))
                    else:
                        runs.append(one(folder, clip, args.cameras, args.stride, model, seconds, settle, record))
            row = _compare(scenario, runs, args, width, height, seconds)
            rows.append(row)
            if row["extra_cores"] is not None:
                lines.append(f"{scenario}: {args.cameras} cameras {width}x{height}: {row['cpu_cores_without']:.3f} "
                             f"cores without recording, {row['cpu_cores_with']:.3f} with; extra "
                             f"{row['extra_cores']:+.3f} cores ({row['extra_cores_per_camera']:+.4f} per camera)"
                             + (f"; recorder threads {row['recorder_threads_cores']:.4f} cores"
                                if row.get("recorder_threads_cores") is not None else "")
                             + f"; target for 4 cameras ≤ {TARGET_CORES}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    common.print_json_lines(rows)
    print("\n" + "\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


def _compare(scenario: str, runs: list[dict], args, width: int, height: int, seconds: float) -> dict:
    def median(record: bool, key: str = "cpu_cores"):
        values = [run[key] for run in runs if run["record"] == record and run.get(key) is not None]
        return statistics.median(values) if values else None

    without, with_ = median(False), median(True)
    extra = with_ - without if with_ is not None and without is not None else None
    return {"scenario": f"record-{scenario}", "cameras": args.cameras, "resolution": f"{width}x{height}",
            "stride": args.stride, "seconds": seconds, "cpu_cores_without": without, "cpu_cores_with": with_,
            "extra_cores": extra, "extra_cores_per_camera": extra / args.cameras if extra is not None else None,
            "recorder_threads_cores": median(True, "recorder_threads_cores"),
            "target_extra_cores_4_cameras": TARGET_CORES, "runs": runs, "machine": common.machine()}


if __name__ == "__main__":
    sys.exit(main())
