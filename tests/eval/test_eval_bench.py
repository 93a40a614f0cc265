"""A smoke run of ``benchmarks/bench_eval.py``'s sweep scenario: the shape of its output, never the speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support_eval import ROOT, environment


def test_sweep_benchmark_smoke(tmp_path):
    out = tmp_path / "rows.jsonl"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_eval.py"), "--smoke", "--scenarios",
                             "sweep", "--json", str(out)], cwd=tmp_path, env=environment(), capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    [row] = [json.loads(line) for line in Path(out).read_text().splitlines()]
    assert row["bench"] == "eval_sweep" and row["grid_points"] == 100 and row["lines"] == 11249
    assert row["best"]["gap_s"] in (0.5, 1.0, 2.0, 4.0, 8.0) and "logical_cores" in row
    assert "sweep: 11249 lines, 100 points" in result.stdout
