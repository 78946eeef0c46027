"""Turning programmed phases into applied phases: DAC quantization, heater law, crosstalk.

Phases are wrapped into [0, 2π) before they are quantized. Two DAC domains are modelled:

- phase domain: 2^bits levels k·2π/2^bits, k = 0 … 2^bits − 1; a phase that rounds up to 2π
  lands on level 0;
- voltage domain, for thermo-optic shifters with φ = γV² (γ = π/V_π²): the DAC sets
  V = sqrt(φ/γ) on 2^bits levels spanning [0, V_max]; the applied phase is γ·V_q².

Rounding is to the nearest level, or stochastic (up with probability equal to the fractional
part), which is unbiased on average.
"""

from __future__ import annotations

import numpy as np

TWO_PI = 2 * np.pi


def wrap_phase(phases: np.ndarray) -> np.ndarray:
    """Wrap phases into [0, 2π) rad, never returning exactly 2π."""
    wrapped = np.mod(np.asarray(phases, dtype=float), TWO_PI)
    return np.where(wrapped >= TWO_PI, 0.0, wrapped)


def round_levels(
    values: np.ndarray, rounding: str, rng: np.random.Generator | None
) -> np.ndarray:
    """Round real level indices to integers, to the nearest or stochastically.

    Raises:
        ValueError: for an unknown rounding, or stochastic rounding without a generator.
    """
    if rounding == "nearest":
        return np.rint(values)
    if rounding == "stochastic":
        if rng is None:
            raise ValueError("stochastic rounding needs a random generator")
        lower = np.floor(values)
        return lower + (rng.random(np.shape(values)) < values - lower)
    raise ValueError(f"rounding {rounding!r} is unknown; choose nearest or stochastic")


def quantize_phase(
    phases: np.ndarray,
    bits: int | None,
    rounding: str = "nearest",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Wrap phases into [0, 2π) and round them onto 2^bits levels spaced 2π/2^bits apart.

    With ``bits`` None the phases are only wrapped.
    """
    wrapped = wrap_phase(phases)
    if bits is None:
        return wrapped
    n_levels = 2**bits
    step = TWO_PI / n_levels
    levels = np.mod(round_levels(wrapped / step, rounding, rng), n_levels)
    return levels * step


def heater_gain(v_pi: float) -> float:
    """Gain γ = π/V_π² in rad/V² of a thermo-optic shifter with φ = γV²."""
    return np.pi / v_pi**2


def quantize_voltage(
    phases: np.ndarray,
    bits: int | None,
    v_pi: float,
    v_max: float,
    rounding: str = "nearest",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Applied phase γ·V_q² of a thermo-optic shifter driven by a voltage DAC.

    The controller wraps the phase into [0, 2π), computes V = sqrt(φ/γ), clips it to
    [0, v_max] and rounds it onto 2^bits levels spanning [0, v_max]. With ``bits`` None the
    voltage is only clipped.

    Returns:
        The applied phases in rad (not wrapped: up to γ·v_max²).
    """
    gamma = heater_gain(v_pi)
    voltage = np.clip(np.sqrt(wrap_phase(phases) / gamma), 0.0, v_max)
    if bits is not None:
        step = v_max / (2**bits - 1)
        voltage = round_levels(voltage / step, rounding, rng) * step
    return gamma * voltage**2


def apply_crosstalk(
    phases: np.ndarray, neighbours: np.ndarray, coefficient: float
) -> np.ndarray:
    """Add thermal crosstalk: each shifter gains ``coefficient`` × each neighbour's phase.

    Heat from a thermo-optic shifter raises the phase of the shifters beside it in proportion
    to its own heater power, and so to its own phase (φ ∝ V² ∝ power). ``neighbours`` lists
    side-by-side pairs (see ``MeshLayout.shifter_neighbours``).
    """
    phases = np.asarray(phases, dtype=float)
    if coefficient == 0 or len(neighbours) == 0:
        return phases
    leaked = np.zeros_like(phases)
    first, second = neighbours[:, 0], neighbours[:, 1]
    np.add.at(leaked, first, phases[second])
    np.add.at(leaked, second, phases[first])
    return phases + coefficient * leaked
