"""Learner configuration: world-model sizes, MPPI planner and loss hyper-parameters.

Values follow the BOOM / TD-MPC2 defaults. Presets ("1M", "5M") live in
``configs/model/<preset>.yaml``; a ``preset`` key in the model section selects one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelConfig:
    """World-model and policy network sizes."""

    preset: str = "5M"
    """Name of the size preset this config came from (informational; sizes below rule)."""
    enc_dim: int = 256
    """Hidden width of the encoder."""
    mlp_dim: int = 512
    """Hidden width of dynamics, reward, Q and policy MLPs."""
    latent_dim: int = 512
    """Latent state size (a multiple of simnorm_dim)."""
    num_q: int = 5
    """Number of Q heads in the ensemble."""
    simnorm_dim: int = 8
    """Group size of SimNorm."""
    simnorm: bool = True
    """Apply SimNorm to encoder/dynamics outputs (BOOM's code skips it for 24<=A<=48)."""
    reward_layers: int = 3
    """Hidden layers of the reward head (TD-MPC2: 2, BOOM: 3)."""
    dropout: float = 0.01
    """Dropout on the first layer of each Q head."""
    num_bins: int = 101
    """Bins of the discrete (two-hot) regression for reward and Q."""
    vmin: float = -10.0
    """Lowest bin, in symlog space."""
    vmax: float = 10.0
    """Highest bin, in symlog space."""
    log_std_min: float = -10.0
    """Lower bound of the policy's pre-tanh log std."""
    log_std_max: float = 2.0
    """Upper bound of the policy's pre-tanh log std."""
    mish: Literal["exact", "fast"] = "exact"
    """Mish kernel: 'exact' = torch's; 'fast' = the same function via one sigmoid (differs
    by rounding, ~1e-7 relative; ~4x faster on CPU, ~20% off a 1M-preset plan/update)."""

    def __post_init__(self) -> None:
        if self.latent_dim % self.simnorm_dim:
            raise ValueError(
                f"model.latent_dim={self.latent_dim} must be a multiple of "
                f"model.simnorm_dim={self.simnorm_dim}"
            )
        if self.mish not in ("exact", "fast"):
            raise ValueError(f"model.mish must be 'exact' or 'fast', got {self.mish!r}")
        if self.num_q < 2:
            raise ValueError(f"model.num_q must be >= 2 (two heads are read), got {self.num_q}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class PlannerConfig:
    """MPPI in latent space, warm-started by the policy and the previous plan."""

    horizon: int = 3
    """Planning horizon H (also the training sub-sequence length minus one)."""
    iterations: int = 6
    """MPPI iterations (``extra_iterations_large_action`` more when A >= 20)."""
    extra_iterations_large_action: int = 2
    """Added to ``iterations`` for action dims >= 20."""
    num_samples: int = 512
    """Action sequences per iteration, policy trajectories included."""
    num_elites: int = 64
    """Top sequences used to refit mean and std."""
    num_pi_trajs: int = 24
    """Sequences rolled out by the policy (fixed across iterations)."""
    temperature: float = 0.5
    """Softmax temperature on elite values."""
    min_std: float = 0.05
    """Lower clamp of the sampling std."""
    max_std: float = 2.0
    """Upper clamp (and initial value) of the sampling std."""
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    """Planning matmuls in the agent: 'bf16' runs them under bfloat16 autocast (values,
    returns and actions stay fp32; plans differ from fp32 ones, see benchmarks); 'auto'
    = bf16 where the device has bf16 matmuls in hardware (AVX512-BF16/AMX CPUs, CUDA
    compute capability >= 8), fp32 elsewhere (emulated bf16 is several times slower)."""
    compile: bool = False
    """Run one MPPI iteration through torch.compile (inductor); same maths, rounding
    differs by ~1e-7; the first plan pays the compilation."""
    cuda_graph: bool = False
    """On CUDA, replay each MPPI iteration from a CUDA graph captured at the first plan
    (same kernels, far fewer launches; combines with ``compile``). Ignored on CPU."""
    threads: int = 1
    """Threads evaluating each iteration's samples, in row blocks (N / threads each):
    planning spreads over that many cores; values equal to rounding. On a 2-core CPU,
    2 with ``overlap_update`` lets planning and the update share both cores. Ignored on
    CUDA."""

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ValueError(
                f"planner.precision must be 'fp32', 'bf16' or 'auto', got {self.precision!r}"
            )
        if not 1 <= self.threads <= self.num_samples:
            raise ValueError(
                f"planner.threads must be between 1 and num_samples ({self.num_samples}), "
                f"got {self.threads}"
            )

    def iterations_for(self, action_dim: int) -> int:
        """Iterations used for a given action dimension."""
        return self.iterations + (self.extra_iterations_large_action if action_dim >= 20 else 0)


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
    compile: bool = False
    """Run the world-model and policy losses (forward and backward) through torch.compile
    (inductor, eager random streams); same maths, rounding differs by ~1e-7."""

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ValueError(
                f"agent.precision must be 'fp32', 'bf16' or 'auto', got {self.precision!r}"
            )
        if self.discount is not None and not 0.0 < self.discount < 1.0:
            raise ValueError(f"agent.discount must be in (0, 1) or None, got {self.discount!r}")

    def lambda_for(self, action_dim: int) -> float:
        """Alignment weight for an action dimension (config value wins when set)."""
        if self.align_lambda is not None:
            return self.align_lambda
        return 1.0 / 1000.0 if 24 <= action_dim <= 48 else 1.0 / 50.0
