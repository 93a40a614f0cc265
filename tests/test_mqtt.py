"""MQTT sink against a real broker (mosquitto on 127.0.0.1), and the on-disk spool.

The oracle for every delivered event is the record handed to the sink
(its ``to_json_dict()``, the events.jsonl object); for retained state it is the
state the events imply; for discovery it is Home Assistant's schema.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st
from support_mqtt import (
    WAIT_S,
    Collector,
    Mosquitto,
    free_port,
    make_certificates,
    wait_until,
)

from edge.config import MqttConfig
from edge.events import CurrentActivity, from_json_dict
from edge.sinks import Sink, SinkError
from edge.sinks.mqtt import MqttSink
from edge.sinks.spool import Spool

ROOT = Path(__file__).resolve().parents[1]
FAST_RECONNECT = (0.1, 0.5)


def activity(camera, seq, kind="start", name="handwash", score=0.8):
    return {"event": "activity", "type": kind, "id": f"{camera}-{seq}", "camera": camera, "activity": name,
            "start_time_s": float(seq), "end_time_s": float(seq) + 5 if kind == "end" else None,
            "duration_s": 5.0 if kind == "end" else 0.0, "peak_score": score, "time_base": "media",
            **({"reason": "ended"} if kind == "end" else {}), "wall_time": f"2026-11-28T08:00:{seq % 60:02d}Z",
            "run_id": "run-1"}


def check(camera, seq, rule="wash-20s", passed=False):
    return {"event": "check", "rule": rule, "kind": "min_duration", "camera": camera, "passed": passed,
            "reason": "washed 12.0 s < 20 s" if passed is False else "ok", "time_s": float(seq),
            "time_base": "media", "activity_ids": [f"{camera}-{seq}"],
            "wall_time": f"2026-11-28T08:01:{seq % 60:02d}Z", "run_id": "run-1"}


def current(camera, name):
    """The camera's current activity changed (its monitor says so after the activity events)."""
    return CurrentActivity(camera=camera, wall_time="t", activity=name, id=None if name is None else f"{camera}-1")


def mixed_events(count, start=0, camera="sink"):
    """Alternating activity and check events, in hand-over order."""
    out = []
    for i in range(start, start + count):
        if i % 2:
            out.append(from_json_dict(check(camera, i, passed=bool(i % 3))))
        else:
            out.append(from_json_dict(activity(camera, i, kind="start" if i % 4 == 0 else "end")))
    return out


def received(collector, prefix="edge-har"):
    """Every activity and check event the subscriber got, decoded, in arrival order (events and checks merged)."""
    with collector._condition:
        return [json.loads(payload) for topic, payload, _ in collector.messages
                if topic in (f"{prefix}/events", f"{prefix}/checks")]


def settings(broker_port, tmp_path, **extra):
    return MqttConfig(**{"host": "127.0.0.1", "port": broker_port, "spool_dir": str(tmp_path / "spool"), **extra})


@pytest.fixture
def broker(tmp_path):
    mosquitto = Mosquitto(tmp_path / "broker").start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def sinks():
    made = []
    yield made
    for sink in made:
        sink.close()


def make_sink(sinks, config, **options):
    options.setdefault("cameras", ["sink", "kitchen"])
    options.setdefault("reconnect_delay_s", FAST_RECONNECT)
    sink = MqttSink(config, **options)
    sinks.append(sink)
    return sink


# -- topics, retained state, discovery ---------------------------------------------------------------

DISCOVERY_TOPIC = re.compile(r"^homeassistant/(sensor|binary_sensor|image)/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+/config$")
ENTITY_ID = re.compile(r"^(sensor|binary_sensor|image)\.[a-z0-9_]+$")


def validate_discovery(topic: str, config: dict) -> str:
    """Home Assistant's MQTT discovery schema, the parts an entity needs to appear; returns the component."""
    match = DISCOVERY_TOPIC.match(topic)
    assert match, topic
    component = match.group(1)
    state = ("image_topic", "content_type") if component == "image" else ("state_topic",)
    for key in ("name", "unique_id", *state, "device", "origin", "availability_topic"):
        assert key in config, (topic, key)
    assert ENTITY_ID.match(config["default_entity_id"]) and config["default_entity_id"].startswith(component + ".")
    assert "object_id" not in config   # deprecated in HA 2025.10 in favour of default_entity_id
    device = config["device"]
    assert isinstance(device["identifiers"], list) and device["identifiers"]
    for key in ("name", "model", "sw_version", "manufacturer"):
        assert isinstance(device[key], str) and device[key], key
    assert config["origin"]["name"] == "edge-har"
    assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")
    assert config["availability_topic"] == "edge-har/available"
    if component == "binary_sensor":
        assert config["device_class"] in ("connectivity", "problem")
        assert (config.get("payload_on", "ON"), config.get("payload_off", "OFF")) == ("ON", "OFF")
    return component


