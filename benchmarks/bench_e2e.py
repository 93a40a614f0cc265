"""End to end: the seed's pipeline (``seed_pipeline.py``: blobFromImages + cv2.dnn) against
``edge-har run`` on the same video and model, plus the bare compiled model's throughput.

Rows: the seed in batch and rolling mode (cv2.dnn is f32 whatever the precision); edge-har in
batch, rolling stride 1 and rolling stride 8 mode and the bare model (``bare_model.py``), at
each precision (``auto`` — bf16 on CPUs that have it —, ``f32``, ``bf16`` when asked, and the
INT8 model when given). ``--variants`` and ``--no-seed`` choose a subset (``--variants rolling1
--no-seed``: only edge-har rolling stride 1 and the bare model, the "× bare" measurement).

The bare model is the same compiled model fed back to back: by default with the throughput hint
and its optimal number of requests (``--bare-hint``), the ceiling a file run can reach; the row
carries ``bare_hint`` and ``num_requests``. ``--h264`` runs on a real H.264 1920×1080 25 fps
clip (made once with the ffmpeg command, cached; ``--clip-seconds`` long), the decode cost
cameras have; without it (and without ``--video``) the input is a generated mp4v clip.

Every measurement is its own child process (``python -m edge run -c cfg.yaml`` for edge-har),
so the CPU time and peak RSS are that pipeline's alone, each starts cold as a user's run would,
and a crash cannot take the suite down. Rates are steady-state: from the events' ``wall_time``
(edge-har) or the seed's clip times, leaving out the first clip and the first 10 % (compile,
first-touch, filling the queue) and the last clip (the end-of-file drain). CPU utilisation is
the child's CPU time over that same window / wall / logical cores (psutil samples every 0.1 s).
Frame-to-label latency is from the clip's newest frame being decoded to its label. The rounds
are interleaved — seed, edge-har, seed, edge-har … — and each row reports the medians.

    python benchmarks/bench_e2e.py [--quick] [--model M.onnx] [--video V | --h264] [--int8 [M.xml]] [--rounds N]
                                   [--precisions auto,f32,bf16] [--variants batch,rolling1,rolling8] [--no-seed]
                                   [--bare-hint throughput|latency] [--hint auto|latency|throughput]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SEED_MAX_CLIPS = {"full": {"batch": 8, "rolling": 14}, "quick": {"batch": 3, "rolling": 6},
                  "smoke": {"batch": 2, "rolling": 3}}
BARE_SECONDS = {"full": 6.0, "quick": 3.0, "smoke": 1.0}
VIDEO_FRAMES = {"full": 176, "quick": 64, "smoke": 40}
EDGE_VARIANTS = (("batch", 1), ("rolling", 1), ("rolling", 8))
VARIANT_NAMES = {"batch": ("batch", 1), "rolling1": ("rolling", 1), "rolling8": ("rolling", 8)}
H264_SECONDS = {"full": 20, "quick": 6, "smoke": 2}
METRICS = ("clips_per_s", "frames_per_s", "latency_p50_ms", "latency_p99_ms", "cpu_util", "peak_rss_mb")


def precision_label(requested: str, used: str | None) -> str:
    if requested == "int8":
        return "int8"
    if requested == "auto" or (used and used != requested):  # e.g. bf16 asked on a CPU without it: f32
        return f"{requested} ({used})" if used else requested
    return requested


def _edge_run(work: Path, tag: str, video: Path, model: Path, mode: str, stride: int, precision: str,
              hint: str | None = None) -> dict:
    import yaml

    events, summary = work / f"{tag}.events.jsonl", work / f"{tag}.summary.json"
    inference = {"precision": precision}
    if hint:
        inference["performance_hint"] = hint
    config = {
        "source": str(video),
        "model": {"path": str(model)},
        "sampling": {"mode": mode, "stride": stride},
        "inference": inference,
        "output": {"events": str(events), "summary": str(summary), "overwrite": True, "progress": "false"},
    }
    config_path = work / f"{tag}.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    measured = common.measure_process([common.PYTHON, "-m", "edge", "-q", "run", "-c", str(config_path)])
    if measured["returncode"] != 0:
        raise RuntimeError(f"edge-har run ({tag}) failed with exit code {measured['returncode']}:\n"
                           f"{measured['stderr_tail']}")
    clips = []
    for line in events.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if "event" in event:  # a gap record
            continue
        clips.append({"end_frame": event["end_frame"], "done": common.parse_wall_time(event["wall_time"]),
                      "latency_ms": event["latency_ms"]["end_to_end"]})
    run_summary = json.loads(summary.read_text(encoding="utf-8"))
    return {"clips": clips, "measured": measured, "precision_used": run_summary.get("precision"),
            "num_requests": run_summary.get("num_requests"), "frames": run_summary.get("frames"),
            "performance_hint": (run_summary.get("shared_model") or {}).get("performance_hint"),
            "summary_clips_per_s": run_summary.get("clips_per_s")}


def _child_json(argv: list[str], out: Path, what: str) -> tuple[dict, dict]:
    """Run a benchmark child that writes its result to ``out``: (that result, its process measurements)."""
    measured = common.measure_process([*argv, "--out", str(out)])
    if measured["returncode"] != 0:
        raise RuntimeError(f"{what} failed: {measured['stderr_tail']}")
    return json.loads(out.read_text(encoding="utf-8")), measured


def _seed_run(work: Path, tag: str, video: Path, onnx: Path, mode: str, max_clips: int) -> dict:
    result, measured = _child_json(
        [common.PYTHON, str(common.BENCH_DIR / "seed_pipeline.py"), "--mode", mode, "--video", str(video),
         "--onnx", str(onnx), "--max-clips", str(max_clips)], work / f"{tag}.json", f"seed pipeline ({tag})")
    return {"clips": result["clips"], "measured": measured, "precision_used": "f32", "num_requests": 1,
            "frames": result["frames_read"]}


def _bare_run(work: Path, tag: str, model: Path, precision: str, seconds: float, hint: str = "throughput") -> dict:
    result, measured = _child_json(
        [common.PYTHON, str(common.BENCH_DIR / "bare_model.py"), "--model", str(model), "--precision", precision,
         "--hint", hint, "--seconds", str(seconds)], work / f"{tag}.json", f"bare model ({tag})")
    return {**result, "measured": measured}


def _pipeline_numbers(run: dict, cores: int, tail: int) -> dict:
    steady = common.steady_state(run["clips"], tail=tail)
    measured = run["measured"]
    cpu = None
    if steady["window"]:
        cpu = common.cpu_utilisation(measured["samples"], *steady["window"], cores)
    if cpu is None:  # too short for the samples: the whole process
        cpu = measured["cpu_s"] / measured["wall_s"] / cores if measured["wall_s"] > 0 else None
    return {"clips_per_s": steady["clips_per_s"], "frames_per_s": steady["frames_per_s"],
            "latency_p50_ms": steady["latency_p50_ms"], "latency_p99_ms": steady["latency_p99_ms"],
            "cpu_util": cpu, "peak_rss_mb": measured["peak_rss_mb"], "steady_clips": steady["steady_clips"],
            "clips": steady["clips_total"], "wall_s": measured["wall_s"]}


def _measure_bare(work, round_no, precision, model_path, level, cores, per_key, extras, hint) -> None:
    bare = _bare_run(work, f"bare-{precision}-{round_no}", model_path,
                     "auto" if precision == "int8" else precision, BARE_SECONDS[level], hint)
    measured = bare["measured"]
    key = ("bare", None, None, precision)
    per_key.setdefault(key, []).append({
        "clips_per_s": bare["async_clips_per_s"], "sync_clips_per_s": bare["sync_clips_per_s"],
        "latency_p50_ms": bare["latency_p50_ms"], "frames_per_s": None, "latency_p99_ms": None,
        "cpu_util": measured["cpu_s"] / measured["wall_s"] / cores, "peak_rss_mb": measured["peak_rss_mb"],
        "wall_s": measured["wall_s"]})
    extras[key] = {"precision_used": bare["precision"], "num_requests": bare["num_requests"],
                   "bare_hint": bare["hint"], "performance_hint": bare["hint"]}


def run(quick: bool = False, model=None, video=None, int8=None, rounds: int | None = None,
        smoke: bool = False, precisions=("auto", "f32"), variants=tuple(VARIANT_NAMES), seed: bool = True,
        bare_hint: str = "throughput", hint: str | None = None, h264: bool = False,
        clip_seconds: int | None = None) -> list[dict]:
    """Measure every pipeline; one dict per (pipeline, mode, stride, precision) with medians over rounds.

    ``model``: ``.onnx`` (or ``.xml`` with an ``.onnx`` beside it), default the demo exported to
    ONNX; ``video``: default a generated 1920×1080 clip (``h264``: a real H.264 one,
    ``clip_seconds`` long); ``int8``: an INT8 IR to add as a precision (``True``: the demo's,
    quantised and cached). ``variants``: which of batch, rolling1, rolling8 edge-har runs (the
    bare model is measured with rolling1); ``seed``: run the seed's pipeline too; ``bare_hint``:
    the bare model's performance hint; ``hint``: ``inference.performance_hint`` for edge-har
    (None: its default). Raises ``RuntimeError`` when a child run fails.
    """
    level = "smoke" if smoke else "quick" if quick else "full"
    rounds = rounds or (1 if level != "full" else 3)
    model = Path(model) if model else common.demo_onnx()
    onnx = common.onnx_for(model) if seed else None
    if video:
        video = Path(video)
    elif h264:
        video = common.h264_video(1920, 1080, clip_seconds or H264_SECONDS[level])
    else:
        video = common.bench_video(1920, 1080, VIDEO_FRAMES[level])
    if int8 is True:
        int8 = common.bench_int8(model)
    wanted = [VARIANT_NAMES[v] for v in variants]
    machine = common.machine()
    cores = machine.get("logical_cores") or 1
    runs_for = [(p, model) for p in precisions] + ([("int8", Path(int8))] if int8 else [])
    settings = {"level": level, "rounds": rounds, "model": str(model), "onnx_for_seed": str(onnx) if onnx else None,
                "int8_model": str(int8) if int8 else None, **common.video_info(video),
                "seed_max_clips": SEED_MAX_CLIPS[level] if seed else None, "bare_seconds": BARE_SECONDS[level],
                "bare_hint": bare_hint, "performance_hint": hint or "default", "output_video": False,
                "warmup_fraction": 0.1, "variants": list(variants), "precisions": [p for p, _ in runs_for]}

    per_key: dict[tuple, list[dict]] = {}
    extras: dict[tuple, dict] = {}
    failed: dict[str, str] = {}
    settings["failed_precisions"] = failed
    with tempfile.TemporaryDirectory(prefix="edge-bench-e2e-") as tmp:
        work = Path(tmp)
        for round_no in range(rounds):
            for mode in ("batch", "rolling"):  # A/B/A/B: the seed, then edge-har, for each mode
                if not any(edge_mode == mode for edge_mode, _ in wanted):
                    continue
                if seed:
                    seed_run = _seed_run(work, f"seed-{mode}-{round_no}", video, onnx, mode,
                                         SEED_MAX_CLIPS[level][mode])
                    per_key.setdefault(("seed", mode, 1, "f32"), []).append(_pipeline_numbers(seed_run, cores, tail=0))
                for edge_mode, stride in EDGE_VARIANTS:
                    if edge_mode != mode or (edge_mode, stride) not in wanted:
                        continue
                    for precision, model_path in runs_for:
                        if precision in failed:
                            continue
                        tag = f"edge-{mode}-s{stride}-{precision}-{round_no}"
                        try:
                            result = _edge_run(work, tag, video, model_path, mode, stride,
                                               "auto" if precision == "int8" else precision, hint)
                        except RuntimeError as error:  # one precision the box cannot run must not lose the rest
                            failed[precision] = str(error).strip().splitlines()[-1] if str(error).strip() else "?"
                            print(f"bench_e2e: {precision} left out: {failed[precision]}", file=sys.stderr)
                            continue
                        key = ("edge-har", mode, stride, precision)
                        per_key.setdefault(key, []).append(_pipeline_numbers(result, cores, tail=1))
                        extras[key] = {"precision_used": result["precision_used"],
                                       "num_requests": result["num_requests"],
                                       "performance_hint": result["performance_hint"]}
                        if (mode, stride) == ("rolling", 1):  # the bare model right next to its pipeline
                            _measure_bare(work, round_no, precision, model_path, level, cores, per_key, extras,
                                          bare_hint)

    if failed and set(failed) >= {p for p, _ in runs_for}:
        raise RuntimeError("edge-har failed at every precision: " + "; ".join(f"{p}: {m}" for p, m in failed.items()))
    rows = []
    for (pipeline, mode, stride, precision), samples in per_key.items():
        row = {"suite": "e2e", "pipeline": pipeline, "mode": mode, "stride": stride, "precision": precision,
               "rounds": len(samples), "round_clips_per_s": [s["clips_per_s"] for s in samples]}
        for metric in (*METRICS, "sync_clips_per_s", "steady_clips", "clips", "wall_s"):
            if any(metric in s for s in samples):
                row[metric] = common.median_or_none([s.get(metric) for s in samples])
        extra = extras.get((pipeline, mode, stride, precision), {"precision_used": "f32", "num_requests": 1})
        row.update(extra)
        row["precision_label"] = "cv2.dnn f32" if pipeline == "seed" else precision_label(precision,
                                                                                         extra["precision_used"])
        row["name"] = _row_name(row)
        row["machine"], row["settings"] = machine, settings
        rows.append(row)
    _add_ratios(rows)
    return rows


def _row_name(row: dict) -> str:
    if row["pipeline"] == "bare":
        return f"bare model [{row['precision_label']}]"
    mode = "batch" if row["mode"] == "batch" else f"rolling s{row['stride']}"
    return f"{row['pipeline']} {mode} [{row['precision_label']}]"


def _add_ratios(rows: list[dict]) -> None:
    """``vs_seed``: clips/s over the seed's in the same mode (batch, rolling stride 1);
    ``vs_bare``: clips/s over the bare model's at the same precision. Each is the median of the
    per-round ratios (runs of one round are minutes apart at most, so drift cancels)."""
    seed = {r["mode"]: r["round_clips_per_s"] for r in rows if r["pipeline"] == "seed"}
    bare = {r["precision"]: r["round_clips_per_s"] for r in rows if r["pipeline"] == "bare"}

    def ratio(numerators, denominators):
        pairs = [a / b for a, b in zip(numerators, denominators) if a and b]
        return common.median_or_none(pairs)

    for row in rows:
        row["vs_seed"] = row["vs_bare"] = None
        if row["pipeline"] != "edge-har" or not row.get("clips_per_s"):
            continue
        if row["stride"] == 1 and row["mode"] in seed:
            row["vs_seed"] = ratio(row["round_clips_per_s"], seed[row["mode"]])
        if row["precision"] in bare:
            row["vs_bare"] = ratio(row["round_clips_per_s"], bare[row["precision"]])


def format_table(rows: list[dict]) -> str:
    head = f"{'pipeline':38} {'clips/s':>8} {'frames/s':>9} {'xseed':>6} {'xbare':>6} {'p50 ms':>8} {'p99 ms':>8} " \
           f"{'CPU%':>5} {'RSS MB':>7} {'hint/req':>14}"
    lines = [head, "-" * len(head)]

    def f(value, spec):
        return format(value, spec) if value is not None else format("-", spec.split(".")[0].rstrip("f") + "s")

    for r in rows:
        lines.append(f"{r['name']:38} {f(r['clips_per_s'], '8.2f')} {f(r.get('frames_per_s'), '9.1f')} "
                     f"{f(r['vs_seed'], '6.1f')} {f(r['vs_bare'], '6.2f')} {f(r.get('latency_p50_ms'), '8.0f')} "
                     f"{f(r.get('latency_p99_ms'), '8.0f')} {f(100 * r['cpu_util'] if r.get('cpu_util') else None, '5.0f')} "
                     f"{f(r.get('peak_rss_mb'), '7.0f')} {_hint_text(r):>14}")
    if rows:
        machine = rows[0]["machine"]
        lines.append(f"{machine.get('cpu_model')}, {machine.get('logical_cores')} logical cores, "
                     f"OpenVINO {machine.get('openvino')}, edge-har {machine.get('version')}; "
                     f"{rows[0]['settings'].get('width')}x{rows[0]['settings'].get('height')} "
                     f"{rows[0]['settings'].get('video')}; medians of {rows[0]['settings'].get('rounds')} round(s); "
                     f"bare model: {rows[0]['settings'].get('bare_hint')} hint")
        for precision, message in (rows[0]["settings"].get("failed_precisions") or {}).items():
            lines.append(f"left out: {precision}: {message}")
    return "\n".join(lines)


def _hint_text(row: dict) -> str:
    hint = row.get("performance_hint")
    requests = row.get("num_requests")
    return f"{hint or '-'}/{requests if requests is not None else '-'}"


def _names(text: str, allowed) -> tuple[str, ...]:
    import argparse

    names = tuple(part.strip() for part in text.split(",") if part.strip())
    for name in names:
        if name not in allowed:
            raise argparse.ArgumentTypeError(f"unknown {name!r}; choose from {', '.join(allowed)}")
    return names


def main(argv=None) -> int:
    parser = common.suite_parser(__doc__)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--video", help="the input video (default: a generated 1920x1080 mp4v clip)")
    source.add_argument("--h264", action="store_true", help="a real H.264 1920x1080 25 fps clip (ffmpeg, cached)")
    parser.add_argument("--clip-seconds", type=int, help="--h264 clip length (default 20; quick 6)")
    parser.add_argument("--int8", nargs="?", const=True, default=None, metavar="MODEL",
                        help="add INT8: the demo model quantised with NNCF (cached), or MODEL (an INT8 IR)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--precisions", default="auto,f32", type=lambda t: _names(t, ("auto", "f32", "bf16", "f16")),
                        help="comma list of auto, f32, bf16, f16 (default auto,f32)")
    parser.add_argument("--variants", default=",".join(VARIANT_NAMES),
                        type=lambda t: _names(t, tuple(VARIANT_NAMES)),
                        help="edge-har runs: comma list of batch, rolling1, rolling8 (default all)")
    parser.add_argument("--no-seed", action="store_true", help="leave out the seed's pipeline")
    parser.add_argument("--bare-hint", default="throughput", choices=("throughput", "latency"),
                        help="the bare model's performance hint (default throughput)")
    parser.add_argument("--hint", choices=("auto", "latency", "throughput"),
                        help="edge-har's inference.performance_hint (default: its own default)")
    args = parser.parse_args(argv)
    rows = run(args.quick, args.model, args.video, args.int8, args.rounds, args.smoke, precisions=args.precisions,
               variants=args.variants, seed=not args.no_seed, bare_hint=args.bare_hint, hint=args.hint,
               h264=args.h264, clip_seconds=args.clip_seconds)
    print(format_table(rows))
    common.print_json_lines(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
