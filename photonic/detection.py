"""Photodetector and ADC model for the phase-shifter tap monitors and the output detectors.

A reading goes through the steps of a real receiver. The guided power P, in units of the
launched power, becomes the optical power at the photodiode, ``P · launch_power_w ·
tap_fraction`` in W. The photodiode gives the photocurrent ``I = R · P_det + I_dark``, and
the transimpedance amplifier adds Gaussian noise of variance

    σ_I² = 2 · q · I · B   (shot noise, if enabled)   +   i_th² · B   (amplifier noise),

with q the elementary charge, B the detection bandwidth and i_th the input-referred current
noise density of the amplifier. An optional ADC rounds the current to the nearest of
``2**adc_bits`` codes spread evenly over ``[0, I_fs]`` and clips to that range. The reading is
then converted back to units of the launched power: the dark current is subtracted and the
result is divided by ``R · launch_power_w · tap_fraction``. Readings can therefore replace
true powers in the gradient formulas.

The simulation of Pai et al., Science 380, 398 (2023) reads monitors as ``P + sqrt(K·P)·n``
with n standard normal, directly in units of the launched power. ``DetectorConfig.pai2023(k)``
builds exactly that model, with every physical noise term and the ADC off. A config may also
combine both: a nonzero ``pai_k`` adds an independent Gaussian term of variance ``pai_k · P``
(units of the launched power) to the physical noise before the ADC, so the variances add.
For pure shot noise the physical model is itself a Pai model with
``K = 2·q·B / (R · launch_power_w · tap_fraction)``, which ``effective_k`` returns.

Default and typical values:

=========================  ===========  ==================  ===============================
field                      default      typical             source
=========================  ===========  ==================  ===============================
launch_power_w             1e-3 W       1e-4 – 1e-2 W       estimate (0 dBm laser)
tap_fraction               1.0          0.01 – 0.05 (taps)  estimate (1 for outputs)
responsivity_a_per_w       1.0 A/W      0.8 – 1.1 A/W       estimate (Ge-on-Si, 1550 nm)
bandwidth_hz               1e9 Hz       1e6 – 1e10 Hz       estimate
shot_noise                 off          on                  Schottky formula 2qIB
thermal_noise_a_per_rthz   0 A/√Hz      1e-12 – 2e-11 A/√Hz estimate (TIA input noise)
dark_current_a             0 A          1e-9 – 1e-7 A       estimate (Ge-on-Si at −1 V)
adc_bits                   None         8 – 14              estimate
adc_full_scale_w           None         launch · tap        None means launch · tap
pai_k                      0            0 – 0.01            estimate (model: Pai 2023)
=========================  ===========  ==================  ===============================

Every noise source and the ADC are off by default, so ``DetectorConfig()`` equals
``DetectorConfig.ideal()`` and reads true powers exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.constants import e as ELEMENTARY_CHARGE

MAX_ADC_BITS = 32


def _check_number(
    name: str,
    value: object,
    low: float,
    high: float = math.inf,
    *,
    low_inclusive: bool = True,
) -> None:
    """Raise ValueError unless ``value`` is a finite real number in the allowed range."""
    lower = f">= {low}" if low_inclusive else f"> {low}"
    upper = "" if high == math.inf else f" and <= {high}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"detector.{name} = {value!r} is invalid. It must be a number {lower}{upper}."
        )
    above_low = value >= low if low_inclusive else value > low
    if not (above_low and value <= high and math.isfinite(value)):
        raise ValueError(
            f"detector.{name} = {value!r} is out of range. It must be {lower}{upper}."
        )


@dataclass(frozen=True)
class DetectorConfig:
    """Photodetector, amplifier and ADC of one kind of power reading.

    Attributes:
        launch_power_w: optical power in W that corresponds to power 1.0 in the simulation's
            units (the launched power).
        tap_fraction: fraction of the guided power that reaches the photodiode, in (0, 1].
            1 for an output detector, a few percent for a monitor tap.
        responsivity_a_per_w: photodiode responsivity R in A/W.
        bandwidth_hz: detection bandwidth B in Hz. Shot and amplifier noise variances scale
            with B.
        shot_noise: whether to add shot noise, modelled as Gaussian with variance 2·q·I·B,
            where I includes the dark current. The Gaussian form holds when many
            photoelectrons arrive per 1/B, about I/(q·B) >> 1.
        thermal_noise_a_per_rthz: input-referred current noise density i_th of the
            transimpedance amplifier in A/√Hz. It adds variance i_th²·B independent of power.
        dark_current_a: photodiode dark current in A. It adds shot noise (if enabled) and
            shifts the ADC input, and it is subtracted from every reading.
        adc_bits: ADC resolution in bits, or None for no ADC (continuous readings).
        adc_full_scale_w: optical power in W at the photodiode that maps to the ADC's top
            code. None means ``launch_power_w · tap_fraction``, so that guided power 1.0
            reads full scale. Used only when ``adc_bits`` is set.
        pai_k: K of the Pai et al. (Science 2023) monitor model, in units of the launched
            power. A positive value adds an independent Gaussian term of variance
            ``pai_k · P`` to the physical noise, before the ADC.
    """

    launch_power_w: float = 1e-3
    tap_fraction: float = 1.0
    responsivity_a_per_w: float = 1.0
    bandwidth_hz: float = 1e9
    shot_noise: bool = False
    thermal_noise_a_per_rthz: float = 0.0
    dark_current_a: float = 0.0
    adc_bits: int | None = None
    adc_full_scale_w: float | None = None
    pai_k: float = 0.0

    def __post_init__(self) -> None:
        _check_number("launch_power_w", self.launch_power_w, 0.0, low_inclusive=False)
        _check_number("tap_fraction", self.tap_fraction, 0.0, 1.0, low_inclusive=False)
        _check_number(
            "responsivity_a_per_w", self.responsivity_a_per_w, 0.0, low_inclusive=False
        )
        _check_number("bandwidth_hz", self.bandwidth_hz, 0.0, low_inclusive=False)
        if not isinstance(self.shot_noise, bool):
            raise ValueError(
                f"detector.shot_noise = {self.shot_noise!r} is invalid. "
                "It must be True or False."
            )
        _check_number("thermal_noise_a_per_rthz", self.thermal_noise_a_per_rthz, 0.0)
        _check_number("dark_current_a", self.dark_current_a, 0.0)
        self._check_adc()
        _check_number("pai_k", self.pai_k, 0.0)

    def _check_adc(self) -> None:
        bits = self.adc_bits
        if bits is not None and (
            isinstance(bits, bool)
            or not isinstance(bits, int)
            or not 1 <= bits <= MAX_ADC_BITS
        ):
            raise ValueError(
                f"detector.adc_bits = {bits!r} is invalid. It must be an integer from 1 "
                f"to {MAX_ADC_BITS}, or None for no ADC."
            )
        if self.adc_full_scale_w is not None:
            _check_number(
                "adc_full_scale_w", self.adc_full_scale_w, 0.0, low_inclusive=False
            )

    @classmethod
    def ideal(cls) -> DetectorConfig:
        """Return a detector with every noise source off and no ADC: readings are exact."""
        return cls()

    @classmethod
    def pai2023(cls, k: float) -> DetectorConfig:
        """Return the monitor model ``P + sqrt(k·P)·n`` of Pai et al., Science 380, 398 (2023).

        Shot noise, amplifier noise, dark current and the ADC are off, so the reading is
        exactly that model in units of the launched power, whatever the other fields hold.

        Raises:
            ValueError: if k is negative or not finite.
        """
        return cls(pai_k=k)

    @property
    def current_per_unit_power_a(self) -> float:
        """Photocurrent in A per unit of launched power: ``R · launch_power_w · tap_fraction``."""
        return self.responsivity_a_per_w * self.launch_power_w * self.tap_fraction

    @property
    def full_scale_w(self) -> float:
        """Optical power in W at the photodiode that maps to the ADC's top code."""
        if self.adc_full_scale_w is None:
            return self.launch_power_w * self.tap_fraction
        return self.adc_full_scale_w

    @property
    def is_noiseless(self) -> bool:
        """Whether readings before the ADC equal the true powers exactly."""
        return (
            not self.shot_noise
            and self.thermal_noise_a_per_rthz == 0
            and self.pai_k == 0
        )


