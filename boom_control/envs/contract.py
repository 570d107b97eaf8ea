"""The observation contract and the one observation builder.

Every task describes its flat observation vector as an ordered list of *fields* (a key of
the raw observation mapping, its size, its unit and a name for each element). The same
:class:`ObservationContract` builds the vector during training, in the sim bridge and in
the controller, and its :attr:`~ObservationContract.hash` is recorded in every bundle, so
a layout drift between training and deployment is caught by name instead of silently
feeding a policy the wrong numbers.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from boom_control.errors import ObservationError

CONTRACT_VERSION = 1


@dataclass(frozen=True)
class ObsField:
    """One named block of the observation vector.

    Attributes:
        key: key of the raw observation mapping this block is read from.
        size: number of scalars in the block.
        unit: physical unit of every element (``m``, ``rad``, ``m/s``, ``1`` ...).
        names: one name per element; defaults to ``key[i]``.
        scale: multiplier applied when building the vector (1.0 = raw units).
    """

    key: str
    size: int
    unit: str = "1"
    names: tuple[str, ...] = ()
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError(f"field {self.key!r}: size must be positive, got {self.size}")
        if not self.names:
            names = (
                (self.key,)
                if self.size == 1
                else tuple(f"{self.key}[{i}]" for i in range(self.size))
            )
            object.__setattr__(self, "names", names)
        if len(self.names) != self.size:
            raise ValueError(f"field {self.key!r}: {len(self.names)} names for size {self.size}")


@dataclass(frozen=True)
class ObservationContract:
    """Ordered observation layout with a stable hash of names, order, units and scaling."""

    fields: tuple[ObsField, ...]

    def __post_init__(self) -> None:
        keys = [f.key for f in self.fields]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate observation keys in contract: {keys}")
        names = self.names
        if len(set(names)) != len(names):
            raise ValueError("observation element names must be unique")

    @property
    def dim(self) -> int:
        """Length of the flat observation vector."""
        return sum(f.size for f in self.fields)

    @property
    def names(self) -> tuple[str, ...]:
        """Name of every element of the flat vector, in order."""
        return tuple(n for f in self.fields for n in f.names)

    @property
    def units(self) -> tuple[str, ...]:
        """Unit of every element of the flat vector, in order."""
        return tuple(f.unit for f in self.fields for _ in range(f.size))

    def to_json(self) -> dict:
        """Canonical JSON form (stored in bundles, sent in the bridge handshake)."""
        return {
            "version": CONTRACT_VERSION,
            "fields": [
                {
                    "key": f.key,
                    "size": f.size,
                    "unit": f.unit,
                    "names": list(f.names),
                    "scale": f.scale,
                }
                for f in self.fields
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping) -> ObservationContract:
        """Inverse of :meth:`to_json`."""
        if data.get("version") != CONTRACT_VERSION:
            raise ObservationError(
                f"observation contract version {data.get('version')} is not supported "
                f"(this build reads version {CONTRACT_VERSION})"
            )
        return cls(
            tuple(
                ObsField(f["key"], int(f["size"]), f["unit"], tuple(f["names"]), float(f["scale"]))
                for f in data["fields"]
            )
        )

    @property
    def hash(self) -> str:
        """SHA-256 (hex, 16 chars) of the canonical JSON: changes iff the layout changes."""
        blob = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def build(self, raw: Mapping[str, np.ndarray | float | Sequence[float]]) -> np.ndarray:
        """Flatten a raw observation mapping into the contract's float32 vector.

        Args:
            raw: key -> array-like whose total size equals the field size.
        Returns:
            ``(dim,)`` float32 vector.
        """
        out = np.empty(self._dim, dtype=np.float32)
        for key, span, size, scale in self._layout:
            try:
                value = raw[key]
            except KeyError:
                raise ObservationError(
                    f"observation is missing {key!r}; contract expects keys "
                    f"{[g.key for g in self.fields]}"
                ) from None
            arr = np.ravel(value)
            if arr.size != size:
                raise ObservationError(
                    f"observation {key!r} has {arr.size} values, contract expects {size}"
                )
            out[span] = arr if scale == 1.0 else arr * scale
        return out

    @functools.cached_property
    def _layout(self) -> tuple[tuple[str, slice, int, float], ...]:
        """``(key, slice of the vector, size, scale)`` per field, resolved once."""
        starts = np.cumsum([0] + [f.size for f in self.fields])
        return tuple(
            (f.key, slice(int(a), int(a) + f.size), f.size, f.scale)
            for f, a in zip(self.fields, starts[:-1])
        )

    @functools.cached_property
    def _dim(self) -> int:
        return self.dim

    def diff(self, other: ObservationContract) -> str:
        """Short human-readable difference between two contracts ('' when equal)."""
        if self.hash == other.hash:
            return ""
        mine, theirs = self.names, other.names
        if len(mine) != len(theirs):
            return f"dimension {len(mine)} vs {len(theirs)}"
        for i, (a, b) in enumerate(zip(mine, theirs)):
            if a != b:
                return f"element {i}: {a!r} vs {b!r}"
        for a, b in zip(self.fields, other.fields):
            if a != b:
                return f"field {a.key!r}: unit/scale {a.unit}/{a.scale} vs {b.unit}/{b.scale}"
        return "layout differs"
