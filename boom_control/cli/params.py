"""Parameter types shared by several ``boom`` commands."""

from __future__ import annotations

import os

import click


class CpuList(click.ParamType):
    """Comma-separated logical CPU numbers (``0,1``) that this machine has."""

    name = "cpus"

    def convert(self, value, param, ctx) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            cpus = tuple(int(v) for v in str(value).split(",") if v.strip())
        except ValueError:
            self.fail(f"expected comma-separated CPU numbers, got {value!r}", param, ctx)
        have = os.cpu_count() or 1
        if not cpus or min(cpus) < 0 or max(cpus) >= have:
            self.fail(f"CPUs must be in 0..{have - 1}, got {value!r}", param, ctx)
        return cpus


CPU_LIST = CpuList()


def pin_cpus(cpus: tuple[int, ...] | None) -> None:
    """Restrict this process (and the threads it starts from now on) to ``cpus``."""
    if cpus:
        os.sched_setaffinity(0, set(cpus))


def backend_option(default: str | None, help: str):
    """``--backend``: the planner runtimes ``boom control`` can run."""
    return click.option(
        "--backend",
        type=click.Choice(["torch", "torchscript", "onnx", "cudagraph"]),
        default=default,
        show_default=default is not None,
        help=help,
    )
