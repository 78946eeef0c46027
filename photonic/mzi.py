"""Transfer matrices of a directional coupler and of a Mach–Zehnder interferometer.

Convention: an MZI on modes (k, k+1) applies the external phase φ to the top input arm, a
50:50 coupler, the internal phase θ on the top arm and a second coupler,

    T(θ, φ) = B · diag(e^{iθ}, 1) · B · diag(e^{iφ}, 1),   B = [[1, i], [i, 1]] / √2,

so θ = 0 is the cross state and θ = π the bar state. A coupler with splitting error ε is
[[cos(π/4+ε), i·sin(π/4+ε)], [i·sin(π/4+ε), cos(π/4+ε)]].
"""

from __future__ import annotations

import numpy as np

QUARTER_PI = np.pi / 4


def check_splitting_error(error: float | np.ndarray) -> None:
    """Raise ValueError unless every splitting error lies in the open interval (−π/4, π/4) rad."""
    values = np.asarray(error, dtype=float)
    bad = ~(np.abs(values) < QUARTER_PI)
    if np.any(bad):
        first = float(values[bad].flat[0])
        raise ValueError(
            f"coupler splitting error {first!r} rad is outside (-pi/4, pi/4); "
            "an error of ±pi/4 would make the coupler a pure bar or cross element"
        )


def splitting_error_from_ratio(cross_ratio: float | np.ndarray) -> np.ndarray:
    """Convert a power splitting ratio into a coupler splitting error ε in rad.

    The ratio is the fraction of power coupled to the cross port, sin²(π/4 + ε); an ideal
    50:50 coupler has ratio 0.5 and ε = 0.

    Raises:
        ValueError: if a ratio is not strictly between 0 and 1.
    """
    ratio = np.asarray(cross_ratio, dtype=float)
    if np.any(~((ratio > 0) & (ratio < 1))):
        raise ValueError(
            f"power splitting ratio {cross_ratio!r} is outside (0, 1); "
            "it is the fraction of power sent to the cross port"
        )
    return np.arcsin(np.sqrt(ratio)) - QUARTER_PI


def coupler(splitting_error: float = 0.0) -> np.ndarray:
    """Return the 2×2 transfer matrix of a directional coupler with splitting error ε (rad)."""
    check_splitting_error(splitting_error)
    angle = QUARTER_PI + splitting_error
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 1j * s], [1j * s, c]], dtype=np.complex128)


def mzi_transfer(
    theta: float,
    phi: float,
    splitting_errors: tuple[float, float] = (0.0, 0.0),
    loss_db: float = 0.0,
) -> np.ndarray:
    """Return the 2×2 transfer matrix T(θ, φ) of one MZI.

    Args:
        theta: internal phase θ in rad.
        phi: external phase φ in rad, on the top input arm.
        splitting_errors: splitting errors (ε_in, ε_out) in rad of the first and the second
            coupler.
        loss_db: insertion loss of the whole MZI in dB; it multiplies both output amplitudes
            by 10^(−loss_db/20).

    Raises:
        ValueError: if a splitting error is outside (−π/4, π/4) or the loss is negative.
    """
    if not loss_db >= 0:
        raise ValueError(
            f"insertion loss {loss_db!r} dB is invalid; it must be >= 0 dB"
        )
    first = coupler(splitting_errors[0])
    second = coupler(splitting_errors[1])
    internal = np.diag([np.exp(1j * theta), 1.0])
    external = np.diag([np.exp(1j * phi), 1.0])
    amplitude = 10 ** (-loss_db / 20)
    return amplitude * (second @ internal @ first @ external)
