"""``bundle.json`` read once into typed records (:class:`BundleMeta`); everything that reads
a bundle's metadata goes through them, not through raw keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from boom_control.envs.base import ActionMapping
from boom_control.envs.contract import ObservationContract
from boom_control.errors import BundleError
from boom_control.model.config import ModelConfig
from boom_control.planner.config import PlannerConfig


@dataclass(frozen=True)
class ServedMeta:
    """Where a task trained over the sim bridge was served."""

    endpoint: str
    server: str
    instances: int | None = None


@dataclass(frozen=True)
class TaskMeta:
    """The task the bundle was trained on."""

    task_id: str
    obs_dim: int
    action_dim: int
    control_period: float
    control_rate: float
    episode_length: int
    terminates: bool
    contract: ObservationContract
    action_mapping: ActionMapping
    served: ServedMeta | None = None


@dataclass(frozen=True)
class ModelMeta:
    """The world model: its widths, the name of its size and its parameter count."""

    config: ModelConfig
    size: str | None
    num_params: int


@dataclass(frozen=True)
class PlannerMeta:
    """The planner defaults of the trained run."""

    config: PlannerConfig
    gamma: float


@dataclass(frozen=True)
class TrainingMeta:
    """Where the weights come from."""

    step: int
    seed: int
    eval_return: float | None = None
    source: str | None = None
    init_from: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BundleMeta:
    """``bundle.json``, typed. ``files``: relative path -> SHA-256."""

    format_version: int
    task: TaskMeta
    model: ModelMeta
    planner: PlannerMeta
    training: TrainingMeta
    files: dict[str, str]
    parity_max_error: float | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str = "bundle.json") -> BundleMeta:
        """Read the metadata of any format version.

        Raises:
            BundleError: a key is missing or of the wrong type (naming it).
        """
        try:
            t, m, p = raw["task"], raw["model"], raw["planner"]
            training = dict(raw.get("training") or {})
            served = t.get("served")
            task = TaskMeta(
                task_id=str(t["task_id"]),
                obs_dim=int(t["obs_dim"]),
                action_dim=int(t["action_dim"]),
                control_period=float(t["control_period"]),
                control_rate=float(t.get("control_rate") or 1.0 / float(t["control_period"])),
                episode_length=int(t["episode_length"]),
                terminates=bool(t["terminates"]),
                contract=ObservationContract.from_json(t["observation_contract"]),
                action_mapping=ActionMapping.from_json(t.get("action_mapping"), t["action_dim"]),
                served=None if not served else ServedMeta(**served),
            )
            known = ("step", "seed", "eval_return", "source", "init_from")
            parity = raw.get("parity") or {}
            return cls(
                format_version=int(raw["format_version"]),
                task=task,
                model=_model_meta(m),
                planner=PlannerMeta(PlannerConfig(**p["config"]), float(p["gamma"])),
                training=TrainingMeta(
                    step=int(training.get("step", 0)),
                    seed=int(training.get("seed", 0)),
                    eval_return=training.get("eval_return"),
                    source=training.get("source"),
                    init_from=training.get("init_from"),
                    extra={k: v for k, v in training.items() if k not in known},
                ),
                files=dict(raw.get("files") or {}),
                parity_max_error=parity.get("max_error"),
            )
        except KeyError as err:
            raise BundleError(f"{where} has no {err.args[0]!r} entry") from None
        except (TypeError, ValueError) as err:
            raise BundleError(f"{where} has an entry of the wrong form: {err}") from None


def _model_meta(m: dict[str, Any]) -> ModelMeta:
    """The model entry; bundles written before model sizes had their own name call the size
    ``preset`` (in the entry and in its config)."""
    config = {("size" if k == "preset" else k): v for k, v in m["config"].items()}
    return ModelMeta(ModelConfig(**config), m.get("size", m.get("preset")), int(m["num_params"]))
