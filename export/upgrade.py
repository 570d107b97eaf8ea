"""``boom bundle upgrade OLD NEW``: a version-1 bundle (a copy of the weights in every ONNX
and TorchScript file) rewritten as version 2 (one weights copy), with the same weights and
a fresh parity check on new observations of its task."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from boom_control.bundle.load import BUNDLE_FILE, Bundle, read_meta, verify_files
from boom_control.bundle.meta import BundleMeta
from boom_control.bundle.task import bundle_env
from boom_control.errors import BundleError
from boom_control.model.world_model import WorldModel
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
    raw = read_meta(old)
    info = BundleMeta.parse(raw, str(old / BUNDLE_FILE))
    if info.format_version != 1:
        raise BundleError(
            f"{old} is a version-{info.format_version} bundle; upgrade reads version 1"
        )
    verify_files(old, raw)
    if V1_WEIGHTS not in info.files:
        raise BundleError(f"{old} lists no {V1_WEIGHTS}")
    if old.resolve() == new.resolve():
        raise BundleError("write the upgraded bundle to a new folder (NEW must differ from OLD)")
    t = info.task
    model = WorldModel(t.obs_dim, t.action_dim, info.model.config, t.terminates)
    model.load_state_dict(torch.load(old / V1_WEIGHTS, map_location="cpu", weights_only=True))
    training = {
        "step": info.training.step,
        "seed": info.training.seed,
        "eval_return": info.training.eval_return,
        "source": info.training.source,
        "init_from": info.training.init_from,
        **info.training.extra,
        "upgraded_from": 1,
    }
    env = bundle_env(Bundle(old, raw), info.training.seed, task)
    try:
        bundle = export_bundle(
            model.eval(),
            env,
            info.planner.config,
            info.planner.gamma,
            new,
            size=info.model.size,
            training=training,
            tolerance=tolerance,
            parity_steps=parity_steps,
            overwrite=overwrite,
        )
    finally:
        env.close()
    listed = set(info.files) | {BUNDLE_FILE}
    for path in sorted(p for p in old.rglob("*") if p.is_file()):
        rel = path.relative_to(old)
        if str(rel) not in listed and not (new / rel).exists():
            (new / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, new / rel)
            log.info("kept %s beside the upgraded bundle", rel)
    return bundle