def render(template: str, value: str) -> str:
    """Render a value_template as Home Assistant does (Jinja2); without jinja2, read the one form we use."""
    try:
        import jinja2
    except ImportError:
        match = re.fullmatch(r"\{\{ 'ON' if value == '(\w+)' else 'OFF' \}\}", template)
        assert match, template
        return "ON" if value == match.group(1) else "OFF"
    return jinja2.Environment().from_string(template).render(value=value).strip()


def test_available_retained_state_discovery_and_events(broker, tmp_path, sinks):
    collector = Collector(broker.port)
    sink = make_sink(sinks, settings(broker.port, tmp_path, predictions=True),
                     rules=["wash-20s", "no-smoking"], model="resnet34-kinetics", version="9.9.9")
    assert collector.wait_last("edge-har/available", b"online")
    assert collector.wait_for(lambda c: all(c.last(f"edge-har/{cam}/status") == b"starting"
                                            and c.last(f"edge-har/{cam}/activity") == b"none"
                                            for cam in ("sink", "kitchen")))
    assert collector.wait_for(lambda c: all(c.last(f"edge-har/rules/{rule}/state") == b"OFF"
                                            for rule in ("wash-20s", "no-smoking")))

    # Discovery: per camera a sensor (activity) and a connectivity binary_sensor, per rule a problem binary_sensor
    # and an image (its last failure's snapshot).
    assert collector.wait_for(lambda c: sum(t.startswith("homeassistant/") for t, _, _ in c.messages) >= 8)
    configs = {topic: json.loads(payload) for topic, payload, _ in collector.messages
               if topic.startswith("homeassistant/")}
    by_state_topic = {config["state_topic"]: (validate_discovery(topic, config), config)
                      for topic, config in configs.items() if "state_topic" in config}
    images = {config["image_topic"]: validate_discovery(topic, config) for topic, config in configs.items()
              if "image_topic" in config}
    assert images == {"edge-har/rules/wash-20s/snapshot": "image", "edge-har/rules/no-smoking/snapshot": "image"}
    assert set(by_state_topic) == {"edge-har/sink/activity", "edge-har/sink/status", "edge-har/kitchen/activity",
                                   "edge-har/kitchen/status", "edge-har/rules/wash-20s/state",
                                   "edge-har/rules/no-smoking/state"}
    assert len({config["unique_id"] for config in configs.values()}) == 8
    component, online = by_state_topic["edge-har/sink/status"]
    assert (component, online["device_class"]) == ("binary_sensor", "connectivity")
    assert [render(online["value_template"], state) for state in ("online", "reconnecting", "offline")] == \
        ["ON", "OFF", "OFF"]
    component, rule = by_state_topic["edge-har/rules/wash-20s/state"]
    assert (component, rule["device_class"]) == ("binary_sensor", "problem")
    assert by_state_topic["edge-har/sink/activity"][0] == "sensor"
    device = next(iter(configs.values()))["device"]
    assert (device["model"], device["sw_version"]) == ("resnet34-kinetics", "9.9.9")

    # Events: the same JSON objects as the records, state topics follow them.
    sink.handle(from_json_dict({"event": "status", "camera": "sink", "state": "online",
                                "reason": None, "wall_time": "t"}))
    start = activity("sink", 1)
    failed = check("sink", 2, passed=False)
    prediction = {"source": "cam", "clip_index": 0, "label": "washing hands", "score": 0.9, "camera": "sink",
                  "run_id": "run-1", "top_k": [{"label": "washing hands", "score": 0.9}]}
    sink.handle(from_json_dict(start))
    sink.handle(current("sink", "handwash"))
    sink.handle(from_json_dict(failed))
    sink.handle(from_json_dict(prediction))
    sink.handle(from_json_dict({"event": "gap", "camera": "sink"}))   # not an MQTT topic
    assert collector.wait_last("edge-har/sink/status", b"online")
    assert collector.wait_last("edge-har/sink/activity", b"handwash")
    assert collector.wait_last("edge-har/rules/wash-20s/state", b"ON")
    assert collector.wait_count("edge-har/events", 1) and collector.wait_count("edge-har/checks", 1)
    assert collector.wait_count("edge-har/sink/prediction", 1)
    assert [json.loads(p) for p in collector.payloads("edge-har/events")] == [start]
    assert [json.loads(p) for p in collector.payloads("edge-har/checks")] == [failed]
    assert [json.loads(p) for p in collector.payloads("edge-har/sink/prediction")] == [prediction]

    sink.handle(from_json_dict(activity("sink", 1, kind="end")))
    sink.handle(current("sink", None))
    sink.handle(from_json_dict(check("sink", 3, passed=True)))
    assert collector.wait_last("edge-har/sink/activity", b"none")
    assert collector.wait_last("edge-har/rules/wash-20s/state", b"OFF")
    assert collector.last("edge-har/kitchen/activity") == b"none"
    assert wait_until(lambda: sink.sent == 4)

    # A newcomer sees everything retained.
    late = Collector(broker.port)
    assert late.wait_for(lambda c: c.last("edge-har/sink/status") == b"online"
                         and c.last("edge-har/available") == b"online"
                         and c.last("edge-har/sink/activity") == b"none"
                         and c.last("edge-har/rules/wash-20s/state") == b"OFF"
                         and len([t for t, _, _ in c.messages if t.startswith("homeassistant/")]) == 8)
    assert late.payloads("edge-har/events") == []   # events are not retained

    # Home Assistant's birth message brings the discovery configs back after they were wiped.
    for topic in configs:
        late.publish(topic, b"", retain=True)
    collector.publish("homeassistant/status", b"online")
    fresh = Collector(broker.port, ["homeassistant/#"])
    assert fresh.wait_for(lambda c: len({t for t, p, _ in c.messages if p}) == 8)

    sink.close()
    assert collector.wait_last("edge-har/available", b"offline")
    for subscriber in (collector, late, fresh):
        subscriber.close()


