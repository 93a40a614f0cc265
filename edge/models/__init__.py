"""Model registry, demo build, fetch, convert, quantize, model info and cache paths.

Heavy or optional dependencies (onnx, NNCF, PyTorch) are imported only by the
functions that need them.
"""

from edge.models.convert import convert_model
from edge.models.demo import build_demo_model, export_onnx, save_demo_model
from edge.models.describe import describe_model
from edge.models.fetch import fetch_model
from edge.models.loading import ModelError, ModelInfo, load_model
from edge.models.metadata import ModelMetadata, read_metadata, write_metadata
from edge.models.paths import default_model_path, edge_home
from edge.models.quantize import QuantizeReport, quantize_model
from edge.models.registry import bundled_labels, get_entry, known_models, load_manifest

__all__ = [
    "ModelError", "ModelInfo", "ModelMetadata", "QuantizeReport", "load_model", "build_demo_model", "bundled_labels", "convert_model",
    "default_model_path", "describe_model", "edge_home", "export_onnx", "fetch_model", "get_entry",
    "known_models", "load_manifest", "quantize_model", "read_metadata", "save_demo_model", "write_metadata",
]
