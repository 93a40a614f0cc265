"""SIGINT/SIGTERM: the first signal asks every camera to finish cleanly, a second one exits at once."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Callable


class StopFlag:
    """Set by SIGINT/SIGTERM (or ``request()``); ``on_stop`` callbacks run once, from the handler.

    Callbacks must only set flags (they run inside a signal handler). A second signal calls
    ``os._exit(128 + signum)``: a stream stalled in a blocking read cannot hold the process.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        self._on_stop: list[Callable[[], None]] = []

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def on_stop(self, callback: Callable[[], None]) -> None:
        self._on_stop.append(callback)
        if self.event.is_set():
            callback()

    def request(self) -> None:
        """Stop as a signal would, without one (tests, the service's own shutdown)."""
        if not self.event.is_set():
            self.event.set()
            for callback in self._on_stop:
                callback()

    @property
    def signal_name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum else None

    def _handle(self, signum, _frame) -> None:
        if self.event.is_set():
            os._exit(128 + signum)
        self.signum = signum
        sys.stderr.write(f"\nedge-har: {signal.Signals(signum).name}: finishing in-flight clips (again to quit now)\n")
        self.request()
