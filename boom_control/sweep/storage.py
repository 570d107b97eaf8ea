"""Sweep folders on object stores and other filesystems Ray's storage accepts.

A sweep folder given as a URI (``s3://bucket/sweeps/cmp``, ``gs://...``, ``hdfs://...``,
``file:///shared/sweeps/cmp``) lives on that filesystem through ``pyarrow.fs``, the layer
Ray's own storage uses, so no node needs a shared disk. Each run trains in a local mirror
of its folder on the node that runs it (``$BOOM_CACHE_DIR/sweeps/<hash>``, else
``~/.cache/boom-control/sweeps/<hash>``): it pulls the run's folder first (an unfinished
run resumes from its checkpoint), pushes what changed after every checkpoint, and pushes
its ``result.json`` last. The driver pulls everything but the checkpoints (configs, logs,
results) to see what is finished and to report.

Credentials and regions come from the environment as pyarrow reads them (for S3:
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_DEFAULT_REGION``, or an instance
role); query parameters of the URI pass options (``s3://b/p?endpoint_override=host:9000``).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path, PurePosixPath

from boom_control.errors import ConfigError, RunError

log = logging.getLogger(__name__)

PYARROW_HINT = "pip install 'boom-control[ray]' (Ray and pyarrow, its storage layer)"
CHECKPOINTS = "checkpoints"
RESULT_LAST = "result.json"
"""Pushed after everything else of its run: a finished run is never seen half-uploaded."""


def is_uri(root: str | os.PathLike) -> bool:
    """Whether a sweep folder names a filesystem by scheme (``s3://...``) instead of a path."""
    return "://" in str(root)


def mirror_dir(uri: str) -> Path:
    """The local mirror of the sweep folder ``uri`` on this node."""
    base = os.environ.get("BOOM_CACHE_DIR") or Path.home() / ".cache" / "boom-control"
    return Path(base) / "sweeps" / hashlib.sha256(uri.encode()).hexdigest()[:16]


class RemoteFolder:
    """A sweep folder on a ``pyarrow.fs`` filesystem and its local mirror.

    Args:
        uri: the folder, e.g. ``s3://bucket/sweeps/cmp``.
        mirror: the local copy (default :func:`mirror_dir`).
    """

    def __init__(self, uri: str, mirror: Path | None = None) -> None:
        try:
            from pyarrow import fs
        except ImportError:
            raise ConfigError(f"a sweep folder at {uri} needs pyarrow: {PYARROW_HINT}") from None
        self._fs_mod = fs
        self.uri = uri.rstrip("/")
        try:
            self.fs, base = fs.FileSystem.from_uri(self.uri)
        except Exception as err:  # pyarrow raises ArrowInvalid / ArrowNotImplementedError
            raise ConfigError(f"sweep folder {uri}: {err}") from None
        self.base = base.rstrip("/")
        self.mirror = Path(mirror) if mirror is not None else mirror_dir(self.uri)
        self._pushed: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime_ns)

    def _remote(self, rel: str | PurePosixPath) -> str:
        rel = str(rel).strip("/")
        return f"{self.base}/{rel}" if rel and rel != "." else self.base

    def exists(self, rel: str | PurePosixPath) -> bool:
        """Whether ``rel`` (a file or folder under the sweep folder) exists there."""
        info = self.fs.get_file_info(self._remote(rel))
        return info.type != self._fs_mod.FileType.NotFound

    def pull(self, rel: str | PurePosixPath = "", checkpoints: bool = True) -> Path:
        """Copy the folder ``rel`` (all of the sweep by default) into the mirror, without
        the runs' ``checkpoints/`` unless ``checkpoints``; returns its local path."""
        fs = self._fs_mod
        selector = fs.FileSelector(self._remote(rel), recursive=True, allow_not_found=True)
        try:
            infos = self.fs.get_file_info(selector)
        except OSError as err:
            raise RunError(f"cannot list {self.uri}/{rel}: {err}") from None
        for info in infos:
            if info.type != fs.FileType.File:
                continue
            name = info.path[len(self.base) :].lstrip("/")
            if name.endswith(".part"):  # an upload under way
                continue
            if not checkpoints and CHECKPOINTS in PurePosixPath(name).parts[:-1]:
                continue
            dest = self.mirror / name
            if dest.is_file() and self._pushed.get(name) == _stamp(dest):
                continue  # this node wrote it and pushed it: the copies are the same
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".part")
            with self.fs.open_input_stream(info.path) as src, open(tmp, "wb") as out:
                while chunk := src.read(1 << 22):
                    out.write(chunk)
            tmp.replace(dest)
        return self.mirror / str(rel)

    def push(self, rel: str | PurePosixPath = "") -> int:
        """Upload the files of the mirror's folder ``rel`` that changed since this object
        last pushed them (``result.json`` files last); returns how many it uploaded."""
        folder = self.mirror / str(rel)
        if folder.is_file():
            files = [folder]
        else:
            files = sorted(p for p in folder.rglob("*") if p.is_file())
        files = [p for p in files if not p.name.endswith(".part")]
        files.sort(key=lambda p: p.name == RESULT_LAST)  # stable: the rest keep their order
        sent = 0
        for path in files:
            name = path.relative_to(self.mirror).as_posix()
            stamp = _stamp(path)
            if self._pushed.get(name) == stamp:
                continue
            target = self._remote(name)
            self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            tmp = target + ".part"
            try:
                with open(path, "rb") as src, self.fs.open_output_stream(tmp) as out:
                    while chunk := src.read(1 << 22):
                        out.write(chunk)
                self.fs.move(tmp, target)  # readers never see a half-written file
            except OSError as err:
                raise RunError(f"cannot upload {path} to {self.uri}/{name}: {err}") from None
            self._pushed[name] = stamp
            sent += 1
        return sent


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns
