"""What a user needs to file a bug report: versions, devices, CPU features, native or not.

``collect_info()`` backs ``edge-har info [--json]``; ``machine_info()`` is the cheaper
subset every benchmark result carries.
"""

from __future__ import annotations

import functools
import os
import platform
import sys

CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and value.strip():
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:  # not Linux
        pass
    return model, flags


def _versions() -> dict:
    import cv2
    import numpy
    import openvino

    from edge import __version__
    import av

    from edge.preprocess import IMPLEMENTATION, SIMD

    return {
        "version": __version__,
        "native": IMPLEMENTATION == "native",
        "implementation": IMPLEMENTATION,
        "kernel": SIMD,  # "sse2", "scalar" (EDGE_SCALAR=1 builds; ARM) or "numpy"
        "pyav": av.__version__,
        "openvino": openvino.get_version(),
        "opencv": cv2.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


@functools.lru_cache(maxsize=1)
def _cpu() -> dict:
    model, flags = _cpuinfo()
    return {
        "model": model,
        "logical_cores": os.cpu_count() or 1,
        "flags": {flag: flag in flags for flag in CPU_FLAGS},
    }


def _openvino_devices() -> tuple[list[dict], list[str]]:
    """Available devices with their full names, and the CPU plugin's optimisation capabilities."""
    try:
        import openvino as ov

        core = ov.Core()
        devices = []
        for device in core.available_devices:
            try:
                full_name = str(core.get_property(device, "FULL_DEVICE_NAME"))
            except Exception:  # a plugin may not report it
                full_name = None
            devices.append({"name": device, "full_name": full_name})
        try:
            capabilities = [str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
        except Exception:
            capabilities = []
        return devices, capabilities
    except Exception as error:  # a broken OpenVINO install is worth reporting, not crashing on
        return [{"name": "error", "full_name": f"{type(error).__name__}: {error}"}], []


def collect_info() -> dict:
    """Everything ``edge-har info`` reports, as a JSON-serialisable dict.

    Keys: version, native (bool), implementation, openvino, opencv, numpy, python,
    devices (list of {name, full_name}), cpu ({model, logical_cores, flags,
    openvino_capabilities}), platform; plus native_import_error when the extension is missing.
    """
    from edge.preprocess import NATIVE_AVAILABLE, NATIVE_IMPORT_ERROR

    devices, capabilities = _openvino_devices()
    info = _versions()
    info["native_available"] = NATIVE_AVAILABLE
    if NATIVE_IMPORT_ERROR:
        info["native_import_error"] = NATIVE_IMPORT_ERROR
    info["devices"] = devices
    info["cpu"] = {**_cpu(), "openvino_capabilities": capabilities}
    info["platform"] = platform.platform()
    return info


def machine_info() -> dict:
    """The machine and versions a benchmark row is tagged with (no device probing)."""
    cpu = _cpu()
    return {
        "cpu_model": cpu["model"],
        "logical_cores": cpu["logical_cores"],
        "cpu_flags": [flag for flag, present in cpu["flags"].items() if present],
        **_versions(),
        "platform": platform.platform(),
    }


def format_info(info: dict) -> str:
    """``collect_info()`` as aligned human-readable lines."""
    cpu = info.get("cpu", {})
    flags = cpu.get("flags", {})
    native = "yes" if info.get("native") else "no"
    if not info.get("native") and info.get("native_import_error"):
        native += f" ({info['native_import_error']})"
    elif not info.get("native") and info.get("native_available"):
        native += " (EDGE_PUREPYTHON=1)"
    rows = [
        ("edge-har", info.get("version")),
        ("native extension", native),
        ("preprocessing", f"{info.get('implementation')} ({info.get('kernel')} kernel)"),
        ("PyAV", info.get("pyav")),
        ("OpenVINO", info.get("openvino")),
        ("OpenCV", info.get("opencv")),
        ("NumPy", info.get("numpy")),
        ("Python", f"{info.get('python')} ({sys.executable})"),
        ("platform", info.get("platform")),
        ("CPU", f"{cpu.get('model')}, {cpu.get('logical_cores')} logical cores"),
        ("CPU features", " ".join(f"{name}{'+' if on else '-'}" for name, on in flags.items())),
        ("OpenVINO CPU caps", " ".join(cpu.get("openvino_capabilities", [])) or "unknown"),
    ]
    for device in info.get("devices", []):
        rows.append((f"device {device['name']}", device.get("full_name") or "?"))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
