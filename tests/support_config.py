"""Helpers for the config tests (tests/test_config_cameras.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import ConfigError


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(call, *args, **kwargs) -> str:
    """The ConfigError message of ``call(...)``, asserted to be one non-empty line."""
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert message and "\n" not in message and "\r" not in message, message
    return message
