"""The BOOM learner: world model + MPPI planner + BOOM policy loss, with its optimisers.

``Agent`` owns the :class:`WorldModel`, both Adam optimisers and the running Q scale, and
exposes ``act`` (plan or policy), ``update`` (one world-model step then one policy step)
and a ``state_dict`` made only of tensors, numbers, dicts and lists.
Randomness goes through torch's global RNG, except acting's after :meth:`Agent.overlap`:
then ``act`` draws from its own generator and plans with its own copy of the weights, so
that an update may run in another thread at the same time.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
from typing import Any, TypeVar

import numpy as np
import torch

from boom_control.device import (
    describe_device,
    precision_context,
    resolve_compile,
    resolve_precision,
)
from boom_control.envs import EnvSpec
from boom_control.model.config import ModelConfig
from boom_control.model.world_model import WorldModel
from boom_control.planner.compiled import compile_fn
from boom_control.planner.config import PlannerConfig
from boom_control.planner.learner import LearnerPlanner
from boom_control.planner.types import PlanState
from boom_control.train.buffer import Batch
from boom_control.train.config import AgentConfig, TrainConfig
from boom_control.train.losses import (
    LossConstants,
    policy_loss,
    update_scale,
    world_model_loss,
)

log = logging.getLogger(__name__)
_Cfg = TypeVar("_Cfg", PlannerConfig, AgentConfig)


def discount_for(episode_length: int) -> float:
    """``clip((L/5 - 1) / (L/5), 0.95, 0.995)`` (0.99 for 500 steps, 0.995 for 1000)."""
    frac = episode_length / 5
    return float(np.clip((frac - 1) / frac, 0.95, 0.995))


def _resolved(cfg: _Cfg, device: torch.device, name: str, steps: int | None) -> _Cfg:
    """``cfg`` with ``precision`` and ``compile`` "auto" resolved for ``device`` and a
    training run of ``steps`` (None: not training; see resolve_precision, resolve_compile)."""
    if cfg.precision == "auto":
        chosen = resolve_precision("auto", device)
        log.info("%s.precision=auto: %s on %s", name, chosen, describe_device(device))
        cfg = dataclasses.replace(cfg, precision=chosen)
    if cfg.compile == "auto":
        compiled = resolve_compile("auto", steps, device)
        log.info("%s.compile=auto: %s", name, "on" if compiled else "off")
        cfg = dataclasses.replace(cfg, compile=compiled)
    return cfg


def _set_fused(optim: torch.optim.Optimizer, fused: bool) -> None:
    """Run ``optim``'s steps with the fused implementation, or not (same update rule)."""
    for group in optim.param_groups:
        group["fused"] = fused or None
        for p in group["params"]:
            state = optim.state.get(p, {})
            if fused and "step" in state:  # the fused kernels read the step on the device
                state["step"] = state["step"].to(p.device, torch.float32)


