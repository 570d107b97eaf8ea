"""``python -m sim_bridge``: the bridge's stand-alone servers, for a Python environment
without boom-control installed (only numpy, pyzmq, msgpack, and gymnasium for ``gym``)::

    python -m sim_bridge gym ENV_ID [--import MODULE] [--bind ...]     any Gymnasium env
    python -m sim_bridge robot MODULE:CLASS [--bind ...]               a RobotDriver

``boom sim`` serves boom-control's own tasks (and drivers) with the same server.
"""

from __future__ import annotations

import sys

SERVERS = {
    "gym": ("sim_bridge.gym_server", "serve a Gymnasium env (lockstep or real time)"),
    "robot": ("sim_bridge.hardware", "serve a robot through a RobotDriver (real time)"),
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SERVERS:
        lines = [f"  {name:6} {text}" for name, (_, text) in SERVERS.items()]
        usage = (
            "usage: python -m sim_bridge {gym,robot} ARGS ... (--help after one for its options)"
        )
        print(usage, *lines, sep="\n", file=sys.stdout if argv else sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"error: unknown server {argv[0]!r}", file=sys.stderr)
            raise SystemExit(2)
        raise SystemExit(0 if argv else 2)
    import importlib

    module = importlib.import_module(SERVERS[argv[0]][0])
    module.main(argv[1:], prog=f"python -m sim_bridge {argv[0]}")


if __name__ == "__main__":
    main()
