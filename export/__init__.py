"""Export: a trained run -> a self-describing controller bundle (ONNX + TorchScript).

from export import export_run, load_bundle
bundle = export_run("runs/my-run", "bundles/my-run")
model = load_bundle("bundles/my-run").model("onnx")      # planner-facing heads
"""

from boom_control.bundle.load import Bundle, load_bundle
from boom_control.errors import BundleError, ParityError
from export.exporter import export_bundle, export_run

__all__ = ["Bundle", "BundleError", "ParityError", "export_bundle", "export_run", "load_bundle"]
