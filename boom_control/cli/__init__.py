"""The ``boom`` command. Each subcommand lives in its own module of this package.

Subcommands are imported lazily so ``boom tasks`` does not pay for torch, and a missing
optional dependency only breaks the command that needs it.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from boom_control import __version__
from boom_control.errors import BoomError
from boom_control.logs import setup_logging

# command name -> ("module:attribute" of a click command, one-line help)
COMMANDS = {
    "demo": (
        "boom_control.cli.demo:demo",
        "Train, export, simulate, control and report, end to end.",
    ),
    "tasks": ("boom_control.cli.tasks:tasks", "List every task with its dims and rates."),
    "train": ("boom_control.cli.train:train", "Train a BOOM agent on a task."),
    "eval": (
        "boom_control.cli.eval:evaluate",
        "Evaluate a checkpoint or bundle (planner and policy); render a video.",
    ),
    "plot": ("boom_control.cli.plot:plot", "Plot the learning curve of a run."),
    "export": ("boom_control.cli.export:export", "Export a trained run to a controller bundle."),
    "bundle": ("boom_control.cli.bundle:bundle", "Bundle tools: upgrade a version-1 bundle."),
    "sim": ("boom_control.cli.sim:sim", "Serve a task's MuJoCo simulation over ZeroMQ."),
    "sweep": (
        "boom_control.cli.sweep:sweep",
        "Train a grid of runs (tasks x variants x seeds) on Ray; report mean and CI.",
    ),
    "profile": (
        "boom_control.cli.profile:profile",
        "Profile planning latency of a bundle, or report on a control run.",
    ),
    "control": (
        "boom_control.cli.control:control",
        "Run a bundle at a fixed rate against a bridge.",
    ),
}


class UserError(click.ClickException):
    """An error the user can act on, shown as ``error: <message>`` (exit status 2)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def user_errors() -> tuple[type[Exception], ...]:
    """The exceptions shown in one line: :class:`~boom_control.errors.BoomError` and the
    bridge's connection, handshake and binding errors (imported only when needed)."""
    from sim_bridge.client import BridgeError
    from sim_bridge.transport import BridgeSecurityError

    return (BoomError, BridgeError, BridgeSecurityError)


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; errors the user can act on become one line (with ``-v`` their
        traceback is logged first); anything else is a bug and keeps its traceback."""
        try:
            return super().invoke(ctx)
        except Exception as err:
            if isinstance(err, click.ClickException) or not isinstance(err, user_errors()):
                raise
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                logging.getLogger(__name__).debug("traceback", exc_info=err)
            raise UserError(str(err)) from err

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr = COMMANDS[cmd_name][0].split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise click.ClickException(f"`boom {cmd_name}` is unavailable: {err}") from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text comes from the table above so `boom --help` imports nothing heavy.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="boom")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
def cli(verbose: int, quiet: bool) -> None:
    """boom-control: train BOOM controllers, export them, simulate and run them at 50 Hz."""
    setup_logging(-1 if quiet else verbose)


def main(argv: list[str] | None = None) -> None:
    """Console entry point (errors the user can act on are one line, see
    :meth:`LazyGroup.invoke`)."""
    try:
        cli.main(args=argv, prog_name="boom", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
