"""The benchmark report writers (write, then read back) and a smoke run of ``benchmarks/run.py``.

The smoke run checks the shape of the output, never the speed: CI machines are slow and shared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402
import report  # noqa: E402

MACHINE = {"cpu_model": "Test CPU", "logical_cores": 2, "cpu_flags": ["avx2"], "version": "0.1.0",
           "openvino": "2026.4.1-x", "opencv": "5.0.0", "numpy": "2.4.6", "implementation": "native"}


def _e2e_row(pipeline, mode, stride, precision, clips_per_s, **extra):
    row = {"suite": "e2e", "pipeline": pipeline, "mode": mode, "stride": stride, "precision": precision,
           "precision_used": "bf16" if precision == "auto" else precision,
           "precision_label": {"auto": "auto (bf16)"}.get(precision, precision), "clips_per_s": clips_per_s,
           "round_clips_per_s": [clips_per_s], "frames_per_s": clips_per_s * (16 if mode == "batch" else stride or 1),
           "latency_p50_ms": 101.0, "latency_p99_ms": 150.0, "cpu_util": 0.93, "peak_rss_mb": 512.0,
           "vs_seed": None, "vs_bare": None, "machine": MACHINE,
           "settings": {"width": 1920, "height": 1080, "frames": 176, "video": "/x/clip.mp4", "rounds": 3}}
    row.update(extra)
    name = "bare model" if pipeline == "bare" else f"{pipeline} {'batch' if mode == 'batch' else f'rolling s{stride}'}"
    row["name"] = f"{name} [{row['precision_label']}]"
    return row


def _results() -> dict:
    e2e = [
        _e2e_row("seed", "batch", 1, "f32", 2.5, precision_label="cv2.dnn f32"),
        _e2e_row("edge-har", "batch", 1, "auto", 18.25, vs_seed=7.3, vs_bare=0.95),
        _e2e_row("seed", "rolling", 1, "f32", 2.0, precision_label="cv2.dnn f32"),
        _e2e_row("edge-har", "rolling", 1, "auto", 17.5, vs_seed=8.75, vs_bare=0.91),
        _e2e_row("bare", None, None, "auto", 19.2, frames_per_s=None, latency_p99_ms=None),
        _e2e_row("edge-har", "rolling", 8, "auto", 18.0, vs_bare=0.94),
        _e2e_row("edge-har", "rolling", 1, "int8", 30.0, vs_seed=15.0, vs_bare=0.92),
        _e2e_row("bare", None, None, "int8", 32.6, frames_per_s=None, latency_p99_ms=None),
    ]
    runtime = [{"suite": "runtime", "runtime": name, "p50_ms": p50, "p90_ms": p50 * 1.1, "clips_per_s": 1000 / p50,
                "implementation": name, "machine": MACHINE, "settings": {}}
               for name, p50 in (("openvino f32", 95.0), ("openvino bf16 (auto)", 52.0), ("openvino int8", 30.0),
                                 ("cv2.dnn", 330.0))]
    report.enrich_runtime(runtime)
    preprocess = [{"suite": "preprocess", "implementation": impl, "resolution": "1920x1080",
                   "median_ms_per_frame": ms, "machine": MACHINE, "settings": {}}
                  for impl, ms in (("native", 0.5), ("numpy", 1.2), ("blobFromImages", 2.0))]
    report.enrich_preprocess(preprocess)
    memory = [{"suite": "memory", "name": "edge-har rolling s4 [bf16]", "frames": 2400, "clips": 597,
               "rss_samples": 120, "rss_first_quarter_mb": 510.25, "rss_last_quarter_mb": 511.0,
               "rss_growth_mb": 0.75, "peak_rss_mb": 515.0, "machine": MACHINE,
               "settings": {"width": 640, "height": 360}}]
    suites = {"runtime": runtime, "preprocess": preprocess, "e2e": e2e, "memory": memory}
    return {"schema": report.SCHEMA, "created": "2026-01-02T03:04:05+00:00", "command": "python benchmarks/run.py",
            "machine": MACHINE, "settings": {"quick": False}, "suites": suites, "errors": {},
            "targets": report.evaluate_targets(suites)}


def test_json_round_trip(tmp_path):
    results = _results()
    report.write_json(tmp_path / "r.json", results)
    assert report.read_json(tmp_path / "r.json") == json.loads(json.dumps(results))


def test_read_json_rejects_other_files(tmp_path):
    (tmp_path / "x.json").write_text('{"schema": "something else"}')
    with pytest.raises(ValueError, match="not an edge-har benchmark result"):
        report.read_json(tmp_path / "x.json")


def test_markdown_parses_back_to_the_same_numbers(tmp_path):
    results = _results()
    text = report.write_markdown(tmp_path / "r.md", results)
    assert (tmp_path / "r.md").read_text(encoding="utf-8") == text
    tables = report.parse_markdown(text)
    assert set(tables) == {"End to end", "Runtimes", "Preprocessing", "Memory", "Targets"}
    e2e = results["suites"]["e2e"]
    assert [row["pipeline"] for row in tables["End to end"]] == [row["name"] for row in e2e]
    for parsed, row in zip(tables["End to end"], e2e):
        assert parsed["clips/s"] == pytest.approx(row["clips_per_s"], abs=0.005)
        assert parsed["p50 ms"] == pytest.approx(row["latency_p50_ms"], abs=0.5)
        assert parsed["CPU %"] == pytest.approx(100 * row["cpu_util"], abs=0.5)
        assert parsed["× seed"] == (None if row["vs_seed"] is None else pytest.approx(row["vs_seed"], abs=0.051))
        assert parsed["× bare"] == (None if row["vs_bare"] is None else pytest.approx(row["vs_bare"], abs=0.005))
        assert parsed["frames/s"] == (None if row["frames_per_s"] is None
                                      else pytest.approx(row["frames_per_s"], abs=0.051))
    for parsed, row in zip(tables["Runtimes"], results["suites"]["runtime"]):
        assert parsed["runtime"] == row["runtime"]
        assert parsed["p50 ms"] == pytest.approx(row["p50_ms"], abs=0.051)
        assert parsed["× cv2.dnn"] == pytest.approx(row["vs_cv2"], abs=0.051)
    assert tables["Memory"][0]["growth MB"] == pytest.approx(0.75)
    statuses = {row["target"]: row["result"] for row in tables["Targets"]}
    assert statuses == {t["name"]: t["status"] for t in results["targets"]}


def test_targets_are_computed_from_the_numbers():
    targets = {t["name"]: t for t in _results()["targets"]}
    assert targets["edge-har batch [auto] / seed batch (clips/s)"]["status"] == "PASS"
    assert targets["rolling s1 steady / bare model [auto]"]["value"] == pytest.approx(0.91)
    assert targets["INT8 / bf16 (auto) (runtime suite clips/s)"]["value"] == pytest.approx(52 / 30)
    assert targets["INT8 / f32 (runtime suite clips/s)"]["status"] == "PASS"          # 95/30 = 3.17
    assert targets["native preprocessing / blobFromImages at 1080p (ms per frame)"]["status"] == "PASS"
    assert targets["RSS growth over the long rolling run (MB)"]["status"] == "PASS"
    missing = {t["name"]: t["status"] for t in report.evaluate_targets({})}
    assert set(missing.values()) == {"n/a"}


def test_png_is_valid_and_the_expected_size(tmp_path):
    pytest.importorskip("matplotlib")
    path = report.write_plot(tmp_path / "r.png", _results())
    assert report.png_size(path) == (int(report.PLOT_SIZE_IN[0] * report.PLOT_DPI),
                                     int(report.PLOT_SIZE_IN[1] * report.PLOT_DPI))
    (tmp_path / "fake.png").write_bytes(b"GIF89a" + bytes(30))
    with pytest.raises(ValueError, match="not a PNG"):
        report.png_size(tmp_path / "fake.png")


def test_steady_state_leaves_out_warm_up_and_drain():
    # 1 slow first clip (compile), then 10 clips/s, then an end-of-file burst.
    clips = [{"done": 100.0, "end_frame": 15, "latency_ms": 900.0}]
    clips += [{"done": 101.0 + 0.1 * i, "end_frame": 16 + i, "latency_ms": 100.0} for i in range(20)]
    clips.append({"done": 102.905, "end_frame": 36, "latency_ms": 5.0})
    steady = common.steady_state(clips)
    assert steady["clips_per_s"] == pytest.approx(10.0)
    assert steady["frames_per_s"] == pytest.approx(10.0)
    assert steady["latency_p99_ms"] == pytest.approx(100.0)


def test_cpu_utilisation_interpolates_samples():
    samples = [[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [2.0, 3.0, 1.0]]  # 1 core-s then 2 core-s per second
    assert common.cpu_utilisation(samples, 1.0, 2.0, cores=2) == pytest.approx(1.0)
    assert common.cpu_utilisation(samples, 0.5, 1.5, cores=2) == pytest.approx(0.75)


def _check_row_tags(row):
    assert {"cpu_model", "logical_cores", "cpu_flags", "version", "openvino", "opencv", "numpy"} <= set(row["machine"])
    assert isinstance(row["settings"], dict) and row["settings"]


def _run_smoke(tmp_path, suites: str) -> dict:
    from edge.synthetic import write_moving_shapes_video

    video = write_moving_shapes_video(tmp_path / "tiny.mp4", 40, 160, 120, fps=25.0, codec="mp4v")
    out = tmp_path / "out"
    argv = [sys.executable, str(BENCH / "run.py"), "--quick", "--smoke", "--video", str(video), "--suites", suites,
            "--json", str(out / "r.json"), "--markdown", str(out / "r.md"), "--plot", str(out / "r.png")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=common.python_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PASS" in done.stdout or "MISS" in done.stdout  # the targets are printed
    results = report.read_json(out / "r.json")
    assert report.parse_markdown((out / "r.md").read_text(encoding="utf-8"))
    assert report.png_size(out / "r.png")[0] > 0
    return results


def test_smoke_run(tmp_path):
    results = _run_smoke(tmp_path, "preprocess,e2e,memory")
    assert results["errors"] == {}
    assert set(results["suites"]) == {"preprocess", "e2e", "memory"}
    e2e = results["suites"]["e2e"]
    kinds = {(r["pipeline"], r["mode"], r["stride"]) for r in e2e}
    assert kinds == {("seed", "batch", 1), ("seed", "rolling", 1), ("edge-har", "batch", 1),
                     ("edge-har", "rolling", 1), ("edge-har", "rolling", 8), ("bare", None, None)}
    for row in e2e:
        _check_row_tags(row)
        for key in ("clips_per_s", "latency_p50_ms", "cpu_util", "peak_rss_mb", "vs_seed", "vs_bare", "precision"):
            assert key in row, key
        assert row["clips_per_s"] is None or row["clips_per_s"] > 0
        assert row["peak_rss_mb"] > 10  # the child's own, not the parent's
    assert {r["implementation"] for r in results["suites"]["preprocess"]} >= {"numpy", "blobFromImages"}
    memory = results["suites"]["memory"][0]
    assert {"rss_growth_mb", "rss_first_quarter_mb", "rss_last_quarter_mb", "rss_samples"} <= set(memory)
    for row in results["suites"]["preprocess"] + [memory]:
        _check_row_tags(row)
    assert {t["status"] for t in results["targets"]} <= {"PASS", "MISS", "n/a"}


@pytest.mark.slow
def test_smoke_run_all_suites(tmp_path):
    results = _run_smoke(tmp_path, "preprocess,runtime,e2e,memory")
    assert results["errors"] == {}
    runtime = {r["runtime"]: r for r in results["suites"]["runtime"]}
    assert {"openvino f32", "cv2.dnn"} <= set(runtime)
    assert all("gflops" in r and "vs_cv2" in r for r in runtime.values())


# ------------------------------------------------------------------ the issue-15 measurements

import bench_serve  # noqa: E402


def test_slope_is_least_squares():
    assert common.slope([1, 2, 3], [10.0, 12.0, 14.0]) == pytest.approx(2.0)
    assert common.slope([4, 5, 6, 8], [500.0, 530.0, 548.0, 610.0]) == pytest.approx(237 / 8.75)
    assert common.slope([4, 4], [1.0, 2.0]) is None
    assert common.slope([4, 5], [1.0, None]) is None


def _label(done, clip_index, latency=100.0):
    return {"done": done, "clip_index": clip_index, "end_frame": 15 + 4 * clip_index, "latency_ms": latency}


def test_window_counts_labels_skips_and_latency_inside_the_window_only():
    # clips 0..3 before the window (one skipped: 2), then 4, 6, 7, 10 inside (skipped 5, 8, 9), 11 after
    labels = [_label(1.0, 0, 900.0), _label(2.0, 1), _label(3.0, 3), _label(9.0, 4, 120.0), _label(10.0, 6, 80.0),
              _label(11.0, 7, 90.0), _label(12.0, 10, 400.0), _label(20.0, 11, 5000.0)]
    numbers = bench_serve.window_numbers(labels, 5.0, 15.0)
    assert numbers["done"] == 4
    assert numbers["skipped"] == 3           # 5, 8, 9 — not 2 (before) and not the label after the window
    assert sorted(numbers["latencies"]) == [80.0, 90.0, 120.0, 400.0]
    assert bench_serve.window_numbers(labels, 30.0, 40.0) == {"done": 0, "skipped": 0, "latencies": []}


def test_predictions_leave_out_event_lines(tmp_path):
    events = tmp_path / "cam0.jsonl"
    lines = [{"clip_index": 0, "end_frame": 15, "wall_time": "2026-01-01T00:00:01+00:00",
              "latency_ms": {"end_to_end": 50.0}},
             {"event": "gap", "wall_time": "2026-01-01T00:00:02+00:00"},
             {"clip_index": 2, "end_frame": 23, "wall_time": "2026-01-01T00:00:03+00:00",
              "latency_ms": {"end_to_end": 70.0}}]
    events.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    labels = bench_serve.predictions(events)
    assert [label["clip_index"] for label in labels] == [0, 2]
    assert labels[1]["done"] - labels[0]["done"] == pytest.approx(2.0)
    assert bench_serve._has_label(events)
    assert bench_serve.predictions(tmp_path / "missing.jsonl") == []


def test_camera_counts_and_resolution_parse():
    assert bench_serve.camera_counts("6,4,5") == ([4, 5, 6], False)
    assert bench_serve.camera_counts("4+") == ([4], True)
    with pytest.raises(ValueError):
        bench_serve.camera_counts("0,1")
    assert bench_serve.parse_resolution("640x360") == (640, 360)
    with pytest.raises(ValueError):
        bench_serve.parse_resolution("640")


def _fake_run(count: int, holds_up_to: int) -> dict:
    ok = count <= holds_up_to
    cams = {f"cam{i}": {"done": 30, "skipped_clips": 0 if ok else 2, "latency_p99_ms": 120.0 if ok else 650.0,
                        "run_skipped": 0, "dropped_frames": 0, "state": "finished"} for i in range(count)}
    run = {"cameras": cams, "done": 30 * count, "skipped": 0 if ok else 2 * count, "error": None,
           "latency_p99_ms": 120.0 if ok else 650.0, "rss_mb": 500.0 + 25.0 * count,
           "peak_rss_mb": 510.0 + 25.0 * count,
           "done_clips_per_s": 30 * count / 5.0, "returncode": 0}
    run["held"] = bench_serve.held(run)
    return run


def test_sweep_finds_the_most_cameras_held_and_memory_per_camera(monkeypatch, tmp_path):
    calls = []

    def fake(work, clip, count, stride, model, precision, seconds, settle_s):
        calls.append(count)
        return _fake_run(count, holds_up_to=6)

    monkeypatch.setattr(bench_serve, "run_cameras", fake)
    rows = bench_serve.sweep(tmp_path, Path("clip.mp4"), [4], True, 4, "m.xml", "int8", "640x360", 5.0, 1.0,
                             bare=50.0)
    assert calls == [4, 5, 6, 7]                       # N+: up until the first miss
    summary = rows[-1]
    assert summary["scenario"] == "sweep-summary" and summary["most_held"] == 6 and summary["first_missed"] == 7
    assert summary["rss_mb_per_camera"] == pytest.approx(25.0)
    six = next(r for r in rows if r.get("cameras") == 6)
    assert six["needed_clips_per_s"] == pytest.approx(37.5) and six["load_vs_bare"] == pytest.approx(0.75)
    assert six["held"] and not rows[-2]["held"]
    calls.clear()
    rows = bench_serve.sweep(tmp_path, Path("clip.mp4"), [4, 7, 8], False, 8, "m.xml", "int8", "640x360", 5.0, 1.0,
                             bare=None)
    assert calls == [4, 7, 8] and rows[-1]["most_held"] == 4     # a list runs whole unless --stop-at-miss
    table = bench_serve.format_table([{**r, "machine": MACHINE, "seconds": 5.0, "settle_s": 1.0} for r in rows])
    assert "| most cameras held, int8, 640x360 stride 8 | 4 (tried 4, 7, 8)" in table


def test_e2e_subset_measures_the_ratio_to_the_bare_model_with_the_throughput_hint(tmp_path):
    from edge.synthetic import write_moving_shapes_video

    video = write_moving_shapes_video(tmp_path / "tiny.mp4", 40, 160, 120, fps=25.0, codec="mp4v")
    argv = [sys.executable, str(BENCH / "bench_e2e.py"), "--smoke", "--video", str(video), "--variants", "rolling1",
            "--no-seed", "--precisions", "f32"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=common.python_env())
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert {(r["pipeline"], r["mode"], r["stride"], r["precision"]) for r in rows} == {
        ("edge-har", "rolling", 1, "f32"), ("bare", None, None, "f32")}
    bare = next(r for r in rows if r["pipeline"] == "bare")
    assert bare["bare_hint"] == "throughput" and bare["num_requests"] >= 1
    edge = next(r for r in rows if r["pipeline"] == "edge-har")
    assert edge["vs_bare"] == pytest.approx(edge["clips_per_s"] / bare["clips_per_s"])
    for row in rows:
        _check_row_tags(row)
    assert "xbare" in done.stdout and "logical cores" in done.stdout


def test_serve_sweep_smoke(tmp_path):
    import shutil

    if shutil.which("ffmpeg") is None:
        pytest.skip("the live-camera sweep needs the ffmpeg command (its HTTP streams)")
    out = tmp_path / "serve.json"
    argv = [sys.executable, str(BENCH / "bench_serve.py"), "--smoke", "--scenarios", "sweep", "--resolution",
            "160x120", "--cameras", "1,2", "--strides", "4", "--precision", "f32", "--json", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=common.python_env())
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text(encoding="utf-8"))
    runs = [r for r in rows if r["scenario"] == "sweep"]
    assert [r["cameras"] for r in runs] == [1, 2]
    for row in runs:
        _check_row_tags({**row, "settings": {"seconds": row["seconds"]}})
        assert row["error"] is None, row.get("stderr_tail")
        assert row["done"] > 0 and row["needed_clips_per_s"] == pytest.approx(row["cameras"] * 25 / 4)
        assert row["rss_mb"] > 10 and row["precision"] == "f32" and row["window_s"] == 2.0
        assert set(row["per_camera"]) == {f"cam{i}" for i in range(row["cameras"])}
    summary = rows[-1]
    assert summary["scenario"] == "sweep-summary" and summary["tried"] == [1, 2]
    assert summary["rss_mb_per_camera"] is not None
    assert "most cameras held" in done.stdout


def test_video_ratio_smoke(tmp_path):
    import shutil

    if shutil.which("ffmpeg") is None:
        pytest.skip("the video-ratio benchmark encodes its H.264 clip with the ffmpeg command")
    out = tmp_path / "video.json"
    argv = [sys.executable, str(BENCH / "bench_less_work.py"), "--smoke", "--scenarios", "video", "--video-modes",
            "batch", "--resolution", "160x120", "--json", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=common.python_env())
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = json.loads(out.read_text(encoding="utf-8"))
    assert row["batch_ratio"] == pytest.approx(row["batch_with_video"] / row["batch_without"])
    assert row["precision"] and row["resolution"] == "160x120" and "rolling_ratio" not in row
    _check_row_tags({**row, "settings": {"rounds": row["rounds"]}})
