"""Download a known model over HTTPS, verify its SHA-1, convert it to IR."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from edge.models.convert import convert_model
from edge.models.errors import ModelError
from edge.models.paths import file_sha1, models_dir
from edge.models.registry import get_entry

_CHUNK = 1 << 16
_LOCALHOSTS = {"127.0.0.1", "localhost", "::1"}


def _check_url(url: str, allow_insecure_localhost: bool) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and allow_insecure_localhost and parts.hostname in _LOCALHOSTS:
        return
    raise ModelError(f"refusing to download {url}: only https:// URLs are allowed")


def _progress(done: int, total: int | None, stream) -> None:
    if total:
        filled = int(30 * done / total)
        stream.write(f"\r  [{'#' * filled}{'.' * (30 - filled)}] {done / 1e6:6.1f}/{total / 1e6:.1f} MB")
    else:
        stream.write(f"\r  {done / 1e6:6.1f} MB")
    stream.flush()


def download(url: str, target: Path, sha1: str | None, timeout: float = 30.0,
             allow_insecure_localhost: bool = False) -> Path:
    """Download ``url`` to ``target`` through a temporary file in the same directory.

    The SHA-1 is checked before the file gets its final name (atomic rename), so
    nothing else ever sees an unverified file. ``ModelError`` (one line) when the
    URL is refused, unreachable, fails, or the checksum differs; no partial file is left.
    """
    _check_url(url, allow_insecure_localhost)
    target.parent.mkdir(parents=True, exist_ok=True)
    show = sys.stderr.isatty()
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False)
    part = Path(handle.name)
    try:
        digest = hashlib.sha1()
        with handle:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    total = int(response.headers.get("Content-Length") or 0) or None
                    done = 0
                    while chunk := response.read(_CHUNK):
                        handle.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if show:
                            _progress(done, total, sys.stderr)
            except urllib.error.HTTPError as error:
                raise ModelError(f"cannot download {url}: HTTP {error.code} {error.reason}") from None
            except (urllib.error.URLError, OSError, TimeoutError) as error:
                reason = getattr(error, "reason", error)
                raise ModelError(f"cannot download {url} (offline or unreachable?): {reason}") from None
            finally:
                if show:
                    sys.stderr.write("\n")
        actual = digest.hexdigest()
        if sha1 and actual.lower() != sha1.lower():
            raise ModelError(f"checksum mismatch for {url}: expected SHA-1 {sha1}, got {actual}")
        os.replace(part, target)
        return target
    finally:
        part.unlink(missing_ok=True)


def fetch_model(name: str = "resnet34-kinetics", output_dir=None, url: str | None = None,
                sha1: str | None = None, *, allow_insecure_localhost: bool = False,
                timeout: float = 30.0) -> Path:
    """Fetch the manifest model ``name`` and convert it; returns the IR ``.xml`` path.

    ``output_dir`` defaults to ``<edge_home()>/models/<name>``; ``url``/``sha1``
    override the manifest's. An already-downloaded file with the right SHA-1 is
    reused. ``allow_insecure_localhost`` permits ``http://127.0.0.1`` (tests only).
    Raises ``ModelError`` (unknown name, offline, HTTP error, checksum mismatch,
    conversion failure); on failure no partial files are left behind.
    """
    entry = get_entry(name)
    url = url or entry.url
    sha1 = sha1 or entry.sha1
    if not url:
        raise ModelError(f"model {name!r} has no download URL (it is built locally: edge-har model demo)")
    out = Path(output_dir).expanduser() if output_dir else models_dir() / name
    target = out / entry.filename
    created = not out.exists()
    if not (target.is_file() and sha1 and file_sha1(target) == sha1.lower()):
        try:
            download(url, target, sha1, timeout=timeout, allow_insecure_localhost=allow_insecure_localhost)
        except ModelError:
            if created and out.is_dir() and not any(out.iterdir()):
                out.rmdir()  # leave nothing behind, not even the empty folder we made
            raise
    # The verified download is kept; save_model_atomic never leaves a half-written IR.
    return convert_model(target, out)