class Agent:
    """BOOM agent (TD-MPC2 world model and planner, BOOM policy objective).

    Args:
        obs_dim, action_dim: sizes of observation and action (actions in ``[-1, 1]``).
        episode_length: agent steps per episode; sets the discount unless
            ``agent_cfg.discount`` does.
        model_cfg, planner_cfg, agent_cfg: learner configuration.
        device: where networks and tensors live.
        terminates: the task can end early (adds a termination head and masks bootstraps).
        train_steps: the agent steps of the training run it is built for (None: it only
            acts), which decides ``compile: auto``.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        episode_length: int,
        model_cfg: ModelConfig,
        planner_cfg: PlannerConfig,
        agent_cfg: AgentConfig,
        device: torch.device,
        terminates: bool = False,
        train_steps: int | None = None,
    ) -> None:
        self.obs_dim = obs_dim
        self.action_dim = action_dim
        self.device = torch.device(device)
        # "auto": bf16 only where this device has it in hardware; compile long runs
        planner_cfg = _resolved(planner_cfg, self.device, "planner", train_steps)
        agent_cfg = _resolved(agent_cfg, self.device, "agent", train_steps)
        self.model_cfg, self.planner_cfg, self.agent_cfg = model_cfg, planner_cfg, agent_cfg
        self.gamma = (
            discount_for(episode_length) if agent_cfg.discount is None else agent_cfg.discount
        )
        self.model = WorldModel(obs_dim, action_dim, model_cfg, terminates).to(self.device)
        self.model.eval()
        self.running_scale = torch.ones((), device=self.device)
        lr = agent_cfg.lr
        # one fused kernel per step instead of a loop of small ops per tensor (CPU and CUDA)
        self._fused_adam = fused = self.device.type in ("cpu", "cuda")
        self.optim = torch.optim.Adam(
            [
                {"params": self.model.encoder_parameters(), "lr": lr * agent_cfg.enc_lr_scale},
                {"params": self.model.model_parameters()},
            ],
            lr=lr,
            fused=fused,
        )
        self.pi_optim = torch.optim.Adam(
            self.model.pi_parameters(), lr=lr, eps=agent_cfg.pi_eps, fused=fused
        )
        self.loss_consts = LossConstants.build(
            agent_cfg, self.model, planner_cfg.horizon, self.gamma, self.device
        )
        self._wm_params = self.model.encoder_parameters() + self.model.model_parameters()
        if agent_cfg.freeze_latent:  # no gradients: Adam skips them, groups stay resumable
            for p in self.model.latent_parameters():
                p.requires_grad_(False)
            self._wm_params = self.model.head_parameters()
        self._pi_params = self.model.pi_parameters()
        self._update_precision = precision_context(agent_cfg.precision, self.device)
        self._world_model_loss = (
            compile_fn(world_model_loss) if agent_cfg.compile else world_model_loss
        )
        self._policy_loss = compile_fn(policy_loss) if agent_cfg.compile else policy_loss
        # acting: the learner's weights and torch's global RNG until overlap() is called
        self.act_model = self.model
        self.act_generator: torch.Generator | None = None
        self._act_pairs: list[tuple[torch.Tensor, torch.Tensor]] = []  # (acting, learner)
        self.planner = LearnerPlanner(
            planner_cfg,
            action_dim,
            self.gamma,
            model_cfg.num_q,
            self.device,
            terminates,
            self.act_model,
        )

    def close(self) -> None:
        """Stop the planner's worker threads, if any (the agent must not plan afterwards)."""
        self.planner.close()

    def overlap(self, seed: int) -> None:
        """Let :meth:`update` run in another thread while :meth:`act` plans.

        ``act`` then uses a copy of the weights, refreshed by :meth:`sync_acting` after
        each update, and a generator of its own seeded with ``seed`` (its state is part
        of :meth:`state_dict`), so results do not depend on how the threads interleave.
        """
        if self.act_model is self.model:
            self.act_model = copy.deepcopy(self.model).requires_grad_(False).eval()
            learner = self.model.state_dict()  # tensors sharing the parameters' storage
            self._act_pairs = [(t, learner[k]) for k, t in self.act_model.state_dict().items()]
            self.planner.bind(self.act_model)
        self.act_generator = torch.Generator(device=self.device)
        self.act_generator.manual_seed(int(seed))

    @torch.no_grad()
    def sync_acting(self) -> None:
        """Copy the learner's weights into the acting copy (no-op without :meth:`overlap`)."""
        for acting, learner in self._act_pairs:
            acting.copy_(learner)

    def initial_plan_state(self) -> PlanState:
        """Plan state for the first step of an episode."""
        return self.planner.initial_state()

    @torch.no_grad()
    def act(
        self,
        obs: np.ndarray,
        plan_state: PlanState,
        eval_mode: bool,
        use_planner: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, PlanState]:
        """Choose an action for one observation.

        Args:
            obs: (O,) observation.
            plan_state: warm start (``initial_plan_state()`` at the start of an episode).
            eval_mode: planner mean / policy ``tanh(mean)`` instead of a sampled action.
            use_planner: False -> the policy alone (mu = action, std = zeros, state unchanged).
            generator: draw the randomness from this generator (on ``device``) instead of
                acting's own (see :meth:`overlap`) or torch's global one.
        Returns:
            action (A,), mu (A,), std (A,) as float32 arrays, and the next plan state.
        """
        model = self.act_model
        g = self.act_generator if generator is None else generator
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device).reshape(1, -1)
        z = model.encode(obs_t)
        if use_planner:
            action, mu, std, plan_state = self.planner.plan(z, plan_state, eval_mode, g)
        else:
            eps = None
            if g is not None and not eval_mode:
                eps = torch.randn(1, self.action_dim, device=self.device, generator=g)
            sample, info = model.pi(z, eps)
            action = (info["mean"] if eval_mode else sample)[0]
            mu, std = action, torch.zeros_like(action)
        out = torch.stack([action, mu, std]).cpu().numpy().astype(np.float32)
        return out[0], out[1], out[2], plan_state

    def update(self, batch: Batch) -> dict[str, float]:
        """One world-model gradient step, then one policy step, then the Polyak update.

        Args:
            batch: see :class:`Batch` (tensors on ``device``).
        Returns:
            scalar diagnostics (losses, gradient norms, running scale).
        """
        # beside a running update, the planner spreads only if cores remain for both
        with self.planner.beside(torch.get_num_threads()):
            return self._update_step(batch)

    def _update_step(self, batch: Batch) -> dict[str, float]:
        clip = self.agent_cfg.grad_clip_norm
        self.model.train()
        frozen = self.agent_cfg.freeze_world_model
        with torch.no_grad() if frozen else contextlib.nullcontext(), self._update_precision():
            wm_loss, zs, info = self._world_model_loss(self.model, batch, self.loss_consts)
        if not frozen:
            self.optim.zero_grad(set_to_none=True)
            wm_loss.backward()
            info["world_model_grad_norm"] = torch.nn.utils.clip_grad_norm_(self._wm_params, clip)
            self.optim.step()

        with self._update_precision():
            pi_loss, new_scale, pi_info = self._policy_loss(
                self.model, zs, batch.mu, self.running_scale, self.loss_consts
            )
        self.pi_optim.zero_grad(set_to_none=True)
        pi_loss.backward()
        pi_info["pi_grad_norm"] = torch.nn.utils.clip_grad_norm_(self._pi_params, clip)
        self.pi_optim.step()
        self.running_scale.copy_(new_scale)
        if not frozen:
            self.model.soft_update_target(self.agent_cfg.tau)
        self.model.eval()

        info.update(pi_info)
        values = torch.stack([v.detach().float().reshape(()) for v in info.values()]).tolist()
        return dict(zip(info.keys(), values, strict=True))

    def state_dict(self) -> dict[str, Any]:
        """Model (with target Q), both optimisers and the running scale."""
        return {
            "model": self.model.state_dict(),
            "optim": self.optim.state_dict(),
            "pi_optim": self.pi_optim.state_dict(),
            "running_scale": self.running_scale.detach().clone(),
            **({} if self.act_generator is None else {"act_rng": self.act_generator.get_state()}),
        }

    def prime_running_scale(self, batch: Batch) -> float:
        """Set the running Q scale S from a batch instead of lerping it up from 1.

        For an agent whose networks were loaded (fine-tuning): a trained Q's values span
        tens or more (18 for the h1-stand bundle on standing data), so a scale starting at
        1 makes the policy's Q term that many times too strong for the hundreds of updates
        the running average takes to catch up. S becomes
        ``max(P95 - P5, 1)`` of ``Q(z_0, pi(z_0))`` over the batch, the quantity the
        running average tracks. Returns the new S.
        """
        self.model.eval()
        with torch.no_grad(), self._update_precision():
            z = self.model.encode(batch.obs[0])
            action, _ = self.model.pi(z)
            q = self.model.Q(z, action.float(), return_type=self.agent_cfg.q_read).float()
        self.running_scale.copy_(update_scale(self.running_scale, q, 1.0))
        return float(self.running_scale)

    def load_model_weights(self, model_state: dict[str, torch.Tensor]) -> None:
        """Take the network weights (target Q included) of an agent of the same sizes.

        The optimisers and the running scale are left as they are (fine-tuning starts
        them fresh). Raises RuntimeError when a tensor is missing or has another shape.
        """
        self.model.load_state_dict(model_state)
        self.model.eval()
        self.sync_acting()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.model.load_state_dict(state["model"])
        for optim, saved in ((self.optim, state["optim"]), (self.pi_optim, state["pi_optim"])):
            # loading restores the saved groups' settings: keep this config's lr and eps
            own = [{k: v for k, v in g.items() if k != "params"} for g in optim.param_groups]
            optim.load_state_dict(saved)
            for group, settings in zip(optim.param_groups, own, strict=True):
                group.update(settings)
            _set_fused(optim, self._fused_adam)
        self.running_scale.copy_(torch.as_tensor(state["running_scale"]))
        self.model.eval()
        if self.act_generator is not None and "act_rng" in state:
            self.act_generator.set_state(state["act_rng"])
        self.sync_acting()


def make_agent(
    cfg: TrainConfig, spec: EnvSpec, device: torch.device, training: bool = True
) -> Agent:
    """The BOOM agent of a run's config for a task (``training``: it will train for the
    run's steps, which decides ``compile: auto``; else it only acts)."""
    return Agent(
        spec.obs_dim,
        spec.action_dim,
        spec.episode_length,
        cfg.model,
        cfg.planner,
        cfg.agent,
        device,
        terminates=spec.terminates,
        train_steps=cfg.steps if training else None,
    )
