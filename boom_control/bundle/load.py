"""The controller bundle on disk (format version 2): one copy of the weights, shared by
every runtime.

A bundle is one folder, loadable without the training code's config::

    bundle/
      bundle.json                 metadata: task, contract, model, planner, parts, checksums
      model/weights.safetensors   the world model's weights (safetensors), the only copy
      model/<part>.onnx           every part as ONNX (pinned opset, dynamic batch); their
                                  tensors are external data inside weights.safetensors
      model/parts.pt              one TorchScript module, a method per part, saved without
                                  its weights (set from weights.safetensors when loaded)
      parity.json                 exported-vs-eager errors on recorded observations

:func:`load_bundle` verifies the format version and the SHA-256 of every file, and refuses
a corrupted, truncated or mismatched bundle with :class:`BundleError`; a version-1 bundle
(a weights copy in every file) is converted by ``boom bundle upgrade OLD NEW``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from boom_control.bundle.meta import BundleMeta
from boom_control.bundle.parts import build_parts
from boom_control.bundle.runners import (
    BackendName,
    EagerRunner,
    OnnxRunner,
    PartsModel,
    TorchScriptRunner,
)
from boom_control.envs.contract import ObservationContract
from boom_control.errors import BundleError
from boom_control.model.ops import make_bins
from boom_control.model.world_model import WorldModel
from boom_control.planner.mppi import PlanConstants

FORMAT = "boom-control-bundle"
FORMAT_VERSION = 2
BUNDLE_FILE = "bundle.json"
WEIGHTS = "model/weights.safetensors"
TORCHSCRIPT = "model/parts.pt"
TARGET_PREFIX = "_target_Qs."
"""State-dict keys of the training-only target Q networks, which a bundle does not hold."""


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A bundle's weights file as a state dict (CPU tensors)."""
    from safetensors.torch import load_file

    return load_file(str(path))


def full_state(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``weights`` plus the target Q networks a :class:`WorldModel` state dict has, set to
    the online ones (the planner never reads them)."""
    state = dict(weights)
    for key, value in weights.items():
        if key.startswith("_Qs."):
            state.setdefault(TARGET_PREFIX + key[len("_Qs.") :], value)
    return state


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Deterministic JSON (sorted keys, fixed indentation, trailing newline)."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True)
class Bundle:
    """A bundle: its folder, ``bundle.json`` as read (``meta``) and typed (``info``, parsed
    once; what readers use)."""

    root: Path
    meta: dict[str, Any]
    info: BundleMeta = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "info", BundleMeta.parse(self.meta, str(self.root / BUNDLE_FILE)))

    @property
    def task_id(self) -> str:
        return self.info.task.task_id

    @property
    def contract(self) -> ObservationContract:
        return self.info.task.contract

    @property
    def obs_dim(self) -> int:
        return self.info.task.obs_dim

    @property
    def action_dim(self) -> int:
        return self.info.task.action_dim

    @property
    def terminates(self) -> bool:
        return self.info.task.terminates

    @property
    def parts(self) -> list[str]:
        return list(self.meta["parts"])

    def onnx_files(self) -> dict[str, Path]:
        """Part name -> its ONNX file."""
        return {name: self.root / p["onnx"] for name, p in self.meta["parts"].items()}

    def weights(self) -> dict[str, torch.Tensor]:
        """The weights file as a state dict (without the training-only target Qs)."""
        return read_weights(self.root / self.meta["weights"])

    def bins(self, device: torch.device | str = "cpu") -> torch.Tensor:
        cfg = self.info.model.config
        return make_bins(cfg.vmin, cfg.vmax, cfg.num_bins).to(device)

    def eager_model(self, device: torch.device | str = "cpu") -> WorldModel:
        """The eager world model rebuilt from the bundle's config and weights."""
        model = WorldModel(self.obs_dim, self.action_dim, self.info.model.config, self.terminates)
        model.load_state_dict(full_state(self.weights()))
        return model.to(device).eval()

    def plan_constants(self, device: torch.device | str = "cpu") -> PlanConstants:
        """Planner constants recorded in the bundle (the trained run's defaults)."""
        return PlanConstants.build(
            self.info.planner.config,
            self.action_dim,
            self.info.planner.gamma,
            self.info.model.config.num_q,
            torch.device(device),
            self.terminates,
        )

    def check_contract(self, contract: ObservationContract, where: str = "the task") -> None:
        """Refuse a bundle whose observation contract differs from ``contract``."""
        if contract.hash != self.contract.hash:
            raise BundleError(
                f"observation contract mismatch: bundle {self.root} expects contract "
                f"{self.contract.hash} ({self.task_id}), {where} provides {contract.hash}; "
                f"first difference: {self.contract.diff(contract)}"
            )

    def model(
        self, backend: BackendName, device: torch.device | str = "cpu", threads: int = 0
    ) -> PartsModel:
        """The planner-facing model of this bundle on a backend."""
        device = torch.device(device)
        if backend == "onnx":
            run = OnnxRunner(self.onnx_files(), device, threads=threads)
        elif backend == "torchscript":
            ts = self.meta["torchscript"]
            run = TorchScriptRunner(
                self.root / ts["file"], device, full_state(self.weights()), ts["parameters"]
            )
        elif backend == "torch":
            run = EagerRunner(build_parts(self.eager_model(device), self.plan_constants(device)))
        else:
            raise BundleError(f"unknown backend {backend!r}; use torch, torchscript or onnx")
        return PartsModel(run, self.bins(device), self.terminates)


def read_meta(root: Path) -> dict[str, Any]:
    """``root / bundle.json`` of any format version (not verified)."""
    meta_path = root / BUNDLE_FILE
    if not meta_path.is_file():
        raise BundleError(f"{root} is not a bundle: no {BUNDLE_FILE}")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{meta_path} is corrupted: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"{meta_path} is not a {FORMAT} file")
    return meta


