"""A camera's health: the one place its state, reason and counters live.

``CameraState`` is the vocabulary (MQTT status topics, the page, summary.json and
``systemctl status`` all print its values). ``Health`` is owned by the camera's reader
side: the source moves it (first frame, reconnecting, back, given up, ended) from the
reader thread, the live buffer counts the frames it drops, and every transition is told
once, in order, to the one listener the lane attaches. Readers on other threads (the
watchdog, /api/status, the summary) only read its fields.
"""

from __future__ import annotations

import enum
import threading
import time
from typing import Callable


class CameraState(str, enum.Enum):
    STARTING = "starting"
    ONLINE = "online"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"
    FINISHED = "finished"

    def __str__(self) -> str:  # prints as the word users see
        return self.value


Listener = Callable[[CameraState, "str | None"], None]


class Health:
    """State, reason and counters of one camera; emits one call per state transition.

    ``state``/``reason``: the current state and its one-line reason (None when there is none).
    ``frames``: frames read; ``reconnects``: successful reopenings; ``reconnect_attempts``:
    every reopening tried (the systemd watchdog's proof of life); ``dropped``: live frames
    dropped because the lane was behind; ``last_frame_monotonic``: ``time.monotonic()`` of the
    newest frame (None before the first).
    """

    def __init__(self, state: CameraState = CameraState.STARTING, reason: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._listener: Listener | None = None
        self._clock = clock
        self.state = CameraState(state)
        self.reason = reason
        self.frames = 0
        self.reconnects = 0
        self.reconnect_attempts = 0
        self.dropped = 0
        self.last_frame_monotonic: float | None = None

    def listen(self, listener: Listener) -> None:
        """From now on ``listener(state, reason)`` hears every transition; it hears the current state at once."""
        with self._lock:
            self._listener = listener
            listener(self.state, self.reason)

    def set(self, state: CameraState, reason: str | None = None) -> bool:
        """Move to ``state``; True (and the listener told) when that is a change of state or reason."""
        state = CameraState(state)
        with self._lock:  # held while telling, so two threads' transitions are told in the order made
            if (state, reason) == (self.state, self.reason):
                return False
            self.reason = reason  # reason first: a reader that sees the new state sees its reason
            self.state = state
            if self._listener is not None:
                self._listener(state, reason)
            return True

    def frame(self) -> None:
        """A frame was read: counted, timed, and the camera is online."""
        self.frames += 1
        self.last_frame_monotonic = self._clock()
        if self.state is not CameraState.ONLINE:
            self.set(CameraState.ONLINE)

    def last_frame_age_s(self) -> float | None:
        """Seconds since the newest frame (None before the first)."""
        last = self.last_frame_monotonic
        return None if last is None else self._clock() - last


__all__ = ["CameraState", "Health"]
