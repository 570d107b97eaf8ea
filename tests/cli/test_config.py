"""Config loading: presets < overrides, strict keys and types, frozen results."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import pytest

from boom_control.config import dump_yaml, load_config, parse_overrides
from boom_control.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    width: int = 8
    rate: float = 0.5
    mode: Literal["avg", "min"] = "avg"


@dataclass(frozen=True)
class Outer:
    task: str = "dmc:walker-walk"
    seed: int = 0
    scale: float | None = None
    inner: Inner = field(default_factory=Inner)


def test_parse_overrides_nests_and_types_values():
    tree = parse_overrides(["inner.width=32", "task=h1:walk", "scale=null", "seed=3"])
    assert tree == {"inner": {"width": 32}, "task": "h1:walk", "scale": None, "seed": 3}


def test_overrides_apply_and_result_is_frozen():
    cfg = load_config(Outer, overrides=["inner.width=32", "inner.rate=1", "task=h1:walk"])
    assert cfg.inner.width == 32
    assert cfg.inner.rate == 1.0 and isinstance(cfg.inner.rate, float)
    assert cfg.task == "h1:walk"
    # YAML 1.1 leaves an exponent without a dot a string; a float key takes it as a number
    cfg = load_config(Outer, overrides=["inner.rate=3e-5", "scale=-2E3"])
    assert cfg.inner.rate == 3e-5 and cfg.scale == -2000.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 4  # type: ignore[misc]


def test_misspelled_key_lists_valid_choices():
    with pytest.raises(ConfigError) as err:
        load_config(Outer, overrides=["inner.widht=3"])
    msg = str(err.value)
    assert "inner.widht" in msg and "width" in msg and "rate" in msg
    with pytest.raises(ConfigError, match="valid keys: task, seed, scale, inner"):
        load_config(Outer, overrides=["sede=1"])


def test_wrong_type_and_bad_literal_are_rejected():
    with pytest.raises(ConfigError, match="inner.width"):
        load_config(Outer, overrides=["inner.width=wide"])
    with pytest.raises(ConfigError, match="inner.rate"):
        load_config(Outer, overrides=["inner.rate=3e-5x"])
    with pytest.raises(ConfigError, match="seed"):
        load_config(Outer, overrides=["seed=1e3"])  # only float keys read it as a number
    with pytest.raises(ConfigError, match="one of 'avg', 'min'"):
        load_config(Outer, overrides=["inner.mode=max"])


def test_malformed_override():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(Outer, overrides=["seed"])


def test_yaml_round_trip(tmp_path):
    cfg = load_config(Outer, overrides=["inner.width=12", "scale=0.25"])
    path = tmp_path / "cfg.yaml"
    dump_yaml(cfg, path)
    assert load_config(Outer, presets=[path]) == cfg


def test_unknown_preset_lists_available():
    with pytest.raises(ConfigError, match="no preset 'does-not-exist'"):
        load_config(Outer, presets=["does-not-exist"])
