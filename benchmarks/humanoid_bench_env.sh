#!/usr/bin/env bash
# Build (or check) a separate Python environment in which Humanoid-Bench's environments can
# be served to boom-control over the sim bridge. Run with --help for the details.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benchmarks/humanoid_bench_env.sh [ENV_DIR]
       benchmarks/humanoid_bench_env.sh --check [ENV_DIR]
       benchmarks/humanoid_bench_env.sh --help

Creates a Python 3.11 virtual environment at ENV_DIR (default: .hb-env) holding the
pinned, CPU-only dependencies of Humanoid-Bench and of boom-control's Gymnasium adapter
(python -m sim_bridge gym), and a .pth file that puts this boom-control checkout
on the environment's import path. It does not install Humanoid-Bench itself: that is a
separate checkout, installed into the environment by hand (see the last lines printed).

With --check it builds nothing: it imports what the environment should hold (mujoco,
dm_control, gymnasium, numpy, jax, torch, zmq, msgpack, sim_bridge.gym_server and, where
installed, humanoid_bench) and prints their versions; with humanoid_bench present it also
makes h1hand-walk-v0 (render_mode=None) and steps it once. It exits non-zero on a failure.

Environment variables:
  PYTHON        interpreter that creates the environment (default: python3.11)
  TORCH_SPEC    the torch requirement (default: torch==2.13.0); it must be a CPU build
  TORCH_INDEX   index that torch comes from, passed to pip as --index-url (default: the
                PyTorch CPU wheel index); set it empty (TORCH_INDEX=) to use pip's
                configured index, e.g. where a CPU wheel of TORCH_SPEC lies on disk
  PIP_FLAGS     extra flags for every pip install (default: -q)

The torch build is checked after installing: a CUDA build, or any nvidia-* package in the
environment, stops the script with an error.
EOF
}

MODE=build
ENV_DIR=""
while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --check) MODE=check ;;
        -*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
        *)
            if [ -n "$ENV_DIR" ]; then
                echo "error: more than one ENV_DIR given" >&2; usage >&2; exit 2
            fi
            ENV_DIR="$1"
            ;;
    esac
    shift
done
ENV_DIR="${ENV_DIR:-.hb-env}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
TORCH_INDEX="${TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
read -r -a PIP_EXTRA <<<"${PIP_FLAGS:--q}"

# The pins. Humanoid-Bench's own setup.py asks for more (mjx, brax, gymnax, opencv, ...);
# creating and stepping its environments needs only these.
HB_PINS=(
    "mujoco==3.1.6"
    "dm_control==1.0.20"
    "gymnasium==0.29.1"
    "numpy==1.26.4"
    "jax[cpu]==0.4.28"
    "imageio==2.34.2"
)
# What sim_bridge.gym_server needs besides gymnasium and numpy.
BRIDGE_PINS=(
    "pyzmq==26.4.0"
    "msgpack==1.1.0"
)

