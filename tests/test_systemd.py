"""sd_notify and the progress-gated watchdog, against a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from edge.systemd import Watchdog, notify, watchdog_interval_s


@pytest.fixture
def notify_socket(tmp_path):
    """A bound datagram socket standing in for systemd; yields (NOTIFY_SOCKET value, socket)."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(10)  # a bound on waiting for a datagram that must come
        yield str(path), sock


def received(sock) -> str:
    return sock.recv(4096).decode()


def nothing_waiting(sock) -> bool:
    """True if no datagram is queued; otherwise takes one off the queue and says False."""
    if select.select([sock], [], [], 0)[0]:
        sock.recv(4096)
        return False
    return True


def test_ready_status_watchdog_stopping_reach_the_socket(notify_socket):
    path, sock = notify_socket
    env = {"NOTIFY_SOCKET": path}
    for state in ("READY=1", "STATUS=2 cameras online", "WATCHDOG=1", "STOPPING=1"):
        assert notify(state, env=env) is True
        assert received(sock) == state
    assert nothing_waiting(sock)


def test_abstract_namespace_socket():
    name = f"edge-har-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        assert notify("READY=1", env={"NOTIFY_SOCKET": "@" + name}) is True
        assert received(sock) == "READY=1"


def test_no_socket_is_a_quiet_no_op(tmp_path):
    assert notify("READY=1", env={}) is False
    assert notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "nobody-listens.sock")}) is False
    assert notify("READY=1", env={"NOTIFY_SOCKET": "relative/path"}) is False


def test_watchdog_interval_is_half_of_watchdog_usec():
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "junk"}) is None
    # WATCHDOG_PID names the process systemd watches; another process must not ping.
    assert watchdog_interval_s({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}) == 1.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid() + 1)}) is None


def test_watchdog_pings_only_while_progress_moves(notify_socket):
    path, sock = notify_socket
    frames = [0]
    watchdog = Watchdog(lambda: frames[0], env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"})
    assert watchdog.interval_s == 15.0
    assert watchdog.check() is True                     # first look: the engine just started
    assert received(sock) == "WATCHDOG=1"
    for _ in range(3):                                  # stalled: no ping, however often it looks
        assert watchdog.check() is False
    assert nothing_waiting(sock)
    frames[0] += 25                                     # progress again: ping again
    assert watchdog.check() is True
    assert received(sock) == "WATCHDOG=1"
    assert watchdog.check() is False
    assert nothing_waiting(sock)
    assert (watchdog.pings, watchdog.stalls) == (2, 4)


def test_watchdog_thread_pings_at_half_the_period_and_stops_pinging_on_a_stall(notify_socket):
    path, sock = notify_socket
    state = {"value": 0, "moving": True, "stalled_looks": 0}
    looked = threading.Condition()

    def probe():
        with looked:
            if state["moving"]:
                state["value"] += 1
            else:
                state["stalled_looks"] += 1
            looked.notify_all()
            return state["value"]

    def wait_stalled_looks(count):
        with looked:
            assert looked.wait_for(lambda: state["stalled_looks"] >= count, timeout=10)

    watchdog = Watchdog(probe, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"}).start()
    try:
        assert watchdog.interval_s == 0.05
        for _ in range(3):
            assert received(sock) == "WATCHDOG=1"      # one ping per moving check
        with looked:
            state["moving"] = False
        # Once the thread has looked at the stalled engine, every earlier ping is in the socket.
        wait_stalled_looks(1)
        while not nothing_waiting(sock):
            pass
        wait_stalled_looks(4)
        assert nothing_waiting(sock)
    finally:
        watchdog.stop()


def test_watchdog_without_systemd_starts_no_thread():
    watchdog = Watchdog(lambda: 0, env={}).start()
    assert not watchdog.enabled
    assert watchdog._thread is None
    watchdog.stop()


def test_a_failing_progress_probe_counts_as_a_stall(notify_socket):
    path, sock = notify_socket

    def broken():
        raise RuntimeError("engine gone")

    watchdog = Watchdog(broken, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
    assert watchdog.check() is False
    assert nothing_waiting(sock)


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_the_unit_file_verifies(tmp_path):
    unit = (Path(__file__).resolve().parents[1] / "deploy" / "edge-har.service").read_text()
    for line in ("Type=notify", "WatchdogSec=30", "Restart=on-failure", "Environment=EDGE_HAR_HOME=/var/lib/edge-har",
                 "ExecStart=/usr/local/bin/edge-har serve -c /etc/edge-har/edge-har.yaml", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "StateDirectory=edge-har"):
        assert line in unit.splitlines(), line
    # The binary is not installed here: verify the same unit with a command that exists.
    copy = tmp_path / "edge-har.service"
    copy.write_text(unit.replace("ExecStart=/usr/local/bin/edge-har", "ExecStart=/bin/true"))
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
