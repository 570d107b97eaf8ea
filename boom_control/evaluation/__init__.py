"""Scoring checkpoints and bundles (``boom eval``): loading either with its task, and
running episodes in each mode."""
