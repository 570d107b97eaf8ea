"""Training configuration: the run (task, steps, evaluation, checkpoints) plus the learner.

Config presets (``--preset NAME``): ``configs/train.yaml`` holds the defaults,
``configs/train_smoke.yaml`` a tiny run, ``train_fast``/``train_cpu`` speed settings. Model
sizes: ``configs/model/<size>.yaml``; ``size=1M`` (or ``model.size=1M``) on the command line
merges the size into the model section before the other overrides, so
``size=1M model.mlp_dim=256`` keeps the 1M widths except that one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from boom_control.config import config_dir, from_dict, merge, parse_overrides, read_preset
from boom_control.envs.options import OPTIONS
from boom_control.envs.registry import check_options
from boom_control.errors import ConfigError, TaskError
from boom_control.model.config import ModelConfig
from boom_control.planner.config import PlannerConfig


@dataclass(frozen=True)
class AgentConfig:
    """Loss weights and optimiser settings (TD-MPC2 world model + BOOM policy loss)."""

    batch_size: int = 256
    """Sub-sequences per update."""
    rho: float = 0.5
    """Temporal weight decay over the horizon."""
    lr: float = 3e-4
    """Adam learning rate (world model and policy)."""
    enc_lr_scale: float = 0.3
    """Encoder learning-rate multiplier."""
    grad_clip_norm: float = 20.0
    """Gradient-norm clip for both optimisers."""
    pi_eps: float = 1e-5
    """Adam epsilon of the policy optimiser."""
    tau: float = 0.01
    """Polyak rate of the target Q ensemble."""
    consistency_coef: float = 20.0
    """Weight of the latent consistency loss."""
    reward_coef: float = 0.1
    """Weight of the reward cross-entropy."""
    value_coef: float = 0.1
    """Weight of the value cross-entropy."""
    termination_coef: float = 1.0
    """Weight of the termination head's loss (tasks that can end early)."""
    entropy_coef: float = 1e-4
    """Entropy coefficient of the policy's Q term."""
    scale_lerp: float = 0.01
    """Update rate of the running Q scale S."""
    align_lambda: float | None = None
    """BOOM alignment weight; None = 1/1000 for 24 <= A <= 48 else 1/50; 0 = TD-MPC2 policy loss."""
    align_temperature: float = 1.0
    """Temperature of the soft Q-weights over the batch."""
    align_min_std: float = 0.05
    """Floor of the detached policy std in the alignment likelihood."""
    align_scale_gate: float = 2.0
    """The alignment term is active only once the running scale S exceeds this."""
    q_read: Literal["avg", "min"] = "min"
    """Q read-out of the policy loss (BOOM: min; planner always uses avg)."""
    freeze_world_model: bool = False
    """Only the policy learns: encoder, dynamics, reward, termination and Q stay as loaded
    (``init_from``) and their loss is computed without gradients, for its diagnostics and
    the latents the policy loss reads. Distils a trained planner into its policy without
    refitting the world model to a fresh, small buffer, which forgets what the original
    one taught it."""
    freeze_latent: bool = False
    """Encoder and latent dynamics stay as loaded (``init_from``); reward, termination, Q
    and the policy learn. Continues a trained agent on a fresh buffer while its latent
    space stays put: refitting the encoder and dynamics to a small buffer of one
    behaviour moves the latents the heads and the planner rely on."""
    discount: float | None = None
    """Discount of the TD targets and the planner's returns; None = TD-MPC2's rule from the
    episode length (0.995 for 1000 steps). A longer horizon (e.g. 0.999) values staying
    alive over a whole episode where the per-step reward of a safe behaviour is small."""
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    """Forward passes of the losses: 'bf16' runs their matmuls under bfloat16 autocast
    (losses, parameters, gradients and optimiser state stay fp32); 'auto' as for
    ``planner.precision``."""
    compile: bool | Literal["auto"] = False
    """Run the world-model and policy losses (forward and backward) through torch.compile
    (inductor, eager random streams); same maths, rounding differs by ~1e-7. 'auto': on
    for training runs long enough to repay the compilation (see
    :func:`boom_control.device.resolve_compile`)."""

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ValueError(
                f"agent.precision must be 'fp32', 'bf16' or 'auto', got {self.precision!r}"
            )
        if self.compile not in (True, False, "auto"):
            raise ValueError(f"agent.compile must be true, false or auto, got {self.compile!r}")
        if self.discount is not None and not 0.0 < self.discount < 1.0:
            raise ValueError(f"agent.discount must be in (0, 1) or None, got {self.discount!r}")

    def lambda_for(self, action_dim: int) -> float:
        """Alignment weight for an action dimension (config value wins when set)."""
        if self.align_lambda is not None:
            return self.align_lambda
        return 1.0 / 1000.0 if 24 <= action_dim <= 48 else 1.0 / 50.0


