"""Settling of phase shifters after a write: the wait a schedule needs and the residual.

A shifter programmed from φ₀ to φ₁ = φ₀ + Δφ at time 0 follows a first-order response. A
time t after the write it applies φ₁ − Δφ·e^{−t/τ}, so it lags the new setting by the
residual Δφ·e^{−t/τ}. For a thermo-optic shifter τ is the thermal time constant,
1/(2π f₃dB) for a 3-dB bandwidth f₃dB (Harris et al., Opt. Express 22, 10487, 2014).
Heating and cooling may have different time constants, so a rising phase uses the rise
and a falling phase the fall time constant.

The scheduler waits until the residual of the largest change of a write is at most a
tolerance: t = τ · ln(|Δφ| / tolerance), with τ the slower time constant. A pass that
starts earlier meets the residual that ``settling_residual`` returns.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from simulator.components import PhaseShifters

__all__ = ["FULL_PHASE_RANGE_RAD", "settle_time_ps", "settling_residual"]

FULL_PHASE_RANGE_RAD = 2 * math.pi
"""Largest change of a write that replaces a mesh's phases with another layer's: phases
lie in [0, 2π)."""


def settle_time_ps(
    shifters: PhaseShifters, phase_change_rad: float, tolerance_rad: float
) -> int:
    """Return the wait after a write of largest change ``phase_change_rad``, ps.

    The wait is τ · ln(|Δφ| / tolerance) with τ the slower of the rise and fall time
    constants, rounded up to a whole picosecond, and 0 when |Δφ| is within the
    tolerance. It is never shorter than ``shifters.min_settle_ps``.

    Raises:
        ValueError: if ``tolerance_rad`` is not a positive finite number or
            ``phase_change_rad`` is not finite.
    """
    if not (math.isfinite(tolerance_rad) and tolerance_rad > 0):
        raise ValueError(
            f"tolerance_rad must be a positive finite number, got {tolerance_rad!r}"
        )
    if not math.isfinite(phase_change_rad):
        raise ValueError(f"phase_change_rad must be finite, got {phase_change_rad!r}")

    change = abs(phase_change_rad)
    wait_ps = 0
    if change > tolerance_rad:
        wait_ps = math.ceil(
            shifters.settle_time_constant_ps * math.log(change / tolerance_rad)
        )
    return max(wait_ps, shifters.min_settle_ps)


def settling_residual(
    phase_change_rad: ArrayLike,
    elapsed_s: float,
    rise_time_constant_s: float,
    fall_time_constant_s: float | None = None,
) -> np.ndarray:
    """Return the phase error Δφ·e^{−t/τ} left ``elapsed_s`` after a write, rad.

    Args:
        phase_change_rad: programmed change Δφ of every shifter (new − old), rad.
        elapsed_s: time t since the write ended, s; 0 returns Δφ itself.
        rise_time_constant_s: τ for Δφ > 0, s.
        fall_time_constant_s: τ for Δφ < 0, s; None uses the rise time constant.

    Returns:
        The residual of every shifter, same shape as ``phase_change_rad``. The shifters
        apply the new phases minus this residual at time t.

    Raises:
        ValueError: if ``elapsed_s`` is negative or not finite, or a time constant is
            not a positive finite number.
    """
    if not (math.isfinite(elapsed_s) and elapsed_s >= 0):
        raise ValueError(f"elapsed_s must be a finite number >= 0, got {elapsed_s!r}")
    if fall_time_constant_s is None:
        fall_time_constant_s = rise_time_constant_s
    for name, value in (
        ("rise_time_constant_s", rise_time_constant_s),
        ("fall_time_constant_s", fall_time_constant_s),
    ):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")

    change = np.asarray(phase_change_rad, dtype=float)
    tau = np.where(change >= 0, rise_time_constant_s, fall_time_constant_s)
    return change * np.exp(-elapsed_s / tau)
