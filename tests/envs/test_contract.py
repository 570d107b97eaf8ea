"""The observation contract: building vectors and a hash that tracks the layout."""

from __future__ import annotations

import numpy as np
import pytest

from boom_control.envs import ObservationContract, ObsField
from boom_control.errors import ObservationError


def contract(*fields: ObsField) -> ObservationContract:
    return ObservationContract(tuple(fields))


BASE = contract(ObsField("qpos", 3, "rad"), ObsField("qvel", 2, "rad/s"))


def test_build_orders_and_checks_sizes():
    obs = BASE.build({"qvel": [4.0, 5.0], "qpos": np.array([1.0, 2.0, 3.0])})
    assert obs.dtype == np.float32
    np.testing.assert_array_equal(obs, [1, 2, 3, 4, 5])
    with pytest.raises(ObservationError, match="missing 'qvel'"):
        BASE.build({"qpos": [1, 2, 3]})
    with pytest.raises(ObservationError, match="'qpos' has 2 values"):
        BASE.build({"qpos": [1, 2], "qvel": [1, 2]})


def test_names_default_and_units():
    assert BASE.names == ("qpos[0]", "qpos[1]", "qpos[2]", "qvel[0]", "qvel[1]")
    assert BASE.units == ("rad",) * 3 + ("rad/s",) * 2
    assert BASE.dim == 5


def test_hash_is_stable_and_tracks_layout():
    same = contract(ObsField("qpos", 3, "rad"), ObsField("qvel", 2, "rad/s"))
    assert same.hash == BASE.hash and same.diff(BASE) == ""
    changed = [
        contract(ObsField("qvel", 2, "rad/s"), ObsField("qpos", 3, "rad")),  # order
        contract(ObsField("qpos", 3, "deg"), ObsField("qvel", 2, "rad/s")),  # unit
        contract(ObsField("qpos", 4, "rad"), ObsField("qvel", 2, "rad/s")),  # size
        contract(ObsField("qpos", 3, "rad", scale=0.5), ObsField("qvel", 2, "rad/s")),
        contract(ObsField("qpos", 3, "rad", names=("a", "b", "c")), ObsField("qvel", 2, "rad/s")),
    ]
    hashes = {c.hash for c in changed}
    assert BASE.hash not in hashes and len(hashes) == len(changed)
    assert all(c.diff(BASE) for c in changed)


def test_json_round_trip_keeps_hash():
    again = ObservationContract.from_json(BASE.to_json())
    assert again == BASE and again.hash == BASE.hash
    bad = BASE.to_json() | {"version": 99}
    with pytest.raises(ObservationError, match="version 99"):
        ObservationContract.from_json(bad)


def test_invalid_contracts_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        contract(ObsField("a", 1), ObsField("a", 2))
    with pytest.raises(ValueError, match="2 names for size 3"):
        ObsField("a", 3, names=("x", "y"))
