"""Shared by the eval tests: running ``python -m edge``, the colour model's config, the annotated day.

The day (two scripted videos, 25 fps, batch mode, clips of 16 frames = 0.64 s; clip k is observed at its
newest frame, (16k + 15) / 25 s):

- ``a.mp4``: grey 1.28 | red 5.12 (clips 2–9) | grey 2.56 | red 1.92 (clips 14–16) | grey 3.84 |
  blue 3.84 (clips 23–28) | grey 1.28. Predicted: handwash [1.88, 6.36] and [9.56, 10.84] (the grey
  between lasts 2.56 s ≥ gap_s 2), food_prep [15.32, 18.52].
- ``b.mp4``: grey 1.28 | green 1.92 (clips 2–4) | grey 2.56 | red 1.28 (clips 9–10) | grey 2.56.
  Predicted: smoking [1.88, 3.16], handwash [6.36, 7.0].

Rules: ``wash-3s`` (min_duration handwash 3 s) passes a.mp4's first wash at 6.36, fails its second at
10.84 and b.mp4's at 7.0; ``no-smoking`` fails at b.mp4's 1.88.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from support_activities import ACTIVITIES_YAML, write_script_video

ROOT = Path(__file__).resolve().parents[2]

DAY_SCRIPTS = {
    "a.mp4": [("grey", 1.28), ("red", 5.12), ("grey", 2.56), ("red", 1.92), ("grey", 3.84), ("blue", 3.84),
              ("grey", 1.28)],
    "b.mp4": [("grey", 1.28), ("green", 1.92), ("grey", 2.56), ("red", 1.28), ("grey", 2.56)],
}
DAY_RULES = [{"name": "wash-3s", "kind": "min_duration", "activity": "handwash", "seconds": 3},
             {"name": "no-smoking", "kind": "forbidden", "activity": "smoking"}]
# handwash: a.mp4 [1.28, 6.4] ~ [1.88, 6.36] IoU 0.875; [8, 12] ~ [9.56, 10.84] IoU 1.28/4 = 0.32 (counts at
# 0.1 and 0.25, not 0.5); b.mp4 [6, 7.04] ~ [6.36, 7.0] IoU 0.64/1.04 = 0.615. smoking: a.mp4 [14, 15] has no
# prediction (FN); b.mp4 [1.28, 3.2] ~ [1.88, 3.16] IoU 0.667. food_prep: no truth, one prediction (FP).
ANNOTATIONS = """video,start_s,end_s,activity
a.mp4,1.28,6.4,handwash
a.mp4,8.0,12.0,handwash
a.mp4,14.0,15.0,smoking
b.mp4,6.0,7.04,handwash
b.mp4,1.28,3.2,smoking
"""
# wash-3s: a 6.4 pass ~ predicted pass (TN); a 11.0 pass ~ predicted failure at 10.84 (FP); b 6.0 fail ~
# failure at 7.0 (TP, delay 1.0). no-smoking: b 1.5 fail ~ 1.88 (TP, delay 0.38); a 15.0 fail, nothing (FN);
# a 5.0 pass (TN).
CHECKS = """video,rule,time_s,passed
a.mp4,wash-3s,6.4,true
a.mp4,wash-3s,11.0,true
b.mp4,wash-3s,6.0,false
b.mp4,no-smoking,1.5,false
a.mp4,no-smoking,15.0,false
a.mp4,no-smoking,5.0,true
"""


def environment() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def edge_har(*args, cwd, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], cwd=cwd, env=environment(),
                          capture_output=True, text=True, timeout=timeout, check=False)


def write_config(path: Path, model_xml, cache, *, rules=(), activities=None, extra=None) -> Path:
    config = {"model": {"path": str(model_xml)}, "inference": {"cache_dir": str(cache)},
              "activities": activities or ACTIVITIES_YAML, "rules": list(rules)}
    config.update(extra or {})
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def make_day(folder: Path, with_checks: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, script in DAY_SCRIPTS.items():
        write_script_video(folder / name, script)
    (folder / "annotations.csv").write_text(ANNOTATIONS, encoding="utf-8")
    if with_checks:
        (folder / "checks.csv").write_text(CHECKS, encoding="utf-8")
    return folder


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
