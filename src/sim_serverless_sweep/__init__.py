"""Deterministic parameter sweeps of a ride-hailing marketplace simulation."""

__version__ = "0.1.0"
