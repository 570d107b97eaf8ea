"""MPPI in latent space: the pure plan functions with explicit state (:mod:`.mppi`), their
settings, and the faster ways to run an iteration (split across cores, compiled, replayed
from a CUDA graph)."""
