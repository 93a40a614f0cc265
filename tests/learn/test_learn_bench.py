"""A smoke run of ``benchmarks/bench_learn.py``'s train scenario: the shape of its output, never the speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support_eval import ROOT, environment


def test_train_benchmark_smoke(tmp_path):
    out = tmp_path / "rows.jsonl"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_learn.py"), "--smoke", "--scenarios",
                             "train", "--json", str(out)], cwd=tmp_path, env=environment(), capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in Path(out).read_text().splitlines()]
    assert [row["bench"] for row in rows] == ["learn_train", "learn_train_median"]
    assert rows[0]["clips"] == 100 and rows[0]["classes"] == 5 and "logical_cores" in rows[0]
    assert rows[0]["cv_accuracy"] > 0.5  # the synthetic classes are separable: chance is 0.2
    assert "train: 100 clips of 5 classes: median" in result.stdout
