"""Typed configuration: frozen dataclasses filled from YAML presets and dotted overrides.

Schemas are frozen dataclasses defined next to the code they configure (task, learner,
deployment). This module only *loads* them:

    cfg = load_config(TrainConfig, presets=["train"], overrides=["model.size=5M", "seed=3"])

Order of precedence: dataclass defaults < YAML presets (in order) < command-line overrides.
A misspelled key or a value of the wrong type raises :class:`ConfigError` naming the key
and listing the valid choices. Nothing writes into a config after it is built.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import dacite
import yaml

from boom_control.errors import ConfigError

T = TypeVar("T")


def config_dir() -> Path:
    """Folder holding the YAML presets.

    Looked up in order: ``$BOOM_CONFIG_DIR``, ``configs/`` next to the installed package
    (source checkout or editable install), ``<prefix>/share/boom-control/configs`` (wheel).
    """
    candidates = []
    if env := os.environ.get("BOOM_CONFIG_DIR"):
        candidates.append(Path(env))
    candidates.append(Path(__file__).resolve().parent.parent / "configs")
    candidates.append(Path(sys.prefix) / "share" / "boom-control" / "configs")
    for path in candidates:
        if path.is_dir():
            return path
    raise ConfigError(
        "cannot find the configs/ folder; set BOOM_CONFIG_DIR to the folder holding the presets"
    )


def read_preset(name: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML preset by path or by name (``configs/<name>.yaml``)."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = config_dir() / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in config_dir().glob("*.yaml"))
        raise ConfigError(f"no preset {str(name)!r}; available: {', '.join(available)}")
    with path.open() as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"preset {path} must hold a mapping at top level")
    return data


def parse_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=x"]`` into ``{"a": {"b": 1}, "c": "x"}`` (values parsed as YAML)."""
    tree: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        # Keep strings that YAML would misread (e.g. "h1:walk" is fine, "5M" stays a string).
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with another override")
        node[parts[-1]] = value
    return tree


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``update`` wins."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _check_keys(cls: type, data: Mapping[str, Any], prefix: str = "") -> None:
    """Reject unknown keys, listing the valid ones (recursively for nested dataclasses)."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key, value in data.items():
        if key not in names:
            raise ConfigError(
                f"unknown config key {prefix + key!r}; valid keys"
                f"{' under ' + prefix.rstrip('.') if prefix else ''}: {', '.join(names)}"
            )
        sub = hints[key]
        if dataclasses.is_dataclass(sub) and isinstance(value, Mapping):
            _check_keys(sub, value, prefix=f"{prefix}{key}.")


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce(data: Any, cls: type) -> Any:
    """Let ints stand for floats and lists for tuples, as YAML and the CLI produce them."""
    if not isinstance(data, Mapping):
        return data
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in data.items():
        hint = hints.get(key)
        base = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        target = base[0] if len(base) == 1 else None
        if dataclasses.is_dataclass(target) and isinstance(value, Mapping):
            value = _coerce(value, target)
        elif target is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif target is float and isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads "3e-5" (no dot) as a string
        elif typing.get_origin(target) is tuple and isinstance(value, list):
            value = tuple(value)
        out[key] = value
    return out


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build ``cls`` from a nested dict, strictly: unknown keys and wrong types are errors."""
    _check_keys(cls, data)
    try:
        return dacite.from_dict(cls, _coerce(data, cls), config=dacite.Config(strict=True))
    except dacite.WrongTypeError as err:
        raise ConfigError(
            f"config key {err.field_path!r} must be {_type_name(err.field_type)}, got {err.value!r}"
        ) from None
    except (dacite.DaciteError, TypeError) as err:
        raise ConfigError(str(err)) from None


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config (for YAML dumps and checkpoints)."""
    return dataclasses.asdict(cfg)


def load_config(
    cls: type[T],
    presets: Iterable[str | os.PathLike] = (),
    overrides: Iterable[str] | Mapping[str, Any] = (),
) -> T:
    """Defaults < presets < overrides, validated into a frozen ``cls`` instance."""
    data: dict[str, Any] = {}
    for preset in presets:
        data = merge(data, read_preset(preset))
    update = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
    return from_dict(cls, merge(data, update))


def to_yaml(cfg: Any) -> str:
    """A config as YAML text (tuples as lists), loadable with ``load_config``."""

    def plain(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x

    return yaml.safe_dump(plain(to_dict(cfg)), sort_keys=False)


def dump_yaml(cfg: Any, path: os.PathLike) -> None:
    """Write a config as YAML so it can be loaded back with ``load_config``."""
    with open(path, "w") as f:
        f.write(to_yaml(cfg))