def verify_files(root: Path, meta: dict[str, Any]) -> None:
    """Check the SHA-256 of every file ``meta`` lists (any format version)."""
    for rel, expected in sorted(meta.get("files", {}).items()):
        file = root / rel
        if not file.is_file():
            raise BundleError(f"bundle file {rel} is missing from {root}")
        actual = sha256(file)
        if actual != expected:
            raise BundleError(
                f"bundle file {rel} fails its checksum (expected {expected[:12]}..., got "
                f"{actual[:12]}...): the file was modified or truncated"
            )


def load_bundle(path: str | Path, contract: ObservationContract | None = None) -> Bundle:
    """Read and verify a bundle folder.

    Args:
        path: the bundle folder (or its ``bundle.json``).
        contract: when given, the task's observation contract; a mismatch is refused.
    Raises:
        BundleError: missing files, checksum mismatch, unknown format or version.
    """
    root = Path(path)
    if root.name == BUNDLE_FILE:
        root = root.parent
    meta = read_meta(root)
    if meta.get("format_version") == 1:
        raise BundleError(
            f"{root} is a version-1 bundle (a copy of the weights in every file); convert it "
            f"with: boom bundle upgrade {root} NEW_FOLDER"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"bundle format version {meta.get('format_version')} is not supported by this "
            f"build (reads version {FORMAT_VERSION}); re-export the run with this version"
        )
    verify_files(root, meta)
    listed = set(meta.get("files", {}))
    for name, part in meta.get("parts", {}).items():
        if part.get("onnx") not in listed:
            raise BundleError(f"part {name!r} has no checksummed onnx file")
    for what, rel in (
        ("weights", meta.get("weights")),
        ("torchscript", meta.get("torchscript", {}).get("file")),
    ):
        if rel not in listed:
            raise BundleError(f"bundle {root} has no checksummed {what} file")
    bundle = Bundle(root, meta)
    if contract is not None:
        bundle.check_contract(contract)
    return bundle
