"""``boom bundle upgrade OLD NEW``: a version-1 bundle (a copy of the weights in every ONNX
and TorchScript file) rewritten as version 2 (one weights copy), with the same weights and
a fresh parity check on new observations of its task."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from boom_control.bundle.load import BUNDLE_FILE, Bundle, read_meta, verify_files
from boom_control.bundle.task import bundle_env
from boom_control.errors import BundleError
from boom_control.model.config import ModelConfig
from boom_control.model.world_model import WorldModel
from boom_control.planner.config import PlannerConfig
from export.exporter import export_bundle

log = logging.getLogger(__name__)

V1_WEIGHTS = "weights/model.pt"


def upgrade_bundle(
    old: str | Path,
    new: str | Path,
    *,
    task: str | None = None,
    tolerance: float = 1e-4,
    parity_steps: int = 64,
    overwrite: bool = False,
) -> Bundle:
    """Convert the version-1 bundle ``old`` into a version-2 bundle at ``new``.

    The weights are ``old``'s own (checksums verified first); the parts are exported again
    and checked for parity on observations recorded from the task (``task``: another with
    the same observation contract, e.g. ``zmq:...`` for a served one). Notes beside the
    old bundle (``TRAINING.md``, ...) are copied.

    Raises:
        BundleError: ``old`` is not a verified version-1 bundle, or ``new`` exists.
        ParityError: the new parts differ from the weights beyond ``tolerance``.
    """
    old, new = Path(old), Path(new)
    if old.name == BUNDLE_FILE:
        old = old.parent
    meta = read_meta(old)
    if meta.get("format_version") != 1:
        raise BundleError(
            f"{old} is a version-{meta.get('format_version')} bundle; upgrade reads version 1"
        )
    verify_files(old, meta)
    if V1_WEIGHTS not in meta.get("files", {}):
        raise BundleError(f"{old} lists no {V1_WEIGHTS}")
    if old.resolve() == new.resolve():
        raise BundleError("write the upgraded bundle to a new folder (NEW must differ from OLD)")
    t = meta["task"]
    model = WorldModel(
        int(t["obs_dim"]),
        int(t["action_dim"]),
        ModelConfig(**meta["model"]["config"]),
        bool(t["terminates"]),
    )
    model.load_state_dict(torch.load(old / V1_WEIGHTS, map_location="cpu", weights_only=True))
    training = dict(meta.get("training", {}))
    seed = int(training.get("seed", 0))
    env = bundle_env(Bundle(old, meta), seed, task)
    try:
        bundle = export_bundle(
            model.eval(),
            env,
            PlannerConfig(**meta["planner"]["config"]),
            float(meta["planner"]["gamma"]),
            new,
            preset=meta["model"].get("preset"),
            training={**training, "upgraded_from": 1},
            tolerance=tolerance,
            parity_steps=parity_steps,
            overwrite=overwrite,
        )
    finally:
        env.close()
    listed = set(meta.get("files", {})) | {BUNDLE_FILE}
    for path in sorted(p for p in old.rglob("*") if p.is_file()):
        rel = path.relative_to(old)
        if str(rel) not in listed and not (new / rel).exists():
            (new / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, new / rel)
            log.info("kept %s beside the upgraded bundle", rel)
    return bundle
