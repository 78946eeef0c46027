"""Durations, operation counts and energies of the hardware that runs one training step.

Durations are integer picoseconds, because the SimPy clock of ``simulator.step`` is an
integer count of picoseconds. Energies are in J, powers in W.

Sources for the cited values:

- Harris et al., "Efficient, compact and low loss thermo-optic phase shifter in
  silicon", Opt. Express 22, 10487 (2014): P_pi = 24.77 mW and a 3-dB modulation
  bandwidth of 130 kHz, so the thermal time constant is
  tau = 1 / (2 pi 130 kHz) = 1.22 us (values as in arXiv:1410.3616).
- Baehr-Jones et al., "Ultralow drive voltage silicon traveling-wave modulator",
  Opt. Express (2012): 200 fJ/bit RF energy at 20 Gb/s.

Every other default is an estimate and is marked as one next to the field.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TIMING_PRESETS", "TimingConfig", "timing_preset"]

# Field groups by allowed range, checked in TimingConfig.__post_init__.
_POSITIVE_INT_FIELDS = (
    "symbol_period_ps",
    "detector_integration_ps",
)
_NON_NEGATIVE_INT_FIELDS = (
    "settle_time_ps",
    "phase_dac_write_ps",
    "transit_time_ps",
    "monitor_readout_ps",
    "digital_op_ps",
    "ops_per_activation",
    "ops_per_interference_input",
    "ops_per_gradient_term",
    "ops_per_phase_update",
)
_NON_NEGATIVE_REAL_FIELDS = (
    "modulator_energy_j",
    "adc_energy_j",
    "phase_program_energy_j",
    "heater_power_w",
    "laser_power_w",
    "digital_energy_per_op_j",
)


@dataclass(frozen=True)
class TimingConfig:
    """Timing and energy parameters of the photonic hardware and its controller.

    The defaults describe a silicon chip with thermo-optic phase shifters
    (the ``"thermo-optic"`` preset).

    Raises:
        ValueError: if a field is outside its allowed range. The message names the
            field, the value and the range. Durations and operation counts must be
            integers, not ``bool``. ``symbol_period_ps`` and
            ``detector_integration_ps`` must be positive, and the other durations and
            counts non-negative. Energies and powers must be finite and
            non-negative, and ``laser_wall_plug_efficiency`` must lie in (0, 1].
    """

    settle_time_ps: int = 6_000_000
    """Phase-shifter settling time after a reprogram, ps. Five thermal time constants
    (5 x 1.2 us, residual error e^-5 = 0.7 %), tau from the 130 kHz bandwidth of
    Harris et al. (2014)."""

    phase_dac_write_ps: int = 1_000_000
    """Time for the phase DAC to write the new settings of one layer's shifters, ps.
    Estimate (a multichannel DAC loaded over a serial bus)."""

    symbol_period_ps: int = 100
    """Input modulation time per sample, ps: 10 GBd. Estimate for silicon modulators,
    which run at tens of GHz."""

    transit_time_ps: int = 50
    """Optical transit time through one mesh, ps. Estimate (a few mm of silicon
    waveguide at group index about 4)."""

    detector_integration_ps: int = 100
    """Detector integration time per sample at the output or input ports, ps.
    Estimate, matched to the symbol period."""

    monitor_readout_ps: int = 1_000_000
    """Time to read all phase-shifter monitor powers of one pass into the
    controller, ps. Estimate."""

    digital_op_ps: int = 100
    """Time per floating-point operation of the digital controller, ps. Estimate
    (10 GFLOP/s sustained)."""

    ops_per_activation: int = 4
    """Floating-point operations per mode and sample for the activation function.
    Its derivative in the backward pass is taken to cost the same. Estimate
    (|z|^2 costs 3)."""

    ops_per_interference_input: int = 2
    """Floating-point operations per mode and sample to form the interference
    input x - i conj(x_adj): one complex subtraction."""

    ops_per_gradient_term: int = 4
    """Floating-point operations per phase shifter and sample to form
    (P_sum - P_fwd - P_bwd) / 2 and accumulate it over the batch."""

    ops_per_phase_update: int = 2
    """Floating-point operations per phase shifter for the optimizer step (plain
    SGD: one multiply, one subtract)."""

    modulator_energy_j: float = 200e-15
    """Modulator drive energy per symbol and mode, J. Estimate from the 200 fJ/bit
    of Baehr-Jones et al. (2012), although analog amplitude and phase modulation may cost
    more."""

    adc_energy_j: float = 1e-12
    """Energy per ADC conversion, J. Estimate for an 8-bit converter at GS/s
    rates."""

    phase_program_energy_j: float = 100e-12
    """DAC and driver energy per phase shifter per reprogram, J. Estimate."""

    heater_power_w: float = 12.4e-3
    """Mean holding power per phase shifter, W. Heater power grows linearly with
    phase, so phases uniform on [0, pi] average P_pi / 2 = 24.8 mW / 2 (Harris et al.
    2014). Phases spread over [0, 2 pi) average P_pi, so this is a lower estimate
    for external phases."""

    laser_power_w: float = 10e-3
    """Optical output power of the laser, W. Estimate."""

    laser_wall_plug_efficiency: float = 0.2
    """Optical output power over electrical input power, in (0, 1]. Estimate."""

    digital_energy_per_op_j: float = 1e-12
    """Controller energy per floating-point operation, J. Estimate."""

    def __post_init__(self) -> None:
        for name in _POSITIVE_INT_FIELDS:
            self._check_int(name, minimum=1)
        for name in _NON_NEGATIVE_INT_FIELDS:
            self._check_int(name, minimum=0)
        for name in _NON_NEGATIVE_REAL_FIELDS:
            self._check_non_negative_real(name)

        efficiency = self.laser_wall_plug_efficiency
        if (
            isinstance(efficiency, bool)
            or not isinstance(efficiency, numbers.Real)
            or not 0.0 < efficiency <= 1.0
        ):
            raise ValueError(
                f"laser_wall_plug_efficiency must be a number in (0, 1], "
                f"got {efficiency!r}"
            )
        object.__setattr__(self, "laser_wall_plug_efficiency", float(efficiency))

    def _check_int(self, name: str, minimum: int) -> None:
        value = getattr(self, name)
        allowed = "a positive integer" if minimum == 1 else "a non-negative integer"
        is_integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not is_integer or value < minimum:
            raise ValueError(f"{name} must be {allowed}, got {value!r}")

        # Store a plain int so that numpy integers do not leak into JSON output.
        object.__setattr__(self, name, int(value))

    def _check_non_negative_real(self, name: str) -> None:
        value = getattr(self, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        object.__setattr__(self, name, float(value))

    @property
    def laser_electrical_power_w(self) -> float:
        """Electrical power drawn by the laser, W: optical power over efficiency."""
        return self.laser_power_w / self.laser_wall_plug_efficiency

    def to_dict(self) -> dict[str, int | float]:
        """Return the fields as a JSON-ready dict, field name to value."""
        return dataclasses.asdict(self)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TimingConfig:
        """Build a config from a mapping of field names to values.

        The optional key ``"preset"`` names the preset that supplies the fields
        not given, and defaults to ``"thermo-optic"``.

        Raises:
            ValueError: for a key that is neither a field nor ``"preset"`` (the
                message lists the allowed keys), for an unknown preset, and for a
                value outside its field's range.
        """
        allowed = field_names()
        for key in values:
            if key != "preset" and key not in allowed:
                raise ValueError(
                    f"unknown timing key {key!r}. Allowed keys are "
                    f"'preset', {', '.join(repr(name) for name in allowed)}"
                )

        base = timing_preset(values.get("preset", DEFAULT_PRESET))
        overrides = {key: value for key, value in values.items() if key != "preset"}
        return dataclasses.replace(base, **overrides)


def field_names() -> tuple[str, ...]:
    """Return the names of the ``TimingConfig`` fields in declaration order."""
    return tuple(field.name for field in dataclasses.fields(TimingConfig))


DEFAULT_PRESET = "thermo-optic"

TIMING_PRESETS: dict[str, TimingConfig] = {
    "thermo-optic": TimingConfig(),
    # Electro-optic shifters (carrier-depletion or Pockels) draw no holding power
    # and settle when their driver has charged them. The settle and DAC write
    # times are estimates: a nanosecond of RC settling and a parallel high-speed
    # DAC that loads one layer in 10 ns.
    "electro-optic": TimingConfig(
        settle_time_ps=1_000,
        phase_dac_write_ps=10_000,
        heater_power_w=0.0,
    ),
}


def timing_preset(name: str) -> TimingConfig:
    """Return the named preset from ``TIMING_PRESETS``.

    Raises:
        ValueError: if ``name`` is not a known preset. The message lists the
            known names.
    """
    try:
        return TIMING_PRESETS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(key) for key in TIMING_PRESETS)
        raise ValueError(
            f"unknown timing preset {name!r}. Known presets are {known}"
        ) from None
