"""Convert a model to OpenVINO IR: ONNX through ``ov.convert_model``, a kenshohara ``.pth`` through the builder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov

from edge.models.demo import CLIP_LEN, KINETICS_MEAN, SIZE, build_graph, check_weights, save_model_atomic
from edge.models.errors import ModelError
from edge.models.metadata import ModelMetadata, read_metadata, write_metadata

TORCH_MISSING = "reading .pth needs PyTorch: pip install 'edge-har[torch]'"


def pth_weights(src) -> dict[str, np.ndarray]:
    """The float32 weights of a kenshohara checkpoint (``{"state_dict": ...}`` or a bare state_dict).

    The ``module.`` prefix (DataParallel) is stripped and BN's ``num_batches_tracked`` dropped.
    ``ModelError`` if PyTorch is missing or the file is not such a checkpoint.
    """
    try:
        import torch
    except ImportError:
        raise ModelError(TORCH_MISSING) from None
    try:
        checkpoint = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelError(f"cannot read PyTorch checkpoint {src}: {str(error).splitlines()[0]}") from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ModelError(f"{src}: expected a state_dict or a checkpoint with 'state_dict'")
    weights = {}
    for name, tensor in state.items():
        name = name.removeprefix("module.")
        if name.endswith("num_batches_tracked"):
            continue
        weights[name] = tensor.detach().to(torch.float32).cpu().numpy()
    if any(".downsample." in name for name in weights):
        raise ModelError(f"{src}: checkpoint has downsample weights (shortcut B); edge-har builds shortcut A")
    return weights


def convert_model(src, output_dir, fp16: bool = False) -> Path:
    """Convert ``src`` (``.onnx`` or kenshohara ``.pth``) to ``<output_dir>/<stem>.xml`` (+ .bin).

    ``fp16`` compresses the stored weights to f16 (compute precision is a compile option).
    The IR carries metadata: ``untrained`` false unless the source says so, and ``source``.
    Raises ``ModelError`` (missing file, unreadable model, PyTorch missing for ``.pth``).
    """
    src = Path(src).expanduser()
    if not src.is_file():
        raise ModelError(f"model not found: {src}")
    suffix = src.suffix.lower()
    if suffix == ".onnx":
        try:
            model = ov.convert_model(str(src))
        except Exception as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelError(f"cannot convert {src}: {first}") from None
        meta = read_metadata(model)  # edge-har's own ONNX exports carry metadata_props
        write_metadata(model, ModelMetadata(
            labels=meta.labels, mean=meta.mean, clip_len=meta.clip_len, size=meta.size,
            untrained=bool(meta.untrained), source=meta.source or f"{src.name} (ONNX)"))
    elif suffix in (".pth", ".pt"):
        weights = pth_weights(src)
        try:
            check_weights(weights)
        except ValueError as error:
            raise ModelError(f"{src}: {error}") from None
        model = build_graph(weights, ModelMetadata(mean=KINETICS_MEAN, clip_len=CLIP_LEN, size=SIZE,
                                                   untrained=False, source=f"{src.name} (PyTorch checkpoint)"))
    else:
        raise ModelError(f"cannot convert {src}: expected a .onnx or .pth file")
    try:
        return save_model_atomic(model, Path(output_dir) / f"{src.stem}.xml", compress_to_fp16=fp16)
    except OSError as error:
        raise ModelError(f"cannot write {output_dir}: {error.strerror}") from None
