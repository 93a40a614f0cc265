"""``summary.json`` (written atomically) and the short human summary printed at the end."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from edge.sinks import SinkError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_summary(path, summary: dict) -> Path:
    """Write ``summary`` as pretty JSON atomically (temp file in the same directory, then rename).

    Raises ``SinkError`` (one line) when it cannot be written, e.g. on a full disk; then no partial
    file is left behind and an older summary at ``path`` stays as it was.
    """
    path = Path(path)
    try:
        return _write_atomically(path, summary)
    except OSError as error:
        raise SinkError(f"cannot write the summary {path}: {error.strerror or error}") from None


def _write_atomically(path: Path, summary: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(summary, stream, indent=2, ensure_ascii=False, default=str)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, 0o666 & ~_current_umask())  # mkstemp makes 0600; a summary is for everyone
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        raise
    return path


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_summary(summary: dict) -> str:
    """The short human summary printed at the end of a run.

    Reads (all optional): ``source``, ``model``, ``untrained``, ``device``,
    ``precision``, ``frames``, ``clips``, ``skipped_clips``, ``input_fps``,
    ``processing_fps``, ``elapsed_s``, ``reconnects``, ``error``, ``outputs``
    (dict name → path) and ``latency_ms`` (stage → {p50, p90, p99, max}), the
    shape ``Metrics.snapshot()`` produces.
    """
    lines = []
    head = f"{summary.get('frames', 0)} frames, {summary.get('clips', 0)} clips"
    if summary.get("skipped_clips"):
        head += f" ({summary['skipped_clips']} skipped)"
    if summary.get("source"):
        head += f" from {summary['source']}"
    if summary.get("elapsed_s") is not None:
        head += f" in {_fmt(summary['elapsed_s'])} s"
    lines.append(head)
    if summary.get("model"):
        model = str(summary["model"])
        if summary.get("untrained"):
            model += " (untrained demo model: labels are meaningless)"
        where = ", ".join(str(summary[k]) for k in ("device", "precision") if summary.get(k))
        lines.append(f"model: {model}" + (f" on {where}" if where else ""))
    lines.append(f"throughput: input {_fmt(summary.get('input_fps'))} fps, "
                 f"processing {_fmt(summary.get('processing_fps'))} fps, "
                 f"{_fmt(summary.get('clips_per_s'), 2)} clips/s")
    if summary.get("reconnects"):
        lines.append(f"stream: {summary['reconnects']} reconnections")
    latency = summary.get("latency_ms") or {}
    rows = [(stage, stats) for stage, stats in latency.items() if stats and stats.get("count")]
    if rows:
        width = max(len("latency (ms)"), *(len(stage) for stage, _ in rows))
        lines.append(f"{'latency (ms)':<{width}}  {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
        for stage, stats in rows:
            lines.append(f"{stage:<{width}}  " + " ".join(f"{_fmt(stats.get(k)):>8}"
                                                          for k in ("p50", "p90", "p99", "max")))
    for name, target in (summary.get("outputs") or {}).items():
        if target:
            lines.append(f"{name}: {target}")
    if summary.get("error"):
        lines.append(f"error: {summary['error']}")
    return "\n".join(lines)