def test_malformed_payload_on_a_subscribed_topic_is_logged_not_raised(broker, tmp_path, sinks, caplog):
    collector = Collector(broker.port)
    sink = make_sink(sinks, settings(broker.port, tmp_path))
    assert collector.wait_last("edge-har/available", b"online")
    caplog.set_level(logging.WARNING, logger="edge.sinks.mqtt")
    collector.publish("homeassistant/status", b"\xff\xfe not utf-8")
    collector.publish("homeassistant/status", b"maybe")
    assert wait_until(lambda: sum("unexpected payload" in r.getMessage() for r in caplog.records) == 2)
    warnings = [r.getMessage() for r in caplog.records if "unexpected payload" in r.getMessage()]
    assert all("\n" not in message and "homeassistant/status" in message for message in warnings)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # The network thread lives on: an event still arrives.
    record = activity("sink", 7)
    sink.handle(from_json_dict(record))
    assert collector.wait_count("edge-har/events", 1)
    assert json.loads(collector.last("edge-har/events")) == record
    collector.close()


def test_many_lanes_at_once_every_event_once_in_each_lane_order(broker, tmp_path, sinks):
    cameras = [f"cam{i}" for i in range(4)]
    collector = Collector(broker.port, ["edge-har/events", "edge-har/checks"])
    sink = make_sink(sinks, settings(broker.port, tmp_path), cameras=cameras)
    per_camera = {camera: mixed_events(125, camera=camera) for camera in cameras}
    lanes = [threading.Thread(target=lambda events=events: [sink.handle(event) for event in events])
             for events in per_camera.values()]
    for lane in lanes:
        lane.start()
    for lane in lanes:
        lane.join()
    assert collector.wait_for(lambda c: len(received(c)) >= 500)
    assert wait_until(lambda: sink.sent == 500 and sink.pending == 0)
    got = received(collector)
    assert len(got) == 500
    for camera, events in per_camera.items():
        assert [record for record in got if record["camera"] == camera] == [event.to_json_dict() for event in events]
    collector.close()


# -- nothing lost while the broker is away -----------------------------------------------------------

