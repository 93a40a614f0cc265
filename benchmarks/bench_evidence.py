"""How soon a failed check's clip is on disk and listed in ``/api/clips`` (issue 16: within ``post_s + 3 s``).

    python benchmarks/bench_evidence.py [--cycles 6] [--pre-s 5] [--post-s 5] [--cameras 1] [--json OUT]

``edge-har serve`` of live cameras, each an ffmpeg ``-re`` HTTP stream (MPEG-TS, H.264 copied) of a
scripted day: ``--cycles`` times a short hand wash (6 s red: fails ``wash-20s``, a ``min_duration`` of 20 s)
then smoking (2 s green: fails ``no-smoking``, ``forbidden``). The model is the test suite's colour model
(``tests/support_activities.py``: a clip's mean colour picks the label), so the checks fail where the script
says; it needs the test extras (``pip install -e ".[test]"``). The camera is recorded by the tap on its
inference source; clips are cut from the recorder (no re-encoding).

For each failed check, this reads from ``/api/clips`` (polled every 50 ms) when its clip was first listed,
and from the events file the ``wall_time`` of the check line and of the end of the activity it judged:

- ``after_check_s``: listed − the check line. A ``min_duration`` check is judged once its activity ended,
  so its clip waits for ``post_s`` more of recording: the target is ``post_s + 3 s``.
- ``after_end_s``: listed − the end of the judged activity. A ``forbidden`` check fires when its activity
  *starts*, and its clip spans the whole activity, so it can only be cut ``post_s`` after the activity ends:
  for those this is the comparable number.

Medians and maxima per rule are printed; the target holds when every clip is within ``post_s + 3 s`` of
the later of the two moments.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_serve  # noqa: E402
import common  # noqa: E402

TESTS = common.REPO_DIR / "tests"
sys.path.insert(0, str(TESTS))  # the colour model and the scripted video are the test suite's
CYCLE = [("grey", 4.0), ("red", 6.0), ("grey", 3.0), ("green", 2.0), ("grey", 5.0)]
RULES = [{"name": "wash-20s", "kind": "min_duration", "activity": "handwash", "seconds": 20},
         {"name": "no-smoking", "kind": "forbidden", "activity": "smoking"}]
MARGIN_S = 3.0


def scripted_day(folder: Path, cycles: int) -> Path:
    """The day as H.264 (libx264, 1 s GOP) in MPEG-TS."""
    from support_evidence import write_h264

    mp4 = write_h264(folder / "day.mp4", [("grey", 2.0)] + CYCLE * cycles + [("grey", 30.0)])
    ts = folder / "day.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(mp4), "-c", "copy", "-f", "mpegts", str(ts)], check=True)
    return ts


def colour_model(folder: Path) -> Path:
    from support_activities import save_test_model

    return save_test_model(folder)


def wall(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def run(work: Path, cameras: int, cycles: int, pre_s: float, post_s: float) -> dict:
    from support_activities import ACTIVITIES_YAML

    day = scripted_day(work, cycles)
    model = colour_model(work / "model")
    port = bench_serve._free_port()
    streams = bench_serve.Streams(day, cameras)
    names = [f"cam{number}" for number in range(cameras)]
    config = {
        "model": {"path": str(model)},
        "sampling": {"mode": "rolling", "stride": 4},
        "output": {"events": str(work / "{camera}.jsonl"), "rotate": "none", "progress": False},
        "http": {"host": "127.0.0.1", "port": port},
        "record": {"dir": str(work / "rec" / "{camera}")},
        "evidence": {"pre_s": pre_s, "post_s": post_s, "dir": str(work / "clips" / "{camera}")},
        "activities": ACTIVITIES_YAML,
        "rules": RULES,
        "cameras": {name: {"source": url} for name, url in zip(names, streams.urls)},
    }
    import yaml

    (work / "edge-har.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(common.REPO_DIR)}
    process = subprocess.Popen([common.PYTHON, "-m", "edge", "-q", "serve", "-c", str(work / "edge-har.yaml")],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    listed: dict[str, float] = {}
    expected = 2 * cycles * cameras
    day_s = 2.0 + sum(seconds for _, seconds in CYCLE) * cycles
    deadline = time.monotonic() + 300.0 + day_s
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True).start()
    try:
        while len(listed) < expected and time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/clips?limit=1000", timeout=5) as reply:
                    items = json.load(reply)
            except OSError:
                items = []
            now = time.time()
            for item in items:
                listed.setdefault(item["clip_url"], now)
            time.sleep(0.05)  # the poll's period: the resolution of the measurement
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        streams.stop()
    rows = []
    for name in names:
        events = [json.loads(line) for line in (work / f"{name}.jsonl").read_text().splitlines() if line.strip()]
        ends = {e["id"]: wall(e["wall_time"]) for e in events if e.get("event") == "activity" and e["type"] == "end"}
        checks = {e["id"]: e for e in events if e.get("event") == "check" and e["passed"] is False}
        for clip in (e for e in events if e.get("event") == "clip" and e.get("check_id") in checks):
            check = checks[clip["check_id"]]
            shown = listed.get(clip["clip_url"])
            end = max(ends.get(i, 0.0) for i in check["activity_ids"])
            rows.append({"camera": name, "rule": check["rule"], "after_check_s": None if shown is None else
                         shown - wall(check["wall_time"]), "after_end_s": None if shown is None else shown - end,
                         "line_after_check_s": wall(clip["wall_time"]) - wall(check["wall_time"])})
    return {"rows": rows, "expected": expected, "listed": len(listed),
            "stderr_tail": "".join(stderr)[-2000:] if len(rows) < expected else None}


def summarise(result: dict, post_s: float) -> dict:
    out = {}
    for rule in sorted({row["rule"] for row in result["rows"]}):
        rows = [row for row in result["rows"] if row["rule"] == rule and row["after_check_s"] is not None]
        later = [min(row["after_check_s"], row["after_end_s"]) for row in rows]
        out[rule] = {"n": len(rows),
                     "after_check_s": {"median": statistics.median(r["after_check_s"] for r in rows),
                                       "max": max(r["after_check_s"] for r in rows)},
                     "after_end_s": {"median": statistics.median(r["after_end_s"] for r in rows),
                                     "max": max(r["after_end_s"] for r in rows)},
                     "within_target": all(value <= post_s + MARGIN_S for value in later)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--cameras", type=int, default=1)
    parser.add_argument("--pre-s", type=float, default=5.0)
    parser.add_argument("--post-s", type=float, default=5.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edge-bench-evidence-") as folder:
        result = run(Path(folder), args.cameras, args.cycles, args.pre_s, args.post_s)
    summary = summarise(result, args.post_s)
    print(f"machine: {common.machine().get('cpu_model')}, {common.machine().get('logical_cores')} logical cores")
    print(f"failed checks with a clip listed: {sum(s['n'] for s in summary.values())} of {result['expected']} "
          f"(pre_s {args.pre_s:g}, post_s {args.post_s:g}; target: listed within post_s + {MARGIN_S:g} s)")
    for rule, row in summary.items():
        print(f"  {rule:12s} n={row['n']:3d}  after the check line: median {row['after_check_s']['median']:.2f} s, "
              f"max {row['after_check_s']['max']:.2f} s;  after the activity's end: median "
              f"{row['after_end_s']['median']:.2f} s, max {row['after_end_s']['max']:.2f} s;  "
              f"{'within' if row['within_target'] else 'NOT within'} target")
    if result["stderr_tail"]:
        print(result["stderr_tail"], file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, **result}, indent=1), encoding="utf-8")
    return 0 if summary and all(row["within_target"] for row in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
