"""Unit conversions at the boundary: everything inside multispin is SI (s, Hz, bit, W)."""

from __future__ import annotations

import numpy as np

MS = 1e-3  # seconds per millisecond
MHZ = 1e6  # hertz per megahertz


def db_to_linear(db):
    """Power ratio from decibels (works on scalars and arrays)."""
    return np.power(10.0, np.asarray(db, dtype=float) / 10.0)


def dbm_to_watts(dbm):
    """Watts from dBm."""
    return np.power(10.0, (np.asarray(dbm, dtype=float) - 30.0) / 10.0)
