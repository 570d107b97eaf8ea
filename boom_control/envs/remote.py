"""``RemoteEnv``: a task served by ``boom sim`` (lockstep), as an ordinary ``Env``.

``make_env("zmq:tcp://127.0.0.1:5555", seed=0)`` returns one, so ``boom train`` and
``boom eval`` run over the bridge unchanged. The spec (dims, control period, episode length,
observation contract, action mapping) comes from the server's handshake; the contract hash
is checked against its JSON and, when ``contract_hash`` is given, against that.

Every ``RemoteEnv`` is a session of its own on the server, with its own simulation (see
``sim_bridge.pool``); ``spec.extras["instances"]`` says how many the server hosts at once.
The client library keeps the session alive with heartbeats while the caller is busy.

If a step is lost (the server restarted, forgot this client, or did not answer), the client
reconnects (see ``sim_bridge.client``) and the step raises
:class:`~boom_control.envs.base.EpisodeLostError` naming what happened; nothing is made up
for it. Reset to go on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from boom_control.envs.base import ActionMapping, Env, EnvSpec
from boom_control.envs.contract import ObservationContract
from boom_control.errors import ActionError, EpisodeLostError, TaskError
from sim_bridge.client import BridgeClient, EpisodeLost, HandshakeError, RemoteError
from sim_bridge.protocol import ErrorCode


class RemoteEnv(Env):
    """A lockstep bridge server seen as an environment.

    Args:
        name: the endpoint, e.g. ``tcp://127.0.0.1:5555``.
        seed: seed of the first ``reset()`` that passes none (later ones continue the
            server's random stream), so ``make_env("zmq:...", seed=s)`` matches
            ``make_env(task, seed=s)``.
        timeout: seconds to wait for each reply.
        retries: reconnection attempts before giving up.
        contract_hash: refuse a server whose observation contract differs.
        task: refuse a server serving another task.
        spin: seconds the client spins for each reply before blocking (see
            :class:`~sim_bridge.client.BridgeClient`).
        episode_length: end episodes (truncated) after this many steps, when fewer than
            the server's own episode length (e.g. short episodes for a smoke run).
        keepalive: heartbeats while the caller is busy (off: a caller silent for the
            server's ``client_timeout`` loses its session and episode).
    """

    def __init__(
        self,
        name: str,
        seed: int | None = 0,
        timeout: float = 5.0,
        retries: int = 5,
        contract_hash: str | None = None,
        task: str | None = None,
        curve_server_key: str | None = None,
        curve_client_cert: str | None = None,
        spin: float = 0.0,
        episode_length: int | None = None,
        keepalive: bool = True,
    ) -> None:
        if episode_length is not None and (
            not isinstance(episode_length, int) or episode_length < 1
        ):
            raise TaskError(f"episode_length must be a positive integer, got {episode_length!r}")
        self.client = BridgeClient(
            name,
            timeout=timeout,
            retries=retries,
            mode="lockstep",
            contract_hash=contract_hash,
            task=task,
            name="RemoteEnv",
            curve_server_key=curve_server_key,
            curve_client_cert=curve_client_cert,
            spin=spin,
            keepalive=keepalive,
        )
        try:
            info = self.client.connect()
        except HandshakeError as err:
            self.client.close()
            raise TaskError(f"zmq:{name}: {err}") from None
        except Exception:
            self.client.close()
            raise
        raw = info.raw
        contract = ObservationContract.from_json(raw["contract"])
        if contract.hash != info.contract_hash:
            raise TaskError(
                f"zmq:{name}: contract JSON hashes to {contract.hash}, server "
                f"announced {info.contract_hash}"
            )
        super().__init__(
            EnvSpec(
                task_id=info.task_id,
                obs_dim=info.obs_dim,
                action_dim=info.action_dim,
                control_period=info.control_period,
                episode_length=min(int(raw["episode_length"]), episode_length or 2**62),
                contract=contract,
                action_mapping=ActionMapping.from_json(raw.get("action_mapping"), info.action_dim),
                physics_dt=float(raw.get("physics_dt", info.control_period)),
                substeps=int(raw.get("substeps", 1)),
                terminates=bool(raw.get("terminates")),
                success_return=raw.get("success_return"),
                extras={
                    "endpoint": name,
                    "server": raw.get("server"),
                    "mode": info.mode,
                    "instances": int(raw.get("instances", 1)),
                },
            )
        )
        self._first_seed = seed

    @property
    def reconnects(self) -> int:
        """How often the client had to rebuild its connection."""
        return self.client.reconnects

    @property
    def restarts(self) -> int:
        """How often the server was seen to restart."""
        return self.client.restarts

    def _reset(self, seed: int | None) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None:
            seed, self._first_seed = self._first_seed, None
        else:
            self._first_seed = None
        before = self.client.reconnects
        try:
            ob = self.client.reset(seed)
        except RemoteError as err:
            if err.code == ErrorCode.FULL:
                raise TaskError(f"zmq:{self.client.endpoint}: {err.message}") from None
            raise
        return ob.obs.copy(), {"reconnected": self.client.reconnects > before}

    def _step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        try:
            ob = self.client.step(action)
        except EpisodeLost as err:
            self._needs_reset = True
            raise EpisodeLostError(
                f"zmq:{self.client.endpoint}: episode lost at step {self.elapsed_steps + 1}: "
                f"{err.reason or err}"
            ) from None
        except RemoteError as err:
            if err.code in (ErrorCode.BAD_SHAPE, ErrorCode.NOT_FINITE):
                raise ActionError(str(err)) from None
            raise
        return ob.obs.copy(), ob.reward, ob.terminated, {"server_truncated": ob.truncated}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        if info.get("server_truncated"):
            truncated = not terminated
            self._needs_reset = True
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self.client.close()