def _validated_power(power: np.ndarray | float) -> np.ndarray:
    """Return ``power`` as a float array, raising ValueError on NaN, inf or negative values."""
    power = np.array(power, dtype=float)
    bad = ~np.isfinite(power) | (power < 0)
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"power[{', '.join(map(str, index))}]" if index else "power"
        raise ValueError(
            f"{where} = {float(power[index])!r} is invalid. A true optical power must be "
            "finite and >= 0, in units of the launched power."
        )
    return power


def _noise_variance(power: np.ndarray, config: DetectorConfig) -> np.ndarray:
    """Variance of a reading before the ADC, in units of the launched power squared."""
    scale = config.current_per_unit_power_a
    bandwidth = config.bandwidth_hz

    current_variance = np.full_like(
        power, config.thermal_noise_a_per_rthz**2 * bandwidth
    )
    if config.shot_noise:
        current = scale * power + config.dark_current_a
        current_variance = (
            current_variance + 2 * ELEMENTARY_CHARGE * current * bandwidth
        )

    return current_variance / scale**2 + config.pai_k * power


def noise_std(power: np.ndarray | float, config: DetectorConfig) -> np.ndarray:
    """Compute the standard deviation of a reading before ADC quantization.

    The variance is ``(2·q·(R·P_det + I_dark)·B·[shot] + i_th²·B) / (R·launch·tap)² +
    pai_k·P``, with P the true power in units of the launched power and P_det = P · launch ·
    tap in W. The result is in units of the launched power and has the shape of ``power``.

    Raises:
        ValueError: if any power is negative, NaN or infinite.
    """
    power = _validated_power(power)
    return np.sqrt(_noise_variance(power, config))