@dataclass(frozen=True)
class TrainConfig:
    """One training run: what to train on, for how long, and where the results go."""

    task: str = "dmc:walker-walk"
    """Namespaced task id, e.g. 'dmc:walker-walk' or 'h1:walk'."""
    task_options: dict[str, Any] = field(default_factory=dict)
    """Family-specific options passed to make_env (e.g. action_repeat, episode_length)."""
    seed: int = 1
    """Seed of every random stream of the run (env, agent, buffer, exploration)."""
    steps: int = 1_000_000
    """Agent steps (environment interactions after action repeat) to train for."""
    device: str = "auto"
    """'auto', 'cpu', 'cuda' or 'cuda:N'."""
    seed_steps: int | None = None
    """Random-action steps before learning; None = max(1000, 5 * episode_length)."""
    seed_actor: str = "random"
    """Who acts in the seed phase: 'random' (uniform actions, the usual start) or
    'planner' (the agent's own planner; for ``init_from`` runs, whose networks are
    already trained, so the first data and the pretraining updates are on its behaviour)."""
    policy_acts: float = 0.0
    """After the seed phase, the chance that a training step sends the policy's own
    (sampled) action instead of the planner's. The step is planned all the same and the
    planner's mean and std are stored with it, so the alignment loss learns what the
    planner would do in the states the policy's actions lead to (DAgger-style data for a
    policy that must act alone). 0: the planner acts on every step, as in BOOM."""
    eval_freq: int = 50_000
    """Evaluate every this many agent steps (and at step 0)."""
    eval_episodes: int = 10
    """Episodes per evaluation, for the planner and again for the policy alone."""
    eval_workers: int = 0
    """Evaluation episodes run at once, each in its own thread with its own environment;
    0 = one per free CPU (CPUs / torch threads; 2 on a GPU), at most eval_episodes. The
    returns do not depend on it: each episode's planner noise is seeded by its reset seed."""
    eval_at_start: bool = True
    """Also evaluate the untrained agent at step 0 (the first point of the curve)."""
    checkpoint_every: int = 100_000
    """Write a checkpoint every this many agent steps (and at the end)."""
    buffer_capacity: int | None = None
    """Transitions kept in the replay buffer; None = steps (nothing is ever dropped)."""
    run_dir: str | None = None
    """Output folder; None = runs/<task>-<size>-s<seed>-<time>."""
    resume: bool = False
    """Continue the run in run_dir from its last checkpoint."""
    init_from: str | None = None
    """Start a new run from the network weights of another run's checkpoint (a file, or
    a run folder for its latest one) instead of random ones: fine-tuning on a task with
    the same observation and action sizes, e.g. h1:walk from an h1:stand run; a bundle
    folder works too (its verified weights/model.pt). Optimisers, replay buffer and
    counters start fresh, and the first update sets the running Q scale from the loaded
    networks' values on its batch; ignored when resuming."""
    save_buffer: bool = True
    """Store the replay buffer in checkpoints (needed for an exact resume)."""
    log_every: int = 1000
    """Average training metrics over this many updates per log row."""
    log_tensorboard: bool = True
    """Also write TensorBoard events when the tensorboard package is installed."""
    time_limit_minutes: float | None = None
    """Stop this invocation after this much wall time (checkpoint written), for runs split
    into parts: ``resume=true`` continues it, again for at most this long unless
    overridden (``time_limit_minutes=null`` lifts it). None: run until ``steps``."""
    overlap_update: bool = False
    """Run each step's update in a background thread while the planner acts (uses a
    second core, or the CPU while the GPU plans). The update then samples its batch just
    before the step's transition is stored instead of just after; acting still sees the
    weights of every earlier update. Reproducible for a seed; not equal to overlap=false."""
    actors: int = 0
    """Distributed collection on Ray: this many actors, each with its own environment and
    an acting copy of the agent that plans with MPPI, stream fixed-length chunks of their
    episodes to this process, which keeps the replay buffer, runs the updates and
    publishes new weights (see ``boom_control/train/distributed.py``). 0: the
    single-process trainer (one environment, stepped here)."""
    chunk_steps: int = 50
    """actors > 0: agent steps an actor sends at once (fewer when its episode ends)."""
    weights_every: int = 50
    """actors > 0: updates between two publications of the weights to the actors."""
    utd: float = 1.0
    """actors > 0: updates per collected agent step after the seed phase (the paper's one
    update per environment step); collection waits when the updates fall behind."""
    eval_on_actors: bool = True
    """actors > 0: evaluation episodes run on the actors (spread over them, each on an
    evaluation environment of its own, with the learner's current weights) instead of in
    this process; the returns are the same (an episode depends only on the weights and its
    seed). The evaluation before training starts (``eval_at_start``) runs here."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """World-model sizes (see configs/model/)."""
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    """MPPI planner settings."""
    agent: AgentConfig = field(default_factory=AgentConfig)
    """Loss weights and optimiser settings."""

    def __post_init__(self) -> None:
        for name in ("steps", "eval_freq", "eval_episodes", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1 and name != "steps":
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.steps < 0:
            raise ConfigError(f"steps must be >= 0, got {self.steps}")
        if self.eval_workers < 0:
            raise ConfigError(f"eval_workers must be >= 0 (0: automatic), got {self.eval_workers}")
        if self.seed_actor not in ("random", "planner"):
            raise ConfigError(f"seed_actor must be 'random' or 'planner', got {self.seed_actor!r}")
        if not 0.0 <= self.policy_acts <= 1.0:
            raise ConfigError(f"policy_acts must be in [0, 1], got {self.policy_acts}")
        if self.seed_steps is not None and self.seed_steps < 0:
            raise ConfigError(f"seed_steps must be >= 0, got {self.seed_steps}")
        if self.buffer_capacity is not None and self.buffer_capacity < 1:
            raise ConfigError(f"buffer_capacity must be >= 1, got {self.buffer_capacity}")
        if self.time_limit_minutes is not None and not self.time_limit_minutes > 0:
            raise ConfigError(f"time_limit_minutes must be > 0, got {self.time_limit_minutes}")
        if self.actors < 0 or self.chunk_steps < 1 or self.weights_every < 1:
            raise ConfigError("actors must be >= 0, chunk_steps and weights_every >= 1")
        if not self.utd > 0:
            raise ConfigError(f"utd must be > 0, got {self.utd}")
        if self.actors and self.overlap_update:
            raise ConfigError("overlap_update runs beside one environment; use actors=0")
        if self.resume and not self.run_dir:
            raise ConfigError("resume=true needs run_dir=<folder of the run to continue>")
        family = self.task.split(":", 1)[0]
        if family in OPTIONS:  # other task ids are refused, with the reason, by make_env
            try:
                check_options(family, dict(self.task_options))
            except TaskError as err:
                raise ConfigError(f"task_options: {err}") from None

    def seed_steps_for(self, episode_length: int) -> int:
        """Random-action steps for a task with this episode length."""
        if self.seed_steps is not None:
            return self.seed_steps
        return max(1000, 5 * episode_length)

    def buffer_capacity_or_default(self) -> int:
        """Transitions the buffer holds."""
        return self.buffer_capacity if self.buffer_capacity is not None else max(self.steps, 1)

    def default_run_dir(self, now: float | None = None) -> Path:
        """``runs/<task>-<size>-s<seed>-<YYYYmmdd-HHMMSS>`` (':' in the task id becomes '-')."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        task = self.task.replace(":", "-").replace("/", "-")
        return Path("runs") / f"{task}-{self.model.size}-s{self.seed}-{stamp}"


