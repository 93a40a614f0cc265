"""A real MQTT broker for tests (Debian's mosquitto on 127.0.0.1) and a subscriber that collects messages.

``Mosquitto(tmp_path)`` writes a config (``listener PORT 127.0.0.1``,
``allow_anonymous true``, ``persistence true`` with its store in ``tmp_path``)
and ``start()``s ``mosquitto -c``; ``stop()`` ends it with SIGTERM (so it
saves its store) and ``start()`` again brings it back on the same port.
``Collector`` subscribes with paho and waits for messages with a
``threading.Condition`` (bounded waits, no sleeps).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
WAIT_S = 20.0   # upper bound for anything a test waits for; a healthy run takes well under a second


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, timeout: float = WAIT_S, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes (for state another process owns)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class Mosquitto:
    """One mosquitto process on 127.0.0.1:``port`` with persistence in ``directory``."""

    def __init__(self, directory, port: int | None = None, *, tls: tuple[Path, Path, Path] | None = None):
        if MOSQUITTO is None:
            pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.config = self.directory / "mosquitto.conf"
        self.log = self.directory / "mosquitto.log"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.directory}/",
            "autosave_interval 1",
            f"log_dest file {self.log}",
            "log_type all",
        ]
        if tls is not None:   # (CA, server certificate, server key)
            lines += [f"cafile {tls[0]}", f"certfile {tls[1]}", f"keyfile {tls[2]}"]
        if os.geteuid() == 0:
            lines.append("user root")   # otherwise mosquitto drops to a user that cannot write tmp_path
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = WAIT_S) -> Mosquitto:
        """Start and wait (bounded) until it accepts TCP connections."""
        assert self.process is None, "already running"
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)

        def accepting() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited {self.process.returncode}: "
                                   f"{self.process.stderr.read().decode(errors='replace').strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        if not wait_until(accepting, timeout):
            self.stop()
            raise RuntimeError(f"mosquitto did not accept connections on port {self.port} within {timeout} s")
        return self

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its persistence store) and wait."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None


def make_certificates(directory) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it (openssl CLI): (ca, cert, key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, request = directory / "server.pem", directory / "server.key", directory / "server.csr"
    extensions = directory / "server.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for command in (
        [openssl, "req", "-x509", *curve, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=edge-har test CA"],
        [openssl, "req", *curve, "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "2", "-extfile", extensions],
    ):
        subprocess.run([str(part) for part in command], check=True, capture_output=True)
    return ca, cert, key


class Collector:
    """A paho subscriber that keeps every message it gets, in arrival order.

    ``persistent=True`` keeps the session on the broker (clean_start False, a
    session expiry), so QoS 1 messages published while it is disconnected
    (for instance while the broker restarts) are delivered when it is back.
    """

    def __init__(self, port: int, topics=("#",), *, client_id: str | None = None, persistent: bool = False):
        self.topics = list(topics)
        self.messages: list[tuple[str, bytes, bool]] = []
        self._condition = threading.Condition()
        self._subscribed = False
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or "", protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        properties = None
        if persistent:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 600
        self.client.connect_async("127.0.0.1", port, keepalive=10, clean_start=not persistent,
                                  properties=properties)
        self.client.loop_start()
        with self._condition:
            if not self._condition.wait_for(lambda: self._subscribed, WAIT_S):
                raise RuntimeError(f"subscriber could not subscribe on port {port}")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._condition:
            self._subscribed = True
            self._condition.notify_all()

    def _on_message(self, client, userdata, message) -> None:
        with self._condition:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))
            self._condition.notify_all()

    def payloads(self, topic: str) -> list[bytes]:
        with self._condition:
            return [payload for name, payload, _ in self.messages if name == topic]

    def last(self, topic: str) -> bytes | None:
        found = self.payloads(topic)
        return found[-1] if found else None

    def wait_for(self, predicate, timeout: float = WAIT_S) -> bool:
        """Wait until ``predicate(self)`` holds (checked on every message)."""
        with self._condition:
            return self._condition.wait_for(lambda: predicate(self), timeout)

    def wait_last(self, topic: str, payload: bytes, timeout: float = WAIT_S) -> bool:
        return self.wait_for(lambda c: c.last(topic) == payload, timeout)

    def wait_count(self, topic: str, count: int, timeout: float = WAIT_S) -> bool:
        return self.wait_for(lambda c: len(c.payloads(topic)) >= count, timeout)

    def publish(self, topic: str, payload, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout=WAIT_S)

    def sync(self) -> None:
        """Round trip on this connection: when it returns, the broker has processed every PUBACK this
        subscriber sent before (so a broker stopped now will not redeliver those messages)."""
        self.publish("edge-har-test/sync", b"")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
