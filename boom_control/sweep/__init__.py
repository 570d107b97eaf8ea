"""Sweeps: grids of training runs (tasks x variants x seeds) on Ray, and their reports."""
