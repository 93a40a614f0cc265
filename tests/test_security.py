"""Security: safe YAML only, credentials in stream URLs masked everywhere, HTTPS-only verified model
downloads, no shell, and property tests on the inputs an attacker controls (URLs, ring indices, arrays)."""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import edge
from conftest import free_port
import edge.engine.output
import edge.sources
import edge.engine.service
from edge import pipeline
from edge.config import ConfigError, load_config
from edge.models.registry import load_manifest
from edge.overlay import OverlayState
from edge.models.loading import ModelError
from edge.sources import CaptureSource, ReconnectPolicy, mask_credentials

EDGE_DIR = Path(edge.__file__).parent
EDGE_HAR = [sys.executable, "-m", "edge"]
SECRET = "s3cretPass"


def _edge_sources() -> list[Path]:
    files = sorted(EDGE_DIR.rglob("*.py"))
    assert len(files) > 10
    return files


# ---------------------------------------------------------------- YAML

def test_yaml_is_only_ever_safe_loaded():
    for path in _edge_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "yaml":
                assert node.attr not in {"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load",
                                         "full_load_all", "Loader", "UnsafeLoader", "FullLoader"}, \
                    f"{path}:{node.lineno}: yaml.{node.attr}"


def test_python_object_tag_is_a_config_error_and_runs_nothing(tmp_path, demo_home):
    marker = tmp_path / "pwned"
    config = tmp_path / "config.yaml"
    config.write_text(f"source: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match=r"config\.yaml:1:\d+: YAML syntax error: could not determine a constructor"):
        load_config(config)
    result = subprocess.run([*EDGE_HAR, "run", "-c", str(config)], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "EDGE_HAR_HOME": str(demo_home)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"edge-har: error: {config}:1:")
    assert not marker.exists()


# ---------------------------------------------------------------- credentials in stream URLs

def _assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text, text


def test_refusing_rtsp_url_with_credentials(tmp_path, demo_home, demo_xml):
    url = f"rtsp://user:{SECRET}@127.0.0.1:{free_port()}/x"
    result = subprocess.run([*EDGE_HAR, "-v", "run", "--source", url, "--model", str(demo_xml),
                             "--events", "events.jsonl"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={**os.environ, "EDGE_HAR_HOME": str(demo_home)})
    assert result.returncode == 2
    assert "edge-har: error: cannot open stream rtsp://user:***@127.0.0.1:" in result.stderr
    _assert_no_secret(result.stderr, result.stdout)


def test_credentials_masked_on_a_real_stream(tmp_path, ffmpeg_stream, demo_home, demo_xml, compiled_cache,
                                             moving_shapes_video):
    server = ffmpeg_stream(moving_shapes_video(50, 160, 120))
    url = server.url(userinfo=f"user:{SECRET}")
    events, summary = tmp_path / "events.jsonl", tmp_path / "summary.json"
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            [*EDGE_HAR, "-v", "run", "--source", url, "--model", str(demo_xml), "--events", str(events),
             "--summary", str(summary), "--set", f"inference.cache_dir={compiled_cache}",
             "--set", "reconnect.attempts=1", "--set", "reconnect.delay_s=0.1"],
            stdout=subprocess.DEVNULL, stderr=stderr, cwd=tmp_path, env={**os.environ, "EDGE_HAR_HOME": str(demo_home)})
    try:
        from test_reliability import line_count, wait_for

        wait_for(lambda: line_count(events) >= 2 or process.poll() is not None, 60, "two predictions")
        server.stop()  # a drop: the reconnect warnings name the stream too
        assert process.wait(30) == 3  # stream lost for good (EXIT_SOURCE_LOST)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
    text = stderr_path.read_text()
    assert "user:***@127.0.0.1" in text and "reconnecting" in text
    lines = events.read_text().splitlines()
    assert len(lines) >= 2 and all(json.loads(line)["source"] == server.url("user:***") for line in lines)
    _assert_no_secret(text, events.read_text(), summary.read_text())


class _Frames:
    """A fake capture: ``count`` small frames, then reads fail (the stream drops for good)."""

    def __init__(self, count: int):
        self.left = count

    def isOpened(self):
        return True

    def read(self):
        if self.left <= 0:
            return False, None
        self.left -= 1
        return True, np.full((48, 64, 3), self.left % 255, np.uint8)

    def get(self, prop):
        return 0.0

    def release(self):
        pass


def test_credentials_never_reach_logs_events_summary_or_overlay(tmp_path, demo_xml, compiled_cache, monkeypatch,
                                                                caplog, capsys):
    url = f"rtsp://admin:{SECRET}@127.0.0.1:554/live?token={SECRET}"
    captures = iter([_Frames(40)])

    def open_fake(spec, **options):
        assert spec == url
        return CaptureSource(spec, reconnect=ReconnectPolicy(attempts=1, delay_s=0.01),
                             capture_factory=lambda s: next(captures, None), sleep=lambda s: None)

    drawn: list[OverlayState] = []
    real_draw = edge.engine.output.draw_overlay

    def spy_draw(image, state):
        drawn.append(state)
        real_draw(image, state)

    monkeypatch.setattr(edge.sources, "open_source", open_fake)
    monkeypatch.setattr(edge.engine.output, "draw_overlay", spy_draw)
    out = tmp_path / "out"
    config = load_config(None, [f"source={url}", f"model.path={demo_xml}", f"inference.cache_dir={compiled_cache}",
                                f"output.events={out / 'events.jsonl'}", f"output.summary={out / 'summary.json'}",
                                f"output.video={out / 'annotated.mp4'}", "output.progress=false"])
    with caplog.at_level(logging.DEBUG):
        result = pipeline.run(config)
    # a live camera keeps the freshest frames: those it was too busy for are counted as dropped
    assert result.summary["frames"] + result.summary["dropped_frames"] == 40
    assert result.summary["source"].startswith("rtsp://admin:***@127.0.0.1")
    assert drawn and all(SECRET not in line for state in drawn for line in (*state.lines, state.tag or ""))
    captured = capsys.readouterr()
    _assert_no_secret(caplog.text, captured.out, captured.err, (out / "events.jsonl").read_text(),
                      (out / "summary.json").read_text(), json.dumps(result.summary, default=str))
    assert "gave up" in caplog.text  # the drop was logged, masked


@settings(max_examples=200, deadline=None)
@given(scheme=st.sampled_from(["rtsp", "http", "https", "rtmp", "srt"]),
       user=st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="@/:?#[]%"), min_size=1,
                    max_size=12),
       password=st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="@/?#[]"),
                        min_size=4, max_size=16),
       host=st.sampled_from(["127.0.0.1", "cam.local", "10.0.0.5:554", "[::1]:8554"]),
       path=st.sampled_from(["", "/", "/stream", "/a/b.ts"]))