def test_broker_outage_loses_nothing_and_keeps_order(broker, tmp_path, sinks):
    collector = Collector(broker.port, ["edge-har/events", "edge-har/checks"], client_id="outage-watcher",
                          persistent=True)
    sink = make_sink(sinks, settings(broker.port, tmp_path))
    assert wait_until(lambda: sink.connected)
    before = mixed_events(10)
    for event in before:
        sink.handle(event)
    assert collector.wait_for(lambda c: len(received(c)) == 10)
    assert wait_until(lambda: sink.sent == 10 and sink.pending == 0)   # nothing in flight when the broker goes
    collector.sync()   # nor towards the subscriber: the broker has its PUBACKs

    broker.stop()
    outage_start = time.monotonic()
    assert wait_until(lambda: not sink.connected)
    during = mixed_events(40, start=10)
    handle_s = []
    for event in during:
        began = time.perf_counter()
        sink.handle(event)
        handle_s.append(time.perf_counter() - began)
    assert sink.pending == 40 and sink.spooled == 40 and sink.sent == 10
    spool_bytes = sink.spool.bytes
    assert spool_bytes > 0
    failures = sink.connect_failures
    assert wait_until(lambda: sink.connect_failures >= failures + 3)   # it keeps trying, with backoff
    broker.start()
    assert wait_until(lambda: sink.connected)
    outage_s = time.monotonic() - outage_start   # broker stopped until the sink is connected again

    assert collector.wait_for(lambda c: len(received(c)) >= 50), len(received(collector))
    assert wait_until(lambda: sink.pending == 0 and sink.sent == 50)
    got = received(collector)
    expected = [event.to_json_dict() for event in before + during]
    assert got == expected, f"{len(got)} received, {len(expected)} expected"   # all, in order, none twice
    assert sink.reconnects >= 1 and sink.spool_dropped == 0
    print(json.dumps({"outage": {"messages_sent": sink.sent, "during_outage": len(during),
                                 "outage_s": round(outage_s, 3), "spooled": sink.spooled,
                                 "spool_bytes": spool_bytes, "spool_dropped": sink.spool_dropped,
                                 "reconnects": sink.reconnects,
                                 "handle_ms_max": round(max(handle_s) * 1e3, 3)}}))
    collector.close()


def test_reconnect_restores_all_retained_state_to_a_broker_that_lost_it(broker, tmp_path, sinks):
    sink = make_sink(sinks, settings(broker.port, tmp_path), rules=["no-smoking"])
    assert wait_until(lambda: sink.connected)
    sink.handle(from_json_dict({"event": "status", "camera": "kitchen", "state": "reconnecting",
                                "reason": "read timeout", "wall_time": "t"}))
    sink.handle(from_json_dict(activity("kitchen", 1, name="smoking")))
    sink.handle(current("kitchen", "smoking"))
    sink.handle(from_json_dict(check("kitchen", 1, rule="no-smoking", passed=False)))
    assert wait_until(lambda: sink.sent == 2)
    broker.stop()
    stores = list(broker.directory.glob("*.db"))
    assert stores   # mosquitto saved its store on SIGTERM...
    for stored in stores:
        stored.unlink()   # ...and comes back without it: no retained messages at all
    broker.start()
    assert wait_until(lambda: sink.connected and sink.reconnects == 1)
    newcomer = Collector(broker.port)
    expected = {"edge-har/available": b"online", "edge-har/kitchen/status": b"reconnecting",
                "edge-har/kitchen/activity": b"smoking", "edge-har/sink/status": b"starting",
                "edge-har/sink/activity": b"none", "edge-har/rules/no-smoking/state": b"ON"}
    assert newcomer.wait_for(lambda c: all(c.last(topic) == payload for topic, payload in expected.items())
                             and sum(t.startswith("homeassistant/") for t, _, _ in c.messages) == 6)
    assert newcomer.payloads("edge-har/events") == []
    newcomer.close()


def test_events_in_flight_when_the_broker_dies_arrive_at_least_once_in_order(broker, tmp_path, sinks):
    collector = Collector(broker.port, ["edge-har/events", "edge-har/checks"], client_id="inflight-watcher",
                          persistent=True)
    sink = make_sink(sinks, settings(broker.port, tmp_path))
    assert wait_until(lambda: sink.connected)
    events = mixed_events(60)
    for event in events[:30]:
        sink.handle(event)
    broker.stop()   # with some of the 30 published but not yet acknowledged, or not yet published
    for event in events[30:]:
        sink.handle(event)
    broker.start()
    assert wait_until(lambda: sink.pending == 0 and sink.sent == 60)
    assert collector.wait_for(lambda c: len({json.dumps(r, sort_keys=True) for r in received(c)}) == 60)
    got = received(collector)
    first_seen = []
    for record in got:
        if record not in first_seen:
            first_seen.append(record)
    assert first_seen == [event.to_json_dict() for event in events]   # all of them, in order of first arrival
    duplicates = len(got) - len(first_seen)
    print(json.dumps({"in_flight_outage": {"handed": 60, "received": len(got), "duplicates": duplicates}}))
    collector.close()


