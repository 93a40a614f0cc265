"""What the terminal shows while the service runs, and the summary at the end.

- ``run`` on a file, on a terminal: one progress bar line, redrawn in place,
  with the current label (``output.progress``: auto | true | false).
- live cameras and ``serve``: one status line per camera every
  ``output.log_every_s`` seconds: state, fps, clips/s, skipped, the latest label.
- the end: each camera's short summary, unless ``-q`` (warnings only).
"""

from __future__ import annotations

import logging
import sys
import time

from edge.sinks import format_summary

log = logging.getLogger("edge.service")

BAR_WIDTH = 30
REDRAW_S = 0.25


def _label_of(status: dict) -> str:
    prediction = status.get("prediction")
    if not prediction:
        return "-"
    if prediction.get("gated"):
        return "still"
    return f"{prediction['label']} {prediction['score']:.2f}"


def status_line(name: str, status: dict) -> str:
    """``sink: online | 24.9 fps | 3.00 clips/s | skipped 2 | washing hands 0.87`` for one camera."""
    parts = [f"{name}: {status['state']}"]
    if status.get("reason") and status["state"] != "online":
        parts[0] += f" ({status['reason']})"
    fps, rate = status.get("fps"), status.get("clips_per_s")
    parts.append(f"{fps:.1f} fps" if fps is not None else "- fps")
    parts.append(f"{rate:.2f} clips/s" if rate is not None else "- clips/s")
    if status.get("skipped_clips"):
        parts.append(f"skipped {status['skipped_clips']}")
    if status.get("gated_clips"):
        parts.append(f"still {status['gated_clips']}")
    parts.append(_label_of(status))
    activity = status.get("activity")
    if activity:
        parts.append(f"activity {activity['activity']}")
    return " | ".join(parts)


class Terminal:
    """Progress bar or periodic status lines for a running ``Service``; ``update()`` is cheap to call often."""

    def __init__(self, service, interactive: bool) -> None:
        self.service = service
        lanes = list(service.lanes.values())
        self._bar_lane = None
        if service.mode == "run" and len(lanes) == 1 and not lanes[0].live and lanes[0].source is not None:
            progress = lanes[0].camera.output.progress   # True, False or None (auto: on a terminal)
            total = lanes[0].source.frame_count
            if total and (progress or (progress is None and interactive)):
                self._bar_lane = lanes[0]
                self._total = total
        every = [float(lane.camera.output.log_every_s) for lane in lanes] or [10.0]
        self._every_s = min(every)
        self._next_status = time.monotonic() + self._every_s
        self._next_draw = 0.0
        self._drawn = False
        self._periodic = any(lane.live for lane in lanes) or service.mode == "serve"

    def update(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._bar_lane is not None and (force or now >= self._next_draw):
            self._next_draw = now + REDRAW_S
            self._draw_bar()
        if self._periodic and now >= self._next_status:
            self._next_status = now + self._every_s
            for name, lane in self.service.lanes.items():
                log.info(status_line(name, lane.status()))

    def _draw_bar(self, done: int | None = None) -> None:
        status = self._bar_lane.status()
        done = status["frames"] if done is None else done
        filled = int(BAR_WIDTH * min(done, self._total) / self._total)
        fps = status.get("fps")
        text = (f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{self._total} frames"
                f" | {fps:.1f} fps" if fps is not None else
                f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{self._total} frames")
        sys.stderr.write(f"{text} | {_label_of(status)}\x1b[K")  # \x1b[K: clear what a longer line left
        sys.stderr.flush()
        self._drawn = True

    def close(self) -> None:
        if self._bar_lane is not None and self._drawn:
            frames = self._bar_lane.status()["frames"]
            # The container's count is an estimate; the bar ends where decoding really ended.
            self._total = max(frames, 1) if frames < self._total and self._bar_lane.done else self._total
            self._draw_bar(frames)
            sys.stderr.write("\n")
            sys.stderr.flush()

    @staticmethod
    def print_summaries(summaries: dict[str, dict], typed: dict) -> None:
        """Each camera's short summary on stderr, unless -q asked for warnings only."""
        if not log.isEnabledFor(logging.INFO):
            return
        several = len(summaries) > 1
        for name, summary in summaries.items():
            text = format_summary(summary)
            if several:
                text = f"== {name} ({summary.get('state')})\n{text}"
            print(text, file=sys.stderr)