def model_sizes() -> list[str]:
    """Names of the model sizes in ``configs/model/``."""
    folder = config_dir() / "model"
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _model_size(name: Any) -> dict[str, Any]:
    names = model_sizes()
    if str(name) not in names:
        raise ConfigError(
            f"unknown model size {name!r}; available: {', '.join(names) or 'none found'}"
        )
    data = read_preset(config_dir() / "model" / f"{name}.yaml")
    data = data.get("model", data)  # the file may or may not nest under 'model:'
    return {**data, "size": str(name)}


def upgrade_saved_config(data: dict[str, Any]) -> dict[str, Any]:
    """A run's saved config (``config.yaml``, a checkpoint's ``config``) in today's keys: runs
    written before model sizes had their own name call the size ``model.preset``."""
    model = data.get("model")
    if isinstance(model, dict) and "preset" in model:
        model = {("size" if k == "preset" else k): v for k, v in model.items()}
        data = {**data, "model": model}
    return data


def train_config_from_saved(data: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` of a saved run (see :func:`upgrade_saved_config`)."""
    return from_dict(TrainConfig, upgrade_saved_config(data))


def load_train_config(
    overrides: list[str] | tuple[str, ...] = (), presets: list[str] | tuple[str, ...] = ("train",)
) -> TrainConfig:
    """Build a :class:`TrainConfig` from config presets and ``key=value`` overrides.

    Precedence: dataclass defaults < ``presets`` (``configs/<name>.yaml`` or files) < the
    saved ``config.yaml`` of the run when ``resume=true`` < the model size named by
    ``size=`` / ``model.size=`` < the other overrides.
    """
    update = parse_overrides(overrides)
    model_update = update.get("model", {}) if isinstance(update.get("model"), dict) else {}
    for key, value in (
        ("preset", update.get("preset")),
        ("model.preset", model_update.get("preset")),
    ):
        if value is not None:
            hint = f"size={value}" if str(value) in model_sizes() else f"--preset {value}"
            raise ConfigError(
                f"there is no {key} key: a model size is chosen with size=NAME "
                f"({', '.join(model_sizes())}), a config preset (configs/*.yaml) with "
                f"--preset NAME; did you mean {hint}?"
            )
    shortcut = update.pop("size", None)
    size_name = model_update.get("size", shortcut)
    if shortcut is not None and size_name != shortcut:
        raise ConfigError(f"size={shortcut} and model.size={size_name} disagree")

    data: dict[str, Any] = {}
    for name in presets:
        data = merge(data, read_preset(name))
    if update.get("resume", data.get("resume")) and update.get("run_dir", data.get("run_dir")):
        saved = Path(str(update.get("run_dir", data.get("run_dir")))) / "config.yaml"
        if saved.is_file():
            data = merge(data, upgrade_saved_config(read_preset(saved)))
    if size_name is not None:
        data = merge(data, {"model": _model_size(size_name)})
    try:
        return from_dict(TrainConfig, merge(data, update))
    except ValueError as err:  # __post_init__ checks of the nested configs
        raise ConfigError(str(err)) from None
