"""The errors boom-control raises for problems its user can act on, in one hierarchy.

Every one is a :class:`BoomError` whose message says what is wrong and what to do; the
``boom`` command prints it in one line (with ``-vv`` its traceback too). Anything else that
escapes is a bug and keeps its traceback. The bridge's own errors
(``sim_bridge.client.BridgeError``, ``sim_bridge.protocol.ProtocolError``) stay in
``sim_bridge``, which imports nothing from here.
"""

from __future__ import annotations


class BoomError(Exception):
    """A problem the user can act on (bad input, a missing file or package, a device or
    server that is not there); the message says what to do."""


class ConfigError(BoomError):
    """A configuration value or key is invalid; the message says which and what is valid."""


class DeviceError(BoomError):
    """The requested device is not usable on this machine."""


class TaskError(BoomError):
    """A task id, task option or optional dependency problem, with what to do about it."""


class ActionError(BoomError):
    """An action has the wrong shape or is not finite."""


class ObservationError(BoomError):
    """A raw observation does not match the contract (missing key, wrong size)."""


class EpisodeLostError(BoomError):
    """The environment lost its episode mid-step (a remote simulator restarted, forgot
    this client, or did not answer): the step has no result; reset to go on. The message
    says what happened."""


class BundleError(BoomError):
    """The bundle is missing, corrupted, of another format version or does not fit the task."""


class BackendError(BoomError):
    """A planner backend cannot run here (missing provider, wrong device)."""


class ParityError(BoomError):
    """An exported part disagrees with the eager model beyond the tolerance."""


class RenderError(BoomError):
    """Offscreen rendering is not possible here, with what to do about it."""


class RunError(BoomError):
    """A run folder, checkpoint or run log is missing or not what it should be."""


class TelemetryError(BoomError):
    """A file is not a telemetry log this version can read."""
