"""Any task of :mod:`boom_control.envs` served over the sim bridge (``boom sim``)."""
