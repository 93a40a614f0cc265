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
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_serve  # noqa: E402
import common  # noqa: E402

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


def main(argv=None) -> int:
    parser = common.suite_parser(__doc__)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=None, help="the timed window (default 60; 20 quick)")
    parser.add_argument("--settle", type=float, default=None, help="default 5; 3 quick")
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--resolution", default="1920x1080")
    parser.add_argument("--repeats", type=int, default=1)
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
    runs: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="bench-record-"))
    try:
        for repeat in range(args.repeats):
            for record in (False, True):
                bench_serve._log(f"{args.cameras} cameras, {'with' if record else 'without'} recording "
                                 f"({repeat + 1}/{args.repeats}) ...")
                runs.append(one(work / f"{repeat}-{int(record)}", clip, args.cameras, args.stride, model, seconds,
                                settle, record))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def median(record: bool):
        values = [run["cpu_cores"] for run in runs if run["record"] == record and run["cpu_cores"] is not None]
        return statistics.median(values) if values else None

    without, with_ = median(False), median(True)
    extra = with_ - without if with_ is not None and without is not None else None
    row = {"scenario": "record", "cameras": args.cameras, "resolution": f"{width}x{height}", "stride": args.stride,
           "seconds": seconds, "cpu_cores_without": without, "cpu_cores_with": with_, "extra_cores": extra,
           "extra_cores_per_camera": extra / args.cameras if extra is not None else None,
           "target_extra_cores_4_cameras": TARGET_CORES, "runs": runs, "machine": common.machine()}
    common.print_json_lines([row])
    if extra is not None:
        print(f"\n{args.cameras} cameras {width}x{height}: serve {without:.3f} cores without recording, "
              f"{with_:.3f} with; extra {extra:+.3f} cores ({extra / args.cameras:+.4f} per camera; "
              f"target for 4 cameras ≤ {TARGET_CORES})")
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
