"""The models' one-line, user-facing error, and the line of an OpenVINO exception worth showing.

The bottom of the models package: it imports nothing of edge-har, so every
other module (and ``edge.runtime``) can raise ``ModelError``.
"""

from __future__ import annotations

import re


class ModelError(Exception):
    """A one-line, user-facing model problem (missing file, not a clip model, label mismatch…)."""


def openvino_reason(error: BaseException) -> str:
    """The line of an OpenVINO exception that says what is wrong, not where in OpenVINO it was raised."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # "Exception from src/...cpp:84:" and "Check '...' failed at src/...cpp:900:" only locate the problem.
    told = [line for line in lines if not re.match(r"(Exception from |Check '.*' failed at )\S+:\d+:?$", line)]
    return (told or lines or [type(error).__name__])[-1 if told else 0]