def test_mask_credentials_never_shows_the_password(scheme, user, password, host, path):
    url = f"{scheme}://{user}:{password}@{host}{path}"
    masked = mask_credentials(url)
    assert masked == f"{scheme}://{user}:***@{host}{path}"
    assert f":{password}@" not in masked


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_mask_credentials_takes_any_text(text):
    masked = mask_credentials(text)
    assert isinstance(masked, str) and ("://" in text or masked == text)


# ---------------------------------------------------------------- model downloads

def test_model_fetch_refuses_plain_http(tmp_path):
    from edge.models import fetch_model

    for url in ("http://example.com/resnet-34_kinetics.onnx", f"http://127.0.0.1:{free_port()}/m.onnx",
                "ftp://example.com/m.onnx", "file:///etc/passwd"):
        with pytest.raises(ModelError, match="only https:// URLs are allowed"):
            fetch_model("resnet34-kinetics", output_dir=tmp_path, url=url)
    assert list(tmp_path.iterdir()) == []


def test_manifest_downloads_are_https_with_a_sha1():
    entries = [entry for entry in load_manifest().values() if entry.url]
    assert entries
    for entry in entries:
        assert entry.url.startswith("https://"), entry.url
        assert re.fullmatch(r"[0-9a-f]{40}", entry.sha1 or ""), entry.sha1


def test_download_is_verified_before_it_gets_its_name(tmp_path, monkeypatch):
    """A tampered download never appears under the model's name (the SHA-1 is checked on the temp file)."""
    import io
    import urllib.request

    from edge.models.fetch import download

    class Response(io.BytesIO):
        headers: dict = {}

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response(b"tampered weights"))
    target = tmp_path / "model.onnx"
    with pytest.raises(ModelError, match="checksum mismatch"):
        download("https://example.com/model.onnx", target, sha1="0" * 40)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- no shell

_SHELL_CALLS = {("os", "system"), ("os", "popen"), ("os", "execl"), ("os", "execlp"), ("os", "spawnl"),
                ("os", "spawnlp"), ("subprocess", "getoutput"), ("subprocess", "getstatusoutput"), ("pty", "spawn")}


def test_no_shell_is_ever_invoked():
    for path in _edge_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    assert not (keyword.arg == "shell" and not (isinstance(keyword.value, ast.Constant)
                                                                and keyword.value.value is False)), \
                        f"{path}:{node.lineno}: shell="
                function = node.func
                if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name):
                    assert (function.value.id, function.attr) not in _SHELL_CALLS, f"{path}:{node.lineno}"
    for pyx in (EDGE_DIR.parent / "ext").glob("*.pyx"):
        assert not re.search(r"\bsystem\s*\(|shell\s*=\s*True|popen\s*\(", pyx.read_text()), pyx


# ---------------------------------------------------------------- the hot path under arbitrary input
# tests/test_preprocess.py fuzzes the frames; these fuzz the other arguments an input can reach.

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FUZZ
@given(out=hnp.arrays(st.sampled_from([np.float32, np.float64, np.uint8]),
                      hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6)),
       width=st.integers(1, 40), height=st.integers(1, 40))
def test_arbitrary_out_arrays_work_or_raise_value_error(hotpath, out, width, height):
    frame = np.zeros((height, width, 3), np.uint8)
    try:
        hotpath.preprocess_frame(frame, out)
    except ValueError:
        return
    assert out.dtype == np.float32 and out.ndim == 3 and out.shape[0] == 3 and out.shape[1] == out.shape[2] > 0


@FUZZ
@given(pushes=st.integers(0, 12), calls=st.lists(st.tuples(st.sampled_from(["acquire", "slot", "repeat"]),
                                                           st.integers(-2**63, 2**63 - 1)), max_size=8))
def test_ring_indices_work_or_raise(hotpath, pushes, calls):
    ring = hotpath.ClipRing(clip_len=4, size=4, capacity=6)
    frame = np.zeros((5, 7, 3), np.uint8)
    for _ in range(pushes):
        if not ring.can_push():
            break
        ring.push(frame)
    for name, seq in calls:
        try:
            result = getattr(ring, name)(seq)
        except (ValueError, IndexError, OverflowError, hotpath.RingFullError):
            continue
        if name == "acquire":
            assert result.view.shape == (4, 3, 4, 4) and np.isfinite(result.view).all()
            ring.release(result)
        elif name == "slot":
            assert result.shape == (3, 4, 4)
