"""Checking plans against randomness and data: Monte Carlo simulation and acceptance calibration (pure)."""
