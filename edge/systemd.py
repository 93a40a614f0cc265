"""Telling systemd how the service is doing: sd_notify over ``NOTIFY_SOCKET``, no dependency.

With ``Type=notify`` the engine sends ``READY=1`` once it serves, ``STATUS=...``
lines as it goes, and ``STOPPING=1`` when it shuts down. With ``WatchdogSec=``
systemd sets ``WATCHDOG_USEC``; ``Watchdog`` then sends ``WATCHDOG=1`` every
half period, but only while the engine makes progress (frames decoded or
clips predicted since the last ping), so a wedged engine is restarted by
systemd (``Restart=on-failure``) rather than kept alive by a healthy thread.

Outside systemd (no ``NOTIFY_SOCKET``) everything here is a no-op. In the engine::

    notify("READY=1")                                   # model compiled, HTTP listening
    watchdog = Watchdog(lambda: (frames_decoded, clips_predicted, reconnect_attempts)).start()
    notify("STATUS=2 of 2 cameras online")
    ...
    notify("STOPPING=1"); watchdog.stop()
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Callable, Mapping

log = logging.getLogger(__name__)

_UNSET = object()


def _address(path: str) -> str | bytes:
    # "@name" is a socket in the abstract namespace: a leading NUL byte, no file.
    return b"\0" + path[1:].encode() if path.startswith("@") else path


def notify(state: str, *, env: Mapping[str, str] = os.environ) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``, ``"WATCHDOG=1"``, ``"STOPPING=1"``, ``"STATUS=2 cameras online"``;
    several assignments separated by newlines) to systemd's ``NOTIFY_SOCKET``.

    Returns True if sent, False when not run by systemd or the socket cannot be
    reached (logged once per call at debug level; never raises).
    """
    path = env.get("NOTIFY_SOCKET")
    if not path or not (path.startswith("/") or path.startswith("@")):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode("utf-8"), _address(path))
        return True
    except OSError as error:
        log.debug("sd_notify %r to %s failed: %s", state, path, error)
        return False


def watchdog_interval_s(env: Mapping[str, str] = os.environ, pid: int | None = None) -> float | None:
    """Half of ``WATCHDOG_USEC`` in seconds, or None when systemd asked for no watchdog (or for another process)."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    owner = env.get("WATCHDOG_PID")
    if owner and owner.isdigit() and int(owner) != (os.getpid() if pid is None else pid):
        return None
    return usec / 2e6 if usec > 0 else None


class Watchdog:
    """Pings systemd's watchdog every half ``WATCHDOG_USEC`` while ``progress()`` changes.

    ``progress``: returns something that changes while the engine works (e.g.
    the total of frames decoded and clips predicted); compared with ``!=`` to
    the value at the previous check. A stall means no ping, so systemd kills
    and restarts the service after ``WatchdogSec``. ``start()`` runs the checks
    in a daemon thread (nothing happens without ``WATCHDOG_USEC``); ``check()``
    is one check, for callers with their own clock.
    """

    def __init__(self, progress: Callable[[], object], *, interval_s: float | None | object = _UNSET,
                 env: Mapping[str, str] = os.environ, send: Callable[[str], bool] | None = None) -> None:
        self.progress = progress
        self.interval_s = watchdog_interval_s(env) if interval_s is _UNSET else interval_s
        self._send = send if send is not None else (lambda state: notify(state, env=env))
        self._last = _UNSET
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pings = 0
        self.stalls = 0

    @property
    def enabled(self) -> bool:
        return self.interval_s is not None

    def check(self) -> bool:
        """Ping if ``progress()`` moved since the previous check; True if a ping was sent."""
        try:
            value = self.progress()
        except Exception as error:  # noqa: BLE001  a broken probe is a stall, not a crash
            log.warning("watchdog: progress probe failed: %s", error)
            self.stalls += 1
            return False
        moved = self._last is _UNSET or value != self._last
        self._last = value
        if not moved:
            self.stalls += 1
            return False
        self.pings += 1
        return bool(self._send("WATCHDOG=1"))

    def start(self) -> "Watchdog":
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="edge-har-watchdog", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()

    def stop(self) -> None:
        """Stops the thread (bounded join); idempotent."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(1.0, 2 * (self.interval_s or 0)))
