"""Training BOOM agents: config, replay buffer, trainer loop, checkpoints, evaluation, plots.

The trainer is assembled from factories (environment, agent, buffer, logger) so tests can
drive it with small tasks and stand-in agents; :func:`boom_control.train.trainer.build_trainer`
wires the real ones from a :class:`~boom_control.train.config.TrainConfig`.
"""
