"""Prove on the box that edge-har keeps up: every benchmark suite, one report.

    python benchmarks/run.py [--quick] [--model MODEL] [--video VIDEO] [--int8 [MODEL]]
                             [--json OUT.json] [--markdown OUT.md] [--plot OUT.png]

Suites, in this order, each also runnable alone:

- ``preprocessing`` (``bench_preprocess.py``): native vs NumPy twin vs blobFromImages, 3 resolutions;
- ``runtime`` (``bench_runtime.py``): OpenVINO f32 / bf16 (auto) / INT8, cv2.dnn, ONNX Runtime;
- ``e2e`` (``bench_e2e.py``): the seed's pipeline vs ``edge-har run`` vs the bare model;
- ``memory`` (``bench_memory.py``): RSS through a long rolling run.

No ``--model``: the demo model (seed 0) exported to ONNX, which both the seed (cv2.dnn) and
edge-har load. No ``--video``: a generated 1920×1080 moving-shapes clip (176 frames; 64 with
``--quick``). ``--int8`` alone quantises the model with NNCF on that clip (cached under
``$EDGE_HAR_HOME/bench``); ``--int8 MODEL`` uses an INT8 IR you made. ``--quick`` (64 s on
2 shared cores): fewer repeats, one round, default precision only. Full (19 min on 2 cores
shared with other jobs): three interleaved rounds at auto (bf16 where the CPU has it) and f32,
plus INT8 when asked.

Prints the Markdown report (tables and targets with PASS/MISS) and writes the JSON (schema in
``report.py``), Markdown and PNG when asked. Exit status 1 if a suite failed, else 0 —
a missed target is a finding, not an error.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import report  # noqa: E402

SUITE_NAMES = {"preprocess": "preprocess", "preprocessing": "preprocess", "runtime": "runtime",
               "runtimes": "runtime", "e2e": "e2e", "memory": "memory"}


def _suites(text: str) -> list[str]:
    names = []
    for part in text.split(","):
        name = SUITE_NAMES.get(part.strip().lower())
        if name is None:
            raise argparse.ArgumentTypeError(f"unknown suite {part!r}; choose from preprocess, runtime, e2e, memory")
        names.append(name)
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (fewer repeats, one round, auto only)")
    parser.add_argument("--model", help="model (.onnx, or .xml with an .onnx beside it); default: the demo model")
    parser.add_argument("--video", help="video for the end-to-end suite; default: a generated 1920x1080 clip")
    parser.add_argument("--int8", nargs="?", const=True, default=None, metavar="MODEL",
                        help="add INT8: quantise the model on the video (cached), or use MODEL")
    parser.add_argument("--json", metavar="OUT.json", help="write the results as one JSON object")
    parser.add_argument("--markdown", metavar="OUT.md", help="write the Markdown report")
    parser.add_argument("--plot", metavar="OUT.png", help="write the bar chart (needs matplotlib: the bench extra)")
    parser.add_argument("--suites", type=_suites, default=["preprocess", "runtime", "e2e", "memory"],
                        help="comma-separated subset: preprocess,runtime,e2e,memory (default: all)")
    parser.add_argument("--rounds", type=int, help="interleaved end-to-end rounds (default 3; quick 1)")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # CI: tiny everything
    return parser


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _load_average() -> list[float] | None:
    try:
        import os

        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[-1] if text else ''}"


def run(args) -> dict:
    """Run the chosen suites; returns the results object (see ``report``'s schema)."""
    if args.plot:  # fail before minutes of measuring, not after
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise SystemExit(f"run.py: {report.MATPLOTLIB_MISSING}") from None
    quick = args.quick or args.smoke
    level = "smoke" if args.smoke else "quick" if quick else "full"
    machine = common.machine()
    model = Path(args.model).expanduser() if args.model else common.demo_onnx()
    video = Path(args.video).expanduser() if args.video else None
    if video is not None and not video.is_file():
        raise SystemExit(f"run.py: video not found: {video}")
    needs_video = "e2e" in args.suites or args.int8 is True
    if video is None and needs_video:
        import bench_e2e

        _log("generating the 1920x1080 test clip (cached)")
        video = common.bench_video(1920, 1080, bench_e2e.VIDEO_FRAMES[level])
    int8 = None
    if args.int8 is True:
        _log("INT8: quantising the model on the test clip with NNCF (cached)")
        int8 = common.int8_model(model, video)
    elif args.int8:
        int8 = Path(args.int8).expanduser()
    settings = {"level": level, "quick": quick, "smoke": args.smoke, "suites": args.suites,
                "model": str(model), "int8_model": str(int8) if int8 else None, "rounds": args.rounds}
    if video is not None:
        settings.update(common.video_info(video))
    settings["load_average_at_start"] = _load_average()  # other jobs on the box: read the numbers with it
    suites, errors = {}, {}
    for suite in args.suites:
        _log(f"suite {suite} ...")
        started = time.time()
        try:
            suites[suite] = _run_suite(suite, quick, args.smoke, model, video, int8, args.rounds)
        except Exception as error:  # one suite failing must not lose the others
            errors[suite] = _one_line(error)
            _log(f"suite {suite} FAILED: {errors[suite]}")
        else:
            _log(f"suite {suite} done in {time.time() - started:.0f} s")
    for rows in suites.values():
        for row in rows:
            row.setdefault("suite", next(name for name, r in suites.items() if r is rows))
            row.setdefault("machine", machine)
            row.setdefault("settings", settings)
    settings["load_average_at_end"] = _load_average()
    results = {"schema": report.SCHEMA, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "command": "python benchmarks/run.py " + shlex.join(sys.argv[1:]) if sys.argv[1:] else
               "python benchmarks/run.py", "machine": machine, "settings": settings, "suites": suites,
               "errors": errors}
    results["targets"] = report.evaluate_targets(suites)
    return results


def _run_suite(suite: str, quick: bool, smoke: bool, model: Path, video, int8, rounds) -> list[dict]:
    if suite == "preprocess":
        import bench_preprocess

        rows = bench_preprocess.run(quick=quick)
        for row in rows:
            row["suite"] = "preprocess"
        report.enrich_preprocess(rows)
        return rows
    if suite == "runtime":
        import bench_runtime

        rows = bench_runtime.run(quick=quick, model=str(model), int8=str(int8) if int8 else None,
                                 repeats=1 if smoke else None)
        for row in rows:
            row["suite"] = "runtime"
            row["settings"] = {"quick": quick, "repeats": row.get("repeats"), "model": row.get("model"),
                               "clip": row.get("clip"), "int8_model": str(int8) if int8 else "quantised by the suite"}
        report.enrich_runtime(rows)
        return rows
    if suite == "e2e":
        import bench_e2e

        precisions = ("auto",) if quick else ("auto", "f32")
        return bench_e2e.run(quick=quick, model=model, video=video, int8=int8, rounds=rounds, smoke=smoke,
                             precisions=precisions)
    if suite == "memory":
        import bench_memory

        return bench_memory.run(quick=quick, model=model, smoke=smoke)
    raise ValueError(suite)


def format_targets(targets: list[dict]) -> str:
    lines = []
    for t in targets:
        value = "—" if t["value"] is None else f"{t['value']:.2f}"
        lines.append(f"{t['status']:>4}  {t['name']}: {value} (target {t['op']} {t['threshold']:.2f})")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    results = run(args)
    text = report.format_markdown(results)
    print(text)
    print(format_targets(results["targets"]))
    if args.json:
        report.write_json(args.json, results)
    if args.markdown:
        report.write_markdown(args.markdown, results)
    if args.plot:
        try:
            report.write_plot(args.plot, results)
        except (RuntimeError, ValueError) as error:
            print(f"run.py: no chart: {error}", file=sys.stderr)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