def test_broker_down_at_start_then_appears(tmp_path, sinks):
    port = free_port()
    sink = make_sink(sinks, settings(port, tmp_path))
    events = mixed_events(12)
    for event in events:
        sink.handle(event)   # returns (a lane is never held up by a missing broker)
    assert not sink.connected and sink.pending == 12 and sink.spooled == 12
    broker = Mosquitto(tmp_path / "broker", port=port)
    collector = None
    try:
        broker.start()
        collector = Collector(port, ["edge-har/#"])
        assert collector.wait_for(lambda c: len(received(c)) == 12)
        assert received(collector) == [event.to_json_dict() for event in events]
        assert collector.wait_last("edge-har/available", b"online")
    finally:
        if collector:
            collector.close()
        sink.close()
        broker.stop()


def test_full_spool_drops_oldest_and_a_restarted_sink_resends_the_rest(tmp_path, sinks):
    port = free_port()
    limit_mb = 4096 / (1024 * 1024)   # a 4 KiB spool
    sink = make_sink(sinks, settings(port, tmp_path, spool_max_mb=limit_mb))
    events = mixed_events(100)
    for event in events:
        sink.handle(event)
    dropped = sink.spool_dropped
    kept = sink.pending
    assert dropped > 0 and kept > 0 and dropped + kept == 100
    assert sink.spool.bytes <= 4096
    sink.close()   # broker never seen: everything unsent stays on disk
    assert sum(path.stat().st_size for path in (tmp_path / "spool").glob("*.jsonl")) <= 4096

    broker = Mosquitto(tmp_path / "broker", port=port).start()
    collector = Collector(port, ["edge-har/events", "edge-har/checks"])
    try:
        again = make_sink(sinks, settings(port, tmp_path, spool_max_mb=limit_mb))
        assert again.spool.recovered == kept
        assert collector.wait_for(lambda c: len(received(c)) == kept)
        assert received(collector) == [event.to_json_dict() for event in events[dropped:]]   # the newest, in order
        assert wait_until(lambda: again.pending == 0)
        again.close()
        assert not list((tmp_path / "spool").glob("*.jsonl"))   # all acknowledged, nothing left to resend
    finally:
        collector.close()
        broker.stop()


# -- the last will -----------------------------------------------------------------------------------

CHILD = """
import sys, threading
from edge.config import MqttConfig
from edge.sinks.mqtt import MqttSink
sink = MqttSink(MqttConfig(host="127.0.0.1", port=int(sys.argv[1]), spool_dir=sys.argv[2], client_id="will-child"),
                cameras=["sink"], reconnect_delay_s=(0.1, 0.5))
connected = threading.Event()
while not connected.wait(0.01):
    if sink.connected:
        connected.set()
print("ready", flush=True)
sys.stdin.read()
"""


def test_last_will_offline_when_killed(broker, tmp_path):
    collector = Collector(broker.port, ["edge-har/available"])
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(broker.port), str(tmp_path / "child-spool")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout.readline().strip() == "ready"
        assert collector.wait_last("edge-har/available", b"online")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=WAIT_S)
        assert collector.wait_last("edge-har/available", b"offline")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        collector.close()


SPOOLING_CHILD = """
import sys
from edge.sinks import Event
from edge.sinks.mqtt import MqttSink
sys.path.insert(0, sys.argv[3])
from test_mqtt import mixed_events
from edge.config import MqttConfig
sink = MqttSink(MqttConfig(host="127.0.0.1", port=int(sys.argv[1]), spool_dir=sys.argv[2]), cameras=["sink"],
                reconnect_delay_s=(0.1, 0.5))
for event in mixed_events(20):
    sink.handle(event)
print("spooled", sink.pending, flush=True)
sys.stdin.read()
"""


