"""MPPI planner settings (BOOM / TD-MPC2 defaults)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
    compile: bool | Literal["auto"] = False
    """Run one MPPI iteration through torch.compile (inductor); same maths, rounding
    differs by ~1e-7; the first plan pays the compilation. 'auto': on for training runs
    long enough to repay it (see :func:`boom_control.device.resolve_compile`)."""
    cuda_graph: bool = False
    """On CUDA, replay each MPPI iteration from a CUDA graph captured at the first plan
    (same kernels, far fewer launches; combines with ``compile``). Ignored on CPU."""
    program: Literal["auto", "onnx", "torch"] = "auto"
    """What runs a learner's plan: 'onnx' = the whole plan as one ONNX Runtime call over
    the live weights (CPU, fp32; same values to ~1e-6, ~1.5x faster than eager torch at
    the paper's size; ONNX Runtime runs it on ``threads`` threads), 'torch' = the torch
    functions (with ``compile``, ``cuda_graph``, ``threads``), 'auto' = 'onnx' on a CPU
    planning in fp32 on one thread (``threads=1`` and one torch thread), else 'torch'."""
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
        if self.compile not in (True, False, "auto"):
            raise ValueError(f"planner.compile must be true, false or auto, got {self.compile!r}")
        if self.program not in ("auto", "onnx", "torch"):
            raise ValueError(
                f"planner.program must be 'auto', 'onnx' or 'torch', got {self.program!r}"
            )
        if not 1 <= self.threads <= self.num_samples:
            raise ValueError(
                f"planner.threads must be between 1 and num_samples ({self.num_samples}), "
                f"got {self.threads}"
            )

    def iterations_for(self, action_dim: int) -> int:
        """Iterations used for a given action dimension."""
        return self.iterations + (self.extra_iterations_large_action if action_dim >= 20 else 0)
