"""``--report DIR``: ``index.html`` and its PNGs, all openable offline (relative links, no script).

- ``confusion.png`` (labelled clips): true class rows, predicted class columns, counts in the cells;
- ``timeline-<activity>.png`` (annotated videos): for each video a truth row above a prediction row;
- ``pr-<activity>.png``: precision, recall and F1 over ``min_score`` at the activity's ``gap_s``, tIoU 0.5.

Needs matplotlib (``pip install 'edge-har[report]'``); without it ``write_report`` raises ``EvalError``
with that hint, before writing anything.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from edge.eval.truth import EvalError

TRUTH_COLOUR = "#2ca02c"
PREDICTED_COLOUR = "#4c72b0"
DPI = 100


def require_matplotlib():
    """matplotlib's ``(Figure, FigureCanvasAgg)``; ``EvalError`` with the install hint without it."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise EvalError("--report needs matplotlib: pip install 'edge-har[report]'") from None
    return Figure, FigureCanvasAgg


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "_"


def write_report(result, folder) -> Path:
    """Write the report of an ``edge.eval.Evaluation`` into ``folder``; returns the path of ``index.html``."""
    from edge.eval.evaluate import pr_curve

    Figure, Canvas = require_matplotlib()
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EvalError(f"{folder}: cannot create the report folder: {error.strerror or error}") from None
    images: list[tuple[str, str]] = []
    numbers = result.numbers
    if "clips" in numbers:
        images.append(("Confusion matrix", _confusion(numbers["clips"]["confusion"], folder / "confusion.png",
                                                      Figure, Canvas)))
    if "segments" in numbers:
        for activity in result.activities:
            name = f"timeline-{_slug(activity)}.png"
            _timeline(result, activity, folder / name, Figure, Canvas)
            images.append((f"{activity}: truth above prediction, per video", name))
        for activity, grid in pr_curve(result).items():
            name = f"pr-{_slug(activity)}.png"
            _curve(activity, grid, result.min_score.get(activity), result.gap_s.get(activity), folder / name,
                   Figure, Canvas)
            images.append((f"{activity}: precision and recall over min_score", name))
    index = folder / "index.html"
    index.write_text(_page(numbers, images), encoding="utf-8")
    return index


def _save(figure, path: Path) -> str:
    figure.savefig(path, dpi=DPI, facecolor="white")
    return path.name


def _confusion(confusion: dict, path: Path, Figure, Canvas) -> str:
    import numpy as np

    rows = list(confusion)
    columns = rows + sorted({p for row in confusion.values() for p in row} - set(rows))
    cells = np.array([[confusion[r].get(c, 0) for c in columns] for r in rows], dtype=float)
    figure = Figure(figsize=(2.5 + 0.7 * len(columns), 1.8 + 0.5 * len(rows)), dpi=DPI, facecolor="white")
    Canvas(figure)
    axes = figure.add_subplot()
    axes.imshow(cells, cmap="Blues", aspect="auto", vmin=0, vmax=max(1.0, cells.max()))
    axes.set_xticks(range(len(columns)), labels=columns, rotation=40, ha="right")
    axes.set_yticks(range(len(rows)), labels=rows)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for i in range(len(rows)):
        for j in range(len(columns)):
            if cells[i, j]:
                axes.text(j, i, f"{int(cells[i, j])}", ha="center", va="center",
                          color="white" if cells[i, j] > cells.max() / 2 else "black")
    figure.tight_layout()
    return _save(figure, path)


def _timeline(result, activity: str, path: Path, Figure, Canvas) -> str:
    from matplotlib.patches import Rectangle

    videos = [str(v) for v in result.truth.videos]
    truth = {}
    for segment in result.truth.segments:
        if segment.activity == activity:
            truth.setdefault(str(segment.video), []).append((segment.start_s, segment.end_s))
    ends = [end for spans in truth.values() for _, end in spans]
    ends += [end for (video, name), spans in result.segments.items() if name == activity for _, end in spans]
    t1 = max(ends, default=1.0) * 1.02 + 0.5
    figure = Figure(figsize=(12, 1.0 + 0.6 * len(videos)), dpi=DPI, facecolor="white")
    Canvas(figure)
    axes = figure.add_subplot()
    axes.set_xlim(0, t1)
    axes.set_ylim(len(videos), 0)
    for row, video in enumerate(videos):
        for start, end in truth.get(video, ()):
            axes.add_patch(Rectangle((start, row + 0.08), max(end - start, t1 / 500), 0.38, color=TRUTH_COLOUR))
        for start, end in result.segments.get((video, activity), ()):
            axes.add_patch(Rectangle((start, row + 0.54), max(end - start, t1 / 500), 0.38, color=PREDICTED_COLOUR))
        axes.axhline(row, color="#dddddd", linewidth=0.8)
    axes.set_yticks([row + 0.5 for row in range(len(videos))], labels=[Path(v).name for v in videos])
    axes.set_xlabel("media time (s)")
    axes.set_title(f"{activity}: truth (green, above) and prediction (blue, below)", fontsize=10)
    figure.tight_layout()
    return _save(figure, path)


def _curve(activity: str, grid: list[dict], min_score, gap_s, path: Path, Figure, Canvas) -> str:
    figure = Figure(figsize=(6, 4), dpi=DPI, facecolor="white")
    Canvas(figure)
    axes = figure.add_subplot()
    xs = [point["min_score"] for point in grid]
    for key, colour in (("precision", "#4c72b0"), ("recall", "#dd8452"), ("f1", "#55a868")):
        axes.plot(xs, [float("nan") if point[key] is None else point[key] for point in grid], marker="o",
                  markersize=3, label=key, color=colour)
    if min_score is not None:
        axes.axvline(min_score, color="#999999", linestyle="--", label=f"config min_score {min_score:g}")
    axes.set_xlim(0, 1)
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("min_score")
    axes.set_title(f"{activity} at gap_s {gap_s:g}, tIoU 0.5", fontsize=10)
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    return _save(figure, path)


def _page(numbers: dict, images: list[tuple[str, str]]) -> str:
    from edge.eval.evaluate import summary_table

    figures = "\n".join(f'<figure><img src="{html.escape(name)}" alt="{html.escape(caption)}">'
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>" for caption, name in images)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edge-har eval</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1300px}}img{{max-width:100%;border:1px solid #ddd}}
pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}figure{{margin:1.5em 0}}</style></head>
<body><h1>edge-har eval</h1>
<pre>{html.escape(summary_table(numbers))}</pre>
{figures}
<details><summary>All numbers (JSON)</summary><pre>{html.escape(json.dumps(numbers, indent=1))}</pre></details>
</body></html>
"""