def test_events_spooled_by_a_killed_process_are_sent_by_the_next(tmp_path, sinks):
    port = free_port()
    child = subprocess.Popen([sys.executable, "-c", SPOOLING_CHILD, str(port), str(tmp_path / "spool"),
                              str(Path(__file__).parent)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout.readline().split() == ["spooled", "20"]   # broker down: all on disk
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=WAIT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    broker = Mosquitto(tmp_path / "broker", port=port).start()
    collector = Collector(port, ["edge-har/events", "edge-har/checks"])
    try:
        restarted = make_sink(sinks, settings(port, tmp_path))
        assert restarted.spool.recovered == 20
        assert collector.wait_for(lambda c: len(received(c)) == 20)
        assert received(collector) == [event.to_json_dict() for event in mixed_events(20)]
    finally:
        collector.close()
        broker.stop()


# -- start-up errors ---------------------------------------------------------------------------------

def test_bad_ca_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("this is not a certificate\n")
    for ca_file in (bad, tmp_path / "missing.pem"):
        with pytest.raises(SinkError) as error:
            MqttSink(MqttConfig(host="127.0.0.1", port=free_port(), tls=True, ca_file=str(ca_file),
                                spool_dir=str(tmp_path / "spool")), cameras=["sink"])
        message = str(error.value)
        assert str(ca_file) in message and "\n" not in message


def test_tls_with_the_broker_ca(tmp_path, sinks):
    ca, cert, key = make_certificates(tmp_path / "tls")
    broker = Mosquitto(tmp_path / "broker", tls=(ca, cert, key)).start()
    try:
        sink = make_sink(sinks, settings(broker.port, tmp_path, tls=True, ca_file=str(ca)))
        assert wait_until(lambda: sink.connected)
        sink.handle(from_json_dict(check("sink", 1)))
        assert wait_until(lambda: sink.sent == 1)
        sink.close()
        # A broker whose certificate another CA signed is never trusted: events wait in the spool.
        other_ca = make_certificates(tmp_path / "other")[0]
        doubter = make_sink(sinks, settings(broker.port, tmp_path, tls=True, ca_file=str(other_ca),
                                            spool_dir=str(tmp_path / "other-spool")))
        doubter.handle(from_json_dict(check("sink", 2)))
        assert wait_until(lambda: doubter.connect_failures >= 2)
        assert not doubter.connected and doubter.sent == 0 and doubter.pending == 1
        doubter.close()
    finally:
        broker.stop()


def test_from_config_takes_cameras_rules_and_the_mqtt_section(tmp_path, sinks):
    from types import SimpleNamespace
    config = SimpleNamespace(
        mqtt=MqttConfig(host="127.0.0.1", port=free_port(), topic_prefix="site-7", spool_dir=str(tmp_path / "s")),
        cameras={"sink": object(), "yard": object()},
        rules=[SimpleNamespace(name="no-smoking"), {"name": "wash-20s"}])
    sink = MqttSink.from_config(config, model="resnet34-kinetics", reconnect_delay_s=FAST_RECONNECT)
    sinks.append(sink)
    assert isinstance(sink, Sink)
    assert (sink.cameras, sink.rules) == (["sink", "yard"], ["no-smoking", "wash-20s"])
    topics = sorted(sink.discovery_configs())
    assert topics == sorted([
        "homeassistant/sensor/site-7/sink_activity/config", "homeassistant/binary_sensor/site-7/sink_online/config",
        "homeassistant/sensor/site-7/yard_activity/config", "homeassistant/binary_sensor/site-7/yard_online/config",
        "homeassistant/binary_sensor/site-7/rule_no-smoking/config",
        "homeassistant/binary_sensor/site-7/rule_wash-20s/config",
        "homeassistant/image/site-7/rule_no-smoking_snapshot/config",
        "homeassistant/image/site-7/rule_wash-20s_snapshot/config"])
    assert sink.discovery_configs()["homeassistant/sensor/site-7/yard_activity/config"]["state_topic"] == \
        "site-7/yard/activity"


def test_missing_host_is_an_error(tmp_path):
    with pytest.raises(SinkError, match="mqtt.host"):
        MqttSink(MqttConfig(spool_dir=str(tmp_path / "spool")), cameras=["sink"])


# -- the spool on its own ----------------------------------------------------------------------------

def test_spool_bounds_order_and_reopen(tmp_path):
    spool = Spool(tmp_path / "spool", 2000, sync="never")
    records = [{"n": n, "text": "x" * 40} for n in range(100)]
    seqs = [spool.append("t", record) for record in records]
    assert seqs == list(range(1, 101))
    assert spool.bytes <= 2000 and spool.dropped > 0
    kept = spool.read_after(0, 1000)
    assert [r.payload for r in kept] == records[spool.dropped:]
    assert [r.seq for r in kept] == seqs[spool.dropped:]

    # Acknowledge part (out of order too), reopen: only the unacknowledged come back.
    spool.ack(kept[1].seq)
    spool.ack(kept[0].seq)
    spool.ack(kept[3].seq)
    spool.close()
    again = Spool(tmp_path / "spool", 2000, sync="never")
    assert again.recovered == len(kept) - 2   # kept[3] is after a gap: its ack is not yet durable
    assert [r.seq for r in again.read_after(0, 1000)] == [r.seq for r in kept[2:]]
    assert again.append("t", {"n": "new"}) == 101
    again.close()


def test_deferred_sync_spool_keeps_every_record(tmp_path):
    spool = Spool(tmp_path / "spool", 4000, sync="deferred")
    records = [{"n": n, "text": "y" * 30} for n in range(60)]   # several segments
    for record in records[:30]:
        spool.append("t", record)
    spool.sync()
    for record in records[30:]:
        spool.append("t", record)
    spool.close()   # syncs what is left
    again = Spool(tmp_path / "spool", 4000, sync="deferred")
    assert spool.dropped > 0 and again.recovered == 60 - spool.dropped
    assert [r.payload for r in again.read_after(0, 100)] == records[spool.dropped:]
    again.close()


@settings_hypothesis(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.just("append"), st.integers(0, 200)),
                          st.tuples(st.just("ack"), st.integers(0, 30)),
                          st.tuples(st.just("reopen"), st.just(0))), max_size=60))
