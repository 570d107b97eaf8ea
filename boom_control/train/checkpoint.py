"""Checkpoints: atomic writes, ``weights_only`` loading and the run's random-number states.

Everything in a checkpoint is a tensor, a plain container or a Python scalar/string, so
``torch.load(path, weights_only=True)`` reads it (numpy arrays are stored as tensors, the
config as a plain dict). A write goes to a temporary file in the same folder and is moved
into place with ``os.replace``: a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from boom_control.errors import RunError

LATEST = "latest.pt"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file + fsync + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no arbitrary code is unpickled)."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)


def checkpoint_dir(run_dir: str | Path) -> Path:
    """``<run_dir>/checkpoints``."""
    return Path(run_dir) / "checkpoints"


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The resumable checkpoint of a run, or None when there is none yet."""
    path = checkpoint_dir(run_dir) / LATEST
    return path if path.is_file() else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run folder (its latest checkpoint)."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise RunError(f"no checkpoints/{LATEST} in {path}")
        return found
    if not path.is_file():
        raise RunError(f"no checkpoint at {path}")
    return path


def rng_state(generators: dict[str, np.random.Generator]) -> dict[str, Any]:
    """States of python ``random``, numpy's global RNG, torch (CPU and CUDA) and generators."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": pos,
            "has_gauss": has_gauss,
            "gauss": gauss,
        },
        "torch": torch.get_rng_state(),
        "generators": {name: g.bit_generator.state for name, g in generators.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generators: dict[str, np.random.Generator]) -> None:
    """Restore what :func:`rng_state` captured (generators are updated in place)."""
    random.setstate(_tuples(state["python"]))
    npst = state["numpy"]
    np.random.set_state(
        (
            npst["kind"],
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, g in generators.items():
        g.bit_generator.state = state["generators"][name]


def _tuples(x: Any) -> Any:
    """``random.setstate`` wants tuples; a checkpoint may give lists back."""
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def stream_seed(seed: int, *key: int) -> int:
    """A 32-bit seed for one named random stream of a run (``seed`` and the stream's key)."""
    return int(np.random.SeedSequence([seed, *key]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
