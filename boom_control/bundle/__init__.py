"""The controller bundle: its format, loading and checks, and the runners of its parts
(eager, TorchScript, ONNX Runtime). Reading a bundle imports nothing from training or the
exporter."""

from boom_control.bundle.load import BUNDLE_FILE, WEIGHTS, Bundle, load_bundle
from boom_control.errors import BundleError

__all__ = ["BUNDLE_FILE", "WEIGHTS", "Bundle", "BundleError", "load_bundle"]