check_env() {
    local py="$1/bin/python"
    if [ ! -x "$py" ]; then
        echo "error: no Python environment at $1 (build it first: $0 $1)" >&2
        return 1
    fi
    # From / and without PYTHONPATH, so sim_bridge is found only through the .pth file.
    (cd / && env -u PYTHONPATH "$py" - <<'PY'
import importlib
import importlib.metadata
import importlib.util
import sys

failed = False
print(f"python {sys.version.split()[0]} at {sys.executable}")
# module -> distribution whose version is printed
for name, dist in (("numpy", "numpy"), ("mujoco", "mujoco"), ("dm_control", "dm_control"),
                   ("gymnasium", "gymnasium"), ("jax", "jax"), ("jaxlib", "jaxlib"),
                   ("torch", "torch"), ("imageio", "imageio"), ("zmq", "pyzmq"),
                   ("msgpack", "msgpack")):
    try:
        importlib.import_module(name)
    except Exception as exc:  # report every failure, not just the first
        print(f"FAIL {name}: {type(exc).__name__}: {exc}")
        failed = True
        continue
    print(f"ok   {name} {importlib.metadata.version(dist)}")

try:
    import torch
    cuda = torch.version.cuda
    print(f"     torch build: {'CUDA ' + cuda if cuda else 'CPU'}")
    failed = failed or bool(cuda)
except Exception:
    pass
try:
    import jax
    print(f"     jax devices: {[d.platform for d in jax.devices()]}")
except Exception as exc:
    print(f"FAIL jax devices: {exc}")
    failed = True

try:
    import sim_bridge.gym_server as gs
    print(f"ok   sim_bridge.gym_server from {gs.__file__}")
except Exception as exc:
    print(f"FAIL sim_bridge.gym_server: {type(exc).__name__}: {exc}")
    failed = True

if importlib.util.find_spec("humanoid_bench") is None:
    print("--   humanoid_bench not installed (install your checkout here, without its dependencies)")
else:
    try:
        import gymnasium as gym
        import humanoid_bench

        print(f"ok   humanoid_bench from {humanoid_bench.__file__}")
        env = gym.make("h1hand-walk-v0", render_mode=None)
        obs, _ = env.reset(seed=0)
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        print(f"ok   h1hand-walk-v0: obs {obs.shape}, action {env.action_space.shape}, "
              f"dt {env.unwrapped.dt}, reward {float(reward):.4f}")
        env.close()
    except Exception as exc:
        print(f"FAIL humanoid_bench: {type(exc).__name__}: {exc}")
        failed = True

sys.exit(1 if failed else 0)
PY
    )
}

if [ "$MODE" = check ]; then
    check_env "$ENV_DIR"
    exit $?
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "error: $PYTHON not found (set PYTHON to a Python 3.11 interpreter)" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "error: $PYTHON is not Python 3.11 (the pins above are for 3.11)" >&2
    exit 1
fi

if [ -x "$ENV_DIR/bin/python" ]; then
    echo "reusing the environment at $ENV_DIR"
else
    echo "creating a Python 3.11 environment at $ENV_DIR"
    "$PYTHON" -m venv "$ENV_DIR"
fi
ENV_DIR="$(cd "$ENV_DIR" && pwd)"
PIP=("$ENV_DIR/bin/python" -m pip install "${PIP_EXTRA[@]}")

# torch first and on its own, so the index option touches nothing else.
echo "installing $TORCH_SPEC${TORCH_INDEX:+ from $TORCH_INDEX}"
if [ -n "$TORCH_INDEX" ]; then
    "${PIP[@]}" --index-url "$TORCH_INDEX" "$TORCH_SPEC"
else
    "${PIP[@]}" "$TORCH_SPEC"
fi
if ! "$ENV_DIR/bin/python" -c 'import sys, torch; sys.exit(torch.version.cuda is not None)'; then
    echo "error: the torch installed from $TORCH_SPEC is a CUDA build; use a CPU wheel" >&2
    exit 1
fi

echo "installing ${HB_PINS[*]} ${BRIDGE_PINS[*]}"
"${PIP[@]}" "${HB_PINS[@]}" "${BRIDGE_PINS[@]}"

if "$ENV_DIR/bin/python" -m pip list --format=freeze 2>/dev/null | grep -qi '^nvidia-'; then
    echo "error: CUDA packages (nvidia-*) ended up in $ENV_DIR:" >&2
    "$ENV_DIR/bin/python" -m pip list --format=freeze | grep -i '^nvidia-' >&2
    exit 1
fi

SITE="$("$ENV_DIR/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
printf '%s\n' "$REPO_ROOT" >"$SITE/boom_control_checkout.pth"
echo "wrote $SITE/boom_control_checkout.pth -> $REPO_ROOT"

check_env "$ENV_DIR"

cat <<EOF

Done. Next, install your Humanoid-Bench checkout into this environment, editable and
without its dependencies (pip's --no-deps: its own requirements would replace the versions
above), check it, and serve a task:

  $0 --check $ENV_DIR
  $ENV_DIR/bin/python -m sim_bridge gym h1hand-walk-v0 \\
      --import humanoid_bench --bind tcp://127.0.0.1:5555

then, from boom-control's own environment:

  boom tasks zmq:tcp://127.0.0.1:5555
  boom train --preset train_cpu task=zmq:tcp://127.0.0.1:5555 size=1M

(docs/humanoid_bench.md has the rest.)
EOF
