"""Model registry, demo build, fetch, convert, model info and cache paths.

Every module imports what it needs at its top, and the graph has no cycle
(``tests/models/test_imports.py``). Bottom first: ``errors``, ``metadata`` and
``registry``; ``demo``; ``paths`` (builds the demo model on first use) and
``convert``; ``loading``; ``describe`` and ``fetch``. ``edge.runtime`` compiles what
``loading`` loaded, and ``edge.models.quantize`` sits above the runtime (it compiles
the float and INT8 models to compare them), so this package does not re-export it:
import ``quantize_model`` and ``QuantizeReport`` from ``edge.models.quantize``.
Optional dependencies (onnx, NNCF, PyTorch) are imported only by the functions
that need them.
"""

from edge.models.convert import convert_model
from edge.models.demo import build_demo_model, export_onnx, save_demo_model
from edge.models.describe import describe_model
from edge.models.errors import ModelError
from edge.models.fetch import fetch_model
from edge.models.loading import ModelInfo, load_model
from edge.models.metadata import ModelMetadata, read_metadata, write_metadata
from edge.models.paths import default_model_path, edge_home
from edge.models.registry import bundled_labels, get_entry, known_models, load_manifest

__all__ = [
    "ModelError", "ModelInfo", "ModelMetadata", "load_model", "build_demo_model", "bundled_labels", "convert_model",
    "default_model_path", "describe_model", "edge_home", "export_onnx", "fetch_model", "get_entry",
    "known_models", "load_manifest", "read_metadata", "save_demo_model", "write_metadata",
]