def test_spool_matches_a_queue_model(tmp_path_factory, operations):
    """Against a model: a FIFO of unacknowledged records; acks above a gap are forgotten on reopen."""
    directory = tmp_path_factory.mktemp("spool")
    spool = Spool(directory, 1 << 20, segment_bytes=600, sync="never")   # many segments, never full
    model: list[tuple[int, dict]] = []   # (seq, payload) not yet contiguously acknowledged
    acked: set[int] = set()
    next_seq = 1
    try:
        for operation, argument in operations:
            if operation == "append":
                payload = {"n": next_seq, "pad": "z" * argument}
                assert spool.append("t", payload) == next_seq
                model.append((next_seq, payload))
                next_seq += 1
            elif operation == "ack" and model:
                seq = model[argument % len(model)][0]
                spool.ack(seq)
                acked.add(seq)
                while model and model[0][0] in acked:
                    acked.discard(model.pop(0)[0])
            elif operation == "reopen":
                spool.close()
                spool = Spool(directory, 1 << 20, segment_bytes=600, sync="never")
                acked.clear()
                assert spool.recovered == len(model)
            assert [(r.seq, r.payload) for r in spool.read_after(0, 10_000)] == model
            assert spool.pending == len(model) - len(acked)
            if model:   # reading in pieces gives the same sequence
                pieces, last = [], 0
                while batch := spool.read_after(last, 3):
                    pieces += batch
                    last = batch[-1].seq
                assert [r.seq for r in pieces] == [seq for seq, _ in model]
    finally:
        spool.close()
    if not model:
        assert not list(directory.glob("*.jsonl")) or all(p.stat().st_size == 0 for p in directory.glob("*.jsonl"))


def test_spool_truncates_a_torn_last_line_and_is_exclusive(tmp_path):
    spool = Spool(tmp_path / "spool", 1 << 20, sync="never")
    for n in range(3):
        spool.append("t", {"n": n})
    with pytest.raises(SinkError, match="in use"):
        Spool(tmp_path / "spool", 1 << 20)
    spool.close()
    segment = next((tmp_path / "spool").glob("*.jsonl"))
    with open(segment, "ab") as file:
        file.write(b'{"seq": 4, "topic": "t", "payl')   # the process died mid-write
    again = Spool(tmp_path / "spool", 1 << 20, sync="never")
    assert [r.payload for r in again.read_after(0, 10)] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert segment.read_bytes().endswith(b"\n")
    assert again.append("t", {"n": 3}) == 4
    again.close()
