"""MQTT: tell other systems what happens, with Home Assistant discovery and nothing lost while the broker is away.

Topics (``{prefix}`` is ``mqtt.topic_prefix``, default ``edge-har``)::

    {prefix}/available            retained  online | offline (the last will; also sent on a clean stop)
    {prefix}/{camera}/status      retained  starting | online | reconnecting | offline | finished
    {prefix}/{camera}/activity    retained  the current activity name, or none (``CurrentActivity`` events)
    {prefix}/rules/{rule}/state   retained  ON while the rule's last check (on any camera) failed, else OFF
    {prefix}/events               QoS 1     activity events, the events.jsonl object
    {prefix}/checks               QoS 1     check events, the events.jsonl object
    {prefix}/{camera}/prediction  QoS 0     per-clip predictions, only with ``mqtt.predictions: true``
    {prefix}/{camera}/clip        QoS 1     clip events (``edge.evidence``), the events.jsonl object
    {prefix}/rules/{rule}/snapshot retained the JPEG of the rule's last failure (a Home Assistant ``image``)

Activity, check and clip events go to the on-disk spool (``edge.sinks.spool``)
first: ``handle()`` writes the line (one ``write()``: safe from a process
crash at once), the sender thread fsyncs whatever was written since its last
wake-up (group commit: safe from power loss a disk sync later, and no lane
waits for the disk), then publishes from the spool in order, at most ``window`` unacknowledged at a time, and removes each from the
spool only when the broker's PUBACK arrives. While the broker is away they
wait on disk; after reconnecting, paho resends what was in flight and the
sender holds new records back until that is acknowledged, so the broker sees
them in their original order. A restart of edge-har resends what the spool
still holds: delivery is at least once.

State topics are published retained at QoS 0 when they change, and all of
them again in ``on_connect``, so a reconnect (or a broker that lost its
retained store) restores everything; a state message lost with a broken
connection is replaced by the next ``on_connect``.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge import __version__
from edge.events import CheckEvent, Event
from edge.sinks import SinkError
from edge.sinks.spool import Spool

if TYPE_CHECKING:
    from edge.config import MqttConfig

log = logging.getLogger(__name__)

_TOPIC_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_SESSION_EXPIRY_S = 3600   # the broker keeps our session (and paho's in-flight resends stay valid) for an hour


def topic_part(name: str) -> str:
    """``name`` made safe for one MQTT topic level and a discovery object id (``[A-Za-z0-9_-]``)."""
    return _TOPIC_UNSAFE.sub("_", str(name)).strip("_") or "_"


def _entity_slug(*parts: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", "_".join(parts).lower()).strip("_")


class MqttSink:
    """Publishes one service's events to an MQTT broker (see the module docstring for topics).

    ``settings``: the config's ``mqtt`` section (``edge.config.MqttConfig``), read as it is.
    ``cameras``, ``rules``: names, for the retained topics and Home Assistant discovery.
    ``model``: the model name for the discovery ``device``; ``version``: edge-har's.
    ``reconnect_delay_s``: (first, max) wait between connection attempts, doubling.
    ``window``: activity/check events published but not yet acknowledged, at most.
    ``spool_fsync=False`` skips the sender's disk syncs (tests only).

    Starts at once even when the broker is down (it connects in the background).
    Raises ``SinkError`` (one line) for a missing ``host``, an unusable
    ``ca_file`` or spool directory.
    """

    def __init__(self, settings: MqttConfig, *, cameras: Iterable[str], rules: Iterable[str] = (),
                 model: str | None = None, version: str = __version__,
                 reconnect_delay_s: tuple[float, float] = (1.0, 30.0), window: int = 16,
                 spool_fsync: bool = True, close_timeout_s: float = 3.0):
        self.settings = settings
        if not settings.host:
            raise SinkError("mqtt.host is not set")
        self.prefix = settings.topic_prefix.strip("/") or "edge-har"
        self.cameras = list(dict.fromkeys(cameras))
        self.rules = list(dict.fromkeys(rules))
        self.model = model
        self.version = version
        self.window = max(1, int(window))
        self._close_timeout_s = close_timeout_s
        self.available_topic = f"{self.prefix}/available"
        self.events_topic = f"{self.prefix}/events"
        self.checks_topic = f"{self.prefix}/checks"
        self.homeassistant_status_topic = f"{settings.discovery_prefix}/status"

        # Figures for the page and Prometheus.
        self.sent = 0            # activity/check events the broker acknowledged
        self.spooled = 0         # activity/check events that arrived while the broker was away
        self.rejected = 0        # events the broker refused (PUBACK with an error reason)
        self.connected = False
        self.reconnects = 0      # successful connections after the first
        self.connect_failures = 0   # connection attempts that failed (broker unreachable, refused)
        self.handle_errors = 0   # events lost because the spool could not be written

        # Retained state, as last published (guarded by _state_lock).
        self._state_lock = threading.Lock()
        self._camera_status: dict[str, str] = {camera: "starting" for camera in self.cameras}
        self._camera_activity: dict[str, str] = {camera: "none" for camera in self.cameras}
        self._rule_results: dict[str, dict[str, bool]] = {rule: {} for rule in self.rules}
        self._rule_snapshots: dict[str, bytes] = {}   # rule → the JPEG of its last failure
        self._failed_checks: collections.OrderedDict[str, str] = collections.OrderedDict()  # check id → rule

        self._ssl_context = self._tls_context() if settings.tls else None
        spool_dir = Path(settings.spool_dir) if settings.spool_dir else _default_spool_dir()
        # Group commit: handle() only write()s; the sender thread fsyncs, so no lane ever waits for the disk.
        self.spool = Spool(spool_dir, max(1, int(settings.spool_max_mb * 1024 * 1024)),
                           sync="deferred" if spool_fsync else "never")

        self._acks: collections.deque[tuple[int, bool]] = collections.deque()   # (mid, accepted) from on_publish
        self._wake = threading.Event()
        self._connection = 0     # +1 per successful connection; in-flight events remember theirs
        self._count_lock = threading.Lock()
        self._closing = False
        self._closed = False
        self._ever_connected = False
        self._unreachable_logged = False
        self._refusal_logged: str | None = None
        try:
            self._start_client(reconnect_delay_s)
        except BaseException:
            self.spool.close()
            raise
        self._sender = threading.Thread(target=self._send_loop, name="edge-har-mqtt-sender", daemon=True)
        self._sender.start()

    def _start_client(self, reconnect_delay_s: tuple[float, float]) -> None:
        settings = self.settings
        client_id = settings.client_id or f"edge-har-{topic_part(socket.gethostname())}-{topic_part(self.prefix)}"
        self.client_id = client_id
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.suppress_exceptions = True   # a bug in a callback must not kill the network thread...
        client.on_log = _log_callback_errors   # ...but it is logged
        # The last will is part of CONNECT: set before the first connection attempt.
        client.will_set(self.available_topic, "offline", qos=1, retain=True)
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            client.tls_set_context(self._ssl_context)
        client.reconnect_delay_set(reconnect_delay_s[0], reconnect_delay_s[1])
        client.max_inflight_messages_set(self.window + 8)   # events never wait in paho's own queue
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self.client = client   # the callbacks use it, from the first CONNACK on
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = _SESSION_EXPIRY_S
        client.connect_async(settings.host, settings.port, keepalive=int(settings.keepalive_s),
                             clean_start=False, properties=properties)
        client.loop_start()

    @classmethod
    def from_config(cls, config, *, model: str | None = None, **options) -> MqttSink:
        """From a ``ServiceConfig``: its ``mqtt`` section, camera names and rule names."""
        rules = [rule["name"] if isinstance(rule, Mapping) else rule.name for rule in (config.rules or ())]
        return cls(config.mqtt, cameras=list(config.cameras), rules=rules, model=model, **options)

    # -- start-up checks -----------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        ca_file = self.settings.ca_file
        if ca_file is None:
            return ssl.create_default_context()
        if not Path(ca_file).is_file():
            raise SinkError(f"mqtt.ca_file {ca_file}: no such file")
        try:
            return ssl.create_default_context(cafile=ca_file)
        except (ssl.SSLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
            raise SinkError(f"mqtt.ca_file {ca_file}: not a usable CA certificate ({reason})") from None

    # -- the Sink API (lane threads) -----------------------------------------------------------

    def handle(self, event: Event) -> None:
        """Take one event; costs one ``write()`` to the spool (no fsync here). Never raises."""
        if self._closed:
            return
        try:
            if event.kind in ("activity", "check", "clip"):
                topic = {"activity": self.events_topic, "check": self.checks_topic}.get(
                    event.kind) or f"{self.prefix}/{topic_part(event.camera)}/clip"
                if self.spool.append(topic, event.to_json_dict()) is not None and not self.connected:
                    with self._count_lock:
                        self.spooled += 1
                self._wake.set()
                if event.kind == "check":
                    self._on_check(event)
                elif event.kind == "clip":
                    self._on_clip(event)
            elif event.kind == "current_activity":
                self._on_current_activity(event.camera, event.activity or "none")
            elif event.kind == "status":
                state = str(event.state)
                with self._state_lock:
                    if self._camera_status.get(event.camera) != state:
                        self._camera_status[event.camera] = state
                        self._camera_activity.setdefault(event.camera, "none")
                        self._publish_state(f"{self.prefix}/{topic_part(event.camera)}/status", state)
            elif event.kind == "prediction" and self.settings.predictions and self.connected:
                self.client.publish(f"{self.prefix}/{topic_part(event.camera)}/prediction",
                                    _json(event.to_json_dict()), qos=0)
        except Exception as error:  # noqa: BLE001  (a lane must never fail because of MQTT)
            with self._count_lock:
                self.handle_errors += 1
            log.error("mqtt: could not take a %s event of camera %s: %s", event.kind, event.camera, error)

    def _on_current_activity(self, camera: str, current: str) -> None:
        """The camera's current activity as its monitor decided it (``edge.activities.current_activity``)."""
        with self._state_lock:
            if self._camera_activity.get(camera) != current:
                self._camera_activity[camera] = current
                self._publish_state(f"{self.prefix}/{topic_part(camera)}/activity", current)

    def _on_check(self, event: CheckEvent) -> None:
        camera, passed, rule = event.camera, event.passed, str(event.rule)
        if passed is None:   # a deadline still pending when a file ended: no judgement
            return
        with self._state_lock:
            if passed is False and event.id is not None:   # its clip's snapshot will be the rule's image
                self._failed_checks[event.id] = rule
                while len(self._failed_checks) > 1024:
                    self._failed_checks.popitem(last=False)
            known = rule in self._rule_results
            results = self._rule_results.setdefault(rule, {})
            before = _rule_state(results)
            results[camera] = bool(passed)
            after = _rule_state(results)
            if after != before or not known:
                self._publish_state(self._rule_topic(rule), after)

    def _on_clip(self, event) -> None:
        """The snapshot of a failed check's clip becomes its rule's image (retained)."""
        with self._state_lock:
            rule = self._failed_checks.pop(event.check_id, None) if event.check_id else None
        if rule is None or not event.snapshot:
            return
        try:
            picture = Path(event.snapshot).read_bytes()
        except OSError as error:
            log.warning("mqtt: cannot read the snapshot %s: %s", event.snapshot, error)
            return
        with self._state_lock:
            self._rule_snapshots[rule] = picture
            self.client.publish(self._rule_topic(rule, "snapshot"), picture, qos=0, retain=True)

    def close(self) -> None:
        """Send what the spool holds (up to ``close_timeout_s``), publish ``offline``, disconnect. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        self._wake.set()
        self._sender.join()
        try:
            if self.connected:
                info = self.client.publish(self.available_topic, "offline", qos=1, retain=True)
                info.wait_for_publish(timeout=self._close_timeout_s)
        except (RuntimeError, ValueError) as error:
            log.warning("mqtt: could not publish offline: %s", error)
        self.client.disconnect()
        self.client.loop_stop()
        self.connected = False
        self.spool.close()

    # -- figures -------------------------------------------------------------------------------

    @property
    def spool_dropped(self) -> int:
        """Unsent events deleted because the spool was full (oldest first)."""
        return self.spool.dropped

    @property
    def pending(self) -> int:
        """Events in the spool not yet acknowledged by the broker."""
        return self.spool.pending

    def stats(self) -> dict:
        return {"connected": self.connected, "sent": self.sent, "spooled": self.spooled,
                "pending": self.pending, "spool_bytes": self.spool.bytes, "spool_dropped": self.spool_dropped,
                "spool_recovered": self.spool.recovered, "rejected": self.rejected,
                "reconnects": self.reconnects, "connect_failures": self.connect_failures,
                "handle_errors": self.handle_errors}

    # -- state and discovery -------------------------------------------------------------------

    def _rule_topic(self, rule: str, what: str = "state") -> str:
        return f"{self.prefix}/rules/{topic_part(rule)}/{what}"

    def _publish_state(self, topic: str, payload: str) -> None:
        # QoS 0: a state lost with a broken connection is republished by on_connect; a QoS 1 resend
        # after on_connect could overwrite a newer state with an older one.
        self.client.publish(topic, payload, qos=0, retain=True)

    def _publish_all_state(self) -> None:
        with self._state_lock:
            self.client.publish(self.available_topic, "online", qos=1, retain=True)
            if self.settings.homeassistant:
                for topic, config in self.discovery_configs().items():
                    self.client.publish(topic, _json(config), qos=1, retain=True)
            for camera, state in self._camera_status.items():
                self._publish_state(f"{self.prefix}/{topic_part(camera)}/status", state)
            for camera, activity in self._camera_activity.items():
                self._publish_state(f"{self.prefix}/{topic_part(camera)}/activity", activity)
            for rule, results in self._rule_results.items():
                self._publish_state(self._rule_topic(rule), _rule_state(results))
            for rule, picture in self._rule_snapshots.items():
                self.client.publish(self._rule_topic(rule, "snapshot"), picture, qos=0, retain=True)

    def discovery_configs(self) -> dict[str, dict]:
        """Home Assistant MQTT discovery: ``{config topic: payload}`` for every camera and rule."""
        node = topic_part(self.prefix)
        base = f"{self.settings.discovery_prefix}"
        device = {
            "identifiers": [f"edge-har_{node}"],
            "name": "edge-har" if self.prefix == "edge-har" else f"edge-har {self.prefix}",
            "manufacturer": "edge-har",
            "model": self.model or "edge-har",
            "sw_version": self.version,
        }
        common = {
            "availability_topic": self.available_topic,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
            "origin": {"name": "edge-har", "sw_version": self.version},
        }
        configs: dict[str, dict] = {}
        with_cameras = dict.fromkeys(self.cameras) | dict.fromkeys(self._camera_status)
        for camera in with_cameras:
            part = topic_part(camera)
            configs[f"{base}/sensor/{node}/{part}_activity/config"] = {
                "name": f"{camera} activity",
                "unique_id": f"{node}_{part}_activity",
                "default_entity_id": f"sensor.{_entity_slug(node, part, 'activity')}",
                "state_topic": f"{self.prefix}/{part}/activity",
                "icon": "mdi:run",
                **common,
            }
            configs[f"{base}/binary_sensor/{node}/{part}_online/config"] = {
                "name": f"{camera} online",
                "unique_id": f"{node}_{part}_online",
                "default_entity_id": f"binary_sensor.{_entity_slug(node, part, 'online')}",
                "state_topic": f"{self.prefix}/{part}/status",
                "value_template": "{{ 'ON' if value == 'online' else 'OFF' }}",
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "connectivity",
                "entity_category": "diagnostic",
                **common,
            }
        for rule in self.rules:
            part = topic_part(rule)
            configs[f"{base}/binary_sensor/{node}/rule_{part}/config"] = {
                "name": f"rule {rule}",
                "unique_id": f"{node}_rule_{part}",
                "default_entity_id": f"binary_sensor.{_entity_slug(node, 'rule', part)}",
                "state_topic": self._rule_topic(rule),
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "problem",
                **common,
            }
            configs[f"{base}/image/{node}/rule_{part}_snapshot/config"] = {
                "name": f"rule {rule} last failure",
                "unique_id": f"{node}_rule_{part}_snapshot",
                "default_entity_id": f"image.{_entity_slug(node, 'rule', part, 'snapshot')}",
                "image_topic": self._rule_topic(rule, "snapshot"),
                "content_type": "image/jpeg",
                **common,
            }
        return configs

    # -- paho callbacks (paho's network thread) ------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.connect_failures += 1
            if self._refusal_logged != str(reason_code):   # once per reason, not once per retry
                self._refusal_logged = str(reason_code)
                log.error("mqtt: broker %s:%s refused the connection: %s; retrying", self.settings.host,
                          self.settings.port, reason_code)
            return
        self._refusal_logged = None
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        self._unreachable_logged = False
        log.info("mqtt: connected to %s:%s as %s (session %s)", self.settings.host, self.settings.port,
                 self.client_id, "resumed" if flags.session_present else "new")
        if self.settings.homeassistant:
            client.subscribe(self.homeassistant_status_topic, qos=1)
        self._publish_all_state()
        self._connection += 1   # before `connected`: the sender must see the new number when it sees True
        self.connected = True
        self._wake.set()

    def _on_connect_fail(self, client, userdata) -> None:
        self.connect_failures += 1
        if not self._unreachable_logged:
            self._unreachable_logged = True
            hint = " (or its TLS certificate does not verify against mqtt.ca_file)" if self.settings.tls else ""
            log.warning("mqtt: cannot reach broker %s:%s%s; spooling events to %s and retrying",
                        self.settings.host, self.settings.port, hint, self.spool.directory)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_connected, self.connected = self.connected, False
        if was_connected and not self._closing:
            log.warning("mqtt: lost the broker %s:%s (%s); spooling events until it is back",
                        self.settings.host, self.settings.port, reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # Called with paho's message lock held: hand the mid to the sender, take no lock of ours.
        self._acks.append((mid, not reason_code.is_failure))
        self._wake.set()

    def _on_message(self, client, userdata, message) -> None:
        try:
            try:
                payload = message.payload.decode("utf-8").strip()
            except UnicodeDecodeError:
                payload = None
            if message.topic == self.homeassistant_status_topic and payload == "online":
                log.info("mqtt: Home Assistant came online; publishing discovery again")
                self._publish_all_state()
            elif message.topic == self.homeassistant_status_topic and payload == "offline":
                pass
            else:
                log.warning("mqtt: ignoring an unexpected payload on %s: %r", message.topic, message.payload[:60])
        except Exception as error:  # noqa: BLE001  (a message from outside must not stop the network thread)
            log.warning("mqtt: ignoring a message that could not be handled: %s", error)

    # -- the sender thread ---------------------------------------------------------------------

    def _send_loop(self) -> None:
        inflight: dict[int, tuple[int, int]] = {}   # paho mid -> (spool seq, connection it was published on)
        sent_upto = self.spool.acked_upto
        deadline = None
        while True:
            self._wake.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            self._wake.clear()
            if self._closing and deadline is None:
                deadline = time.monotonic() + self._close_timeout_s
            try:
                sent_upto = self._send_step(inflight, sent_upto)
            except Exception:   # the sender must outlive a bad record or a full disk
                log.exception("mqtt: sender error; carrying on")
            if deadline is not None and (time.monotonic() >= deadline or not self.connected
                                         or (not inflight and self.spool.pending == 0)):
                return

    def _send_step(self, inflight: dict[int, tuple[int, int]], sent_upto: int) -> int:
        """Sync the spool, take acknowledgements, publish what the window allows; returns the last seq sent."""
        self.spool.sync()   # everything handle() wrote since the last wake-up, in one fsync
        while self._acks:
            mid, accepted = self._acks.popleft()
            entry = inflight.pop(mid, None)
            if entry is None:
                continue   # a state or discovery message
            seq = entry[0]
            self.spool.ack(seq)
            if accepted:
                self.sent += 1
            else:
                self.rejected += 1
                log.warning("mqtt: the broker refused an event (spool seq %d); not retried", seq)
        if not self.connected or len(inflight) >= self.window:
            return sent_upto
        connection = self._connection
        if any(published < connection for _, published in inflight.values()):
            return sent_upto   # paho resends these after a reconnect; newer records wait for their PUBACKs
        batch = self.spool.read_after(sent_upto, self.window - len(inflight))
        for record in batch:
            info = self.client.publish(record.topic, _json(record.payload), qos=1)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.warning("mqtt: publish failed (%s); retrying", mqtt.error_string(info.rc))
                break
            # NO_CONN: paho keeps a QoS 1 message and sends it after reconnecting, like the in-flight ones.
            inflight[info.mid] = (record.seq, connection)
            sent_upto = record.seq
        if batch:
            self._wake.set()   # more may be waiting
        return sent_upto


def _log_callback_errors(client, userdata, level, message) -> None:
    # paho logs an error per failed reconnect attempt too; the sink reports those itself, once.
    if level == mqtt.MQTT_LOG_ERR and message.startswith("Caught exception"):
        log.error("mqtt: %s", message)


def _rule_state(results: dict[str, bool]) -> str:
    return "ON" if any(passed is False for passed in results.values()) else "OFF"


def _json(record) -> str:
    return json.dumps(record, ensure_ascii=False, allow_nan=False)


def _default_spool_dir() -> Path:
    from edge.models.paths import edge_home
    return edge_home() / "spool"


__all__ = ["MqttSink", "topic_part"]
