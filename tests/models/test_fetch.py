"""fetch_model against a local HTTP server: success, SHA-1 mismatch, unreachable, refused URLs."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading

import onnx
import pytest
from onnx import TensorProto, helper

from edge.models.fetch import fetch_model
from edge.models.registry import get_entry, known_models
from edge.models.loading import ModelError


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1; yields the base URL and the served model's SHA-1."""
    www = tmp_path / "www"
    www.mkdir()
    graph = helper.make_graph([helper.make_node("Relu", ["clip"], ["logits"])], "g",
                              [helper.make_tensor_value_info("clip", TensorProto.FLOAT, [1, 3, 2, 4, 4])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 2, 4, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, www / "model.onnx")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", hashlib.sha1((www / "model.onnx").read_bytes()).hexdigest()
    httpd.shutdown()
    httpd.server_close()


def test_fetch_downloads_verifies_and_converts(server, tmp_path):
    base, sha1 = server
    out = tmp_path / "out"
    xml = fetch_model(output_dir=out, url=f"{base}/model.onnx", sha1=sha1, allow_insecure_localhost=True)
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    names = sorted(p.name for p in out.iterdir())
    assert names == ["resnet-34_kinetics.bin", "resnet-34_kinetics.onnx", "resnet-34_kinetics.xml"]
    # a second fetch reuses the verified download (the server is not needed)
    again = fetch_model(output_dir=out, url="https://127.0.0.1:9/unused", sha1=sha1)
    assert again == xml


def test_sha1_mismatch_leaves_nothing(server, tmp_path):
    base, _ = server
    out = tmp_path / "out"
    with pytest.raises(ModelError, match="checksum mismatch") as error:
        fetch_model(output_dir=out, url=f"{base}/model.onnx", sha1="0" * 40, allow_insecure_localhost=True)
    assert "\n" not in str(error.value)
    assert not out.exists()  # not even the folder the fetch made


def test_unreachable_and_missing_leave_nothing(server, tmp_path):
    base, sha1 = server
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "out"
    with pytest.raises(ModelError, match="unreachable"):
        fetch_model(output_dir=out, url=f"http://127.0.0.1:{port}/m.onnx", sha1=sha1, allow_insecure_localhost=True)
    with pytest.raises(ModelError, match="HTTP 404"):
        fetch_model(output_dir=out, url=f"{base}/nothing.onnx", sha1=sha1, allow_insecure_localhost=True)
    assert not out.exists()
    out.mkdir()  # a folder the user made stays, empty
    with pytest.raises(ModelError, match="HTTP 404"):
        fetch_model(output_dir=out, url=f"{base}/nothing.onnx", sha1=sha1, allow_insecure_localhost=True)
    assert list(out.iterdir()) == []


def test_insecure_urls_are_refused(tmp_path):
    with pytest.raises(ModelError, match="only https"):
        fetch_model(output_dir=tmp_path, url="http://127.0.0.1:1/m.onnx", sha1="0" * 40)
    with pytest.raises(ModelError, match="only https"):
        fetch_model(output_dir=tmp_path, url="http://example.com/m.onnx", allow_insecure_localhost=True)
    with pytest.raises(ModelError, match="no download URL"):
        fetch_model("resnet34-kinetics-demo", output_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_manifest():
    entry = get_entry("resnet34-kinetics")
    assert entry.url == "https://www.dropbox.com/s/065l4vr8bptzohb/resnet-34_kinetics.onnx?dl=1"
    assert entry.sha1 == "88897629e4abb0fddef939f0c2d668a4edeb0788"
    assert (entry.clip_len, entry.size, entry.layout, entry.colour, entry.scale) == (16, 112, "NCTHW", "RGB", 1.0)
    assert entry.mean == (114.7748, 107.7354, 99.4750) and entry.labels == "kinetics400_labels.txt"
    assert get_entry("resnet34-kinetics-demo").untrained
    assert {"resnet34-kinetics", "resnet34-kinetics-demo"} <= set(known_models())
    with pytest.raises(ModelError, match="unknown model 'resnet50'; known models: resnet34-kinetics"):
        get_entry("resnet50")
