"""boom-control: BOOM world-model controllers for humanoids, from training to a robot.

Entry points: :func:`boom_control.envs.make_env` for every task, the ``boom`` command for
training, export, simulation, control and profiling.
"""

__version__ = "0.1.0"