def effective_k(config: DetectorConfig) -> float:
    """Compute K of the Pai model equivalent to the detector's shot noise alone.

    Shot noise of the signal current gives a reading variance of ``K · P`` in units of the
    launched power, with ``K = 2·q·B / (R · launch_power_w · tap_fraction)``. The value
    depends only on those four fields, whether or not ``config.shot_noise`` is enabled. It
    leaves out ``config.pai_k`` and the shot noise of the dark current, which adds a constant
    variance like the amplifier noise.
    """
    return 2 * ELEMENTARY_CHARGE * config.bandwidth_hz / config.current_per_unit_power_a


def adc_step(config: DetectorConfig) -> float | None:
    """Return the ADC step (one LSB) in units of the launched power, or None without an ADC.

    The ``2**adc_bits`` codes span ``[0, I_fs]`` with the top code at
    ``I_fs = R · full_scale_w + I_dark``, so one step is ``I_fs / (2**adc_bits − 1)`` in A.
    """
    if config.adc_bits is None:
        return None
    return (
        _full_scale_current_a(config)
        / (2**config.adc_bits - 1)
        / config.current_per_unit_power_a
    )


def _full_scale_current_a(config: DetectorConfig) -> float:
    return config.responsivity_a_per_w * config.full_scale_w + config.dark_current_a


def _quantize(reading: np.ndarray, config: DetectorConfig, bits: int) -> np.ndarray:
    """Round readings to the nearest ADC code in the current domain, clipped to [0, I_fs]."""
    scale = config.current_per_unit_power_a
    top_code = 2**bits - 1
    step_a = _full_scale_current_a(config) / top_code

    current = reading * scale + config.dark_current_a
    code = np.clip(np.rint(current / step_a), 0, top_code)
    return (code * step_a - config.dark_current_a) / scale


def detect(
    power: np.ndarray | float, config: DetectorConfig, rng: np.random.Generator
) -> np.ndarray:
    """Read true optical powers through the photodetector, amplifier and ADC.

    Each reading is ``P + noise_std(P) · n`` with n standard normal, one draw per reading
    from ``rng``. With an ADC, the photocurrent of that reading is then rounded to the
    nearest code and clipped to [0, full scale]. Readings are in units of the launched power,
    with the dark current subtracted, so they can replace true powers. A noiseless config
    draws nothing from ``rng``. With ``DetectorConfig.pai2023(k)`` the draws equal
    ``P + sqrt(k·P) · rng.standard_normal(P.shape)``.

    NOTE: readings are not clipped at zero power. Without an ADC a noisy reading of a dark
    detector can be negative, because the dark level is subtracted. With an ADC the lowest
    reading is ``−I_dark / (R · launch · tap)``.

    Args:
        power: true guided power at each detector, in units of the launched power.
        config: the detector model.
        rng: source of the noise draws.

    Returns:
        Readings with the shape of ``power``.

    Raises:
        ValueError: if any power is negative, NaN or infinite.
    """
    power = _validated_power(power)
    reading = power

    if not config.is_noiseless:
        std = np.sqrt(_noise_variance(power, config))
        reading = power + std * rng.standard_normal(power.shape)

    if config.adc_bits is not None:
        reading = _quantize(reading, config, config.adc_bits)

    return reading
