"""``edge-har report``: the day as a timeline PNG — one row per camera and activity.

Segments are bars; each check is a mark on the row of the segment it judged
(the last of its ``activity_ids``): green passed, red failed, grey undecided.
The time axis is wall-clock time for live cameras (``time_base`` ``wall``) and
media seconds for files. Needs matplotlib (``pip install 'edge-har[report]'``).

The geometry is fixed so that a pixel's time is computable (the tests read
the PNG back): the image is ``WIDTH_PX`` wide and ``TOP_PX + rows × ROW_PX +
BOTTOM_PX`` high; the plot spans x from ``LEFT_PX`` to ``WIDTH_PX - RIGHT_PX``
for the time range ``[t0, t1]``; row ``i`` (0 = top) spans y from ``TOP_PX + i
× ROW_PX`` down ``ROW_PX`` pixels. So time ``t`` is at
``x = LEFT_PX + (t - t0) / (t1 - t0) × (WIDTH_PX - LEFT_PX - RIGHT_PX)``. Unless
given, ``[t0, t1]`` is the earliest to the latest time in the records, widened
by ``PAD_FRACTION`` of that span on each side (marks at the ends stay whole).
Bars fill the middle ``BAR_FRACTION`` of a row; a mark is ``MARK_PX`` wide
and fills the middle ``MARK_FRACTION``, centred on the check's ``time_s``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

WIDTH_PX = 1600
ROW_PX = 40
TOP_PX = 50
BOTTOM_PX = 60
LEFT_PX = 240
RIGHT_PX = 40
DPI = 100
BAR_FRACTION = 0.6
MARK_FRACTION = 0.9
MARK_PX = 6
PAD_FRACTION = 0.02  # the default time range is widened by this share of its span on each side

BAR_COLOUR = "#4c72b0"
PASSED_COLOUR = "#2ca02c"
FAILED_COLOUR = "#d62728"
UNDECIDED_COLOUR = "#7f7f7f"


@dataclass(frozen=True)
class Timeline:
    """What was drawn: rows top to bottom as ``(camera, activity)``, the time range and base, the size."""

    rows: tuple[tuple[str, str], ...]
    t0: float
    t1: float
    time_base: str
    width_px: int
    height_px: int


def _segments(records: list[Mapping]):
    """``{(run_id, id): [camera, activity, start, end|None, last_known]}`` in order of appearance."""
    segments: dict[tuple, list] = {}
    for record in records:
        if record.get("event") != "activity":
            continue
        key = (record.get("run_id"), record["id"])
        start = float(record["start_time_s"])
        known = start + float(record.get("duration_s") or 0.0)
        if key not in segments:
            segments[key] = [record["camera"], record["activity"], start, None, known]
        segment = segments[key]
        segment[4] = max(segment[4], known)
        if record.get("type") == "end" and record.get("end_time_s") is not None:
            segment[3] = float(record["end_time_s"])
    return segments


def draw_timeline(records: Iterable[Mapping], output_path, *, time_range: tuple[float, float] | None = None,
                  title: str | None = None) -> Timeline:
    """Draw activity segments and check marks from events.jsonl records into a PNG at ``output_path``.

    ``records``: any events.jsonl objects (prediction lines only widen the
    time range; status lines are ignored). ``time_range``: ``(t0, t1)`` on the
    records' time base; default the earliest to the latest time in them, padded (see the module docstring).
    Raises ``ValueError`` when the records mix media time and wall time, and
    ``ImportError`` (with the install hint) without matplotlib.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
        from matplotlib.ticker import FuncFormatter, MaxNLocator
    except ImportError:
        raise ImportError("edge-har report needs matplotlib: pip install 'edge-har[report]'") from None

    records = [r for r in records if isinstance(r, Mapping)]
    bases = {r["time_base"] for r in records if r.get("event") in ("activity", "check") and r.get("time_base")}
    if len(bases) > 1:
        raise ValueError("the events mix files (media time) and live cameras (wall time); "
                         "draw them in separate reports")
    time_base = bases.pop() if bases else "media"
    segments = _segments(records)
    by_id = {key: (segment[0], segment[1]) for key, segment in segments.items()}

    rows: list[tuple[str, str]] = []
    for camera, activity, *_ in segments.values():
        if (camera, activity) not in rows:
            rows.append((camera, activity))
    checks = []
    for record in records:
        if record.get("event") != "check":
            continue
        ids = record.get("activity_ids") or []
        row = by_id.get((record.get("run_id"), ids[-1])) if ids else None
        row = row or (record["camera"], "checks")
        if row not in rows:
            rows.append(row)
        checks.append((rows.index(row), float(record["time_s"]), record.get("passed")))

    times = [t for s in segments.values() for t in (s[2], s[3] if s[3] is not None else s[4])]
    times += [t for _, t, _ in checks]
    for record in records:
        if "event" not in record and "end_time_s" in record:  # prediction lines
            try:
                from edge.activities import observation_time

                times.append(observation_time(record, time_base))
            except (KeyError, TypeError, ValueError):
                pass
    if time_range is not None:
        t0, t1 = (float(v) for v in time_range)
    else:
        t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
        pad = (t1 - t0) * PAD_FRACTION
        t0, t1 = t0 - pad, t1 + pad
    if t1 <= t0:
        t1 = t0 + 1.0

    count = max(1, len(rows))
    height = TOP_PX + count * ROW_PX + BOTTOM_PX
    plot_w = WIDTH_PX - LEFT_PX - RIGHT_PX
    figure = Figure(figsize=(WIDTH_PX / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    axes = figure.add_axes((LEFT_PX / WIDTH_PX, BOTTOM_PX / height, plot_w / WIDTH_PX, count * ROW_PX / height))
    axes.set_xlim(t0, t1)
    axes.set_ylim(count, 0)
    axes.set_facecolor("white")
    axes.set_yticks([i + 0.5 for i in range(len(rows))])
    axes.set_yticklabels([f"{camera} · {activity}" for camera, activity in rows])
    axes.tick_params(axis="y", length=0)
    for boundary in range(1, count):
        axes.axhline(boundary, color="#dddddd", linewidth=0.8, zorder=0)

    for camera, activity, start, end, known in segments.values():
        stop = end if end is not None else max(known, t1)
        row = rows.index((camera, activity))
        axes.add_patch(Rectangle((start, row + (1 - BAR_FRACTION) / 2), max(stop - start, 0.0), BAR_FRACTION,
                                 facecolor=BAR_COLOUR, edgecolor="none", zorder=2))
    mark_w = MARK_PX / plot_w * (t1 - t0)
    for row, time_s, passed in checks:
        colour = PASSED_COLOUR if passed is True else FAILED_COLOUR if passed is False else UNDECIDED_COLOUR
        axes.add_patch(Rectangle((time_s - mark_w / 2, row + (1 - MARK_FRACTION) / 2), mark_w, MARK_FRACTION,
                                 facecolor=colour, edgecolor="none", zorder=3))

    axes.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 2, 3, 5, 6, 10]))
    if time_base == "wall":
        axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: datetime.fromtimestamp(x).strftime("%H:%M:%S")))
        day = datetime.fromtimestamp(t0).astimezone()
        axes.set_xlabel(f"wall-clock time ({day:%Y-%m-%d}, UTC{day:%z})")
    else:
        axes.set_xlabel("media time (s)")
    legend = "bars: activity · green: check passed · red: failed · grey: undecided"
    figure.text(LEFT_PX / WIDTH_PX, 1 - 18 / height, title or "edge-har timeline", fontsize=12, weight="bold",
                va="center")
    figure.text(1 - RIGHT_PX / WIDTH_PX, 1 - 18 / height, legend, fontsize=9, ha="right", va="center")
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output_path, dpi=DPI, facecolor="white")
    return Timeline(tuple(rows), t0, t1, time_base, WIDTH_PX, height)
