"""Hardware error model of a photonic chip, and a programmed chip that realises devices.

Error sources fall into four groups, each a frozen dataclass:

- static errors, drawn once per chip from its seed and shared by every pass: coupler splitting
  errors, phase-shifter offsets and per-MZI insertion loss;
- programming: quantization of the programmed phases by the phase DAC;
- per-pass noise, drawn afresh for every optical pass: phase noise;
- detection: monitor power noise ``P + sqrt(K·P)·n`` (Pai et al., Science 2023, simulation).

Every source is off by default, so ``HardwareConfig()`` is the ideal device.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from photonic.mesh import MeshLayout, RealisedMesh
from photonic.mzi import QUARTER_PI

logger = logging.getLogger(__name__)

TWO_PI = 2 * np.pi


def _check_finite_range(
    owner: str, name: str, value: float, low: float, high: float = math.inf
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{owner}.{name} = {value!r} is invalid; it must be a number")
    if not (low <= value <= high) or math.isnan(value):
        upper = "" if high == math.inf else f" and <= {high}"
        raise ValueError(
            f"{owner}.{name} = {value!r} is out of range; it must be >= {low}{upper}"
        )


@dataclass(frozen=True)
class StaticErrors:
    """Fabrication errors drawn once per chip from its seed.

    Attributes:
        coupler_error_std: standard deviation in rad of the splitting error ε of every coupler
            (two per MZI, independent). Draws are kept inside (−π/4, π/4).
        phase_offset_std: standard deviation in rad of a fixed offset added to every phase
            shifter (θ, φ and output phases).
        mzi_loss_db: mean insertion loss of one MZI in dB.
        mzi_loss_db_std: spread (standard deviation) of the per-MZI insertion loss in dB;
            draws below 0 dB are clipped to 0 so no MZI has gain.
    """

    coupler_error_std: float = 0.0
    phase_offset_std: float = 0.0
    mzi_loss_db: float = 0.0
    mzi_loss_db_std: float = 0.0

    def __post_init__(self) -> None:
        _check_finite_range(
            "static", "coupler_error_std", self.coupler_error_std, 0.0, QUARTER_PI
        )
        _check_finite_range("static", "phase_offset_std", self.phase_offset_std, 0.0)
        _check_finite_range("static", "mzi_loss_db", self.mzi_loss_db, 0.0)
        _check_finite_range("static", "mzi_loss_db_std", self.mzi_loss_db_std, 0.0)


@dataclass(frozen=True)
class Programming:
    """Phase DAC settings that turn programmed phases into applied phases.

    Attributes:
        phase_bits: bit depth of the phase DAC; phases are wrapped into [0, 2π) and rounded to
            the nearest of 2^bits levels spaced 2π/2^bits apart. None means continuous phases.
    """

    phase_bits: int | None = None

    def __post_init__(self) -> None:
        bits = self.phase_bits
        if bits is None:
            return
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 32:
            raise ValueError(
                f"programming.phase_bits = {bits!r} is invalid; it must be an integer "
                "from 1 to 32, or omitted for continuous phases"
            )


@dataclass(frozen=True)
class PassNoise:
    """Noise drawn afresh for every optical pass (forward, adjoint or interference).

    Attributes:
        phase_noise_std: standard deviation in rad of a phase error added to every phase
            shifter for the duration of one pass.
    """

    phase_noise_std: float = 0.0

    def __post_init__(self) -> None:
        _check_finite_range("pass_noise", "phase_noise_std", self.phase_noise_std, 0.0)


@dataclass(frozen=True)
class Detection:
    """Power monitors read in every pass.

    Attributes:
        monitor_noise_k: K in the monitor reading ``P + sqrt(K·P)·n``, n standard normal,
            P in units of the launched power (Pai et al., Science 2023, simulation).
    """

    monitor_noise_k: float = 0.0

    def __post_init__(self) -> None:
        _check_finite_range("detection", "monitor_noise_k", self.monitor_noise_k, 0.0)


_SECTIONS: dict[str, type] = {
    "static": StaticErrors,
    "programming": Programming,
    "pass_noise": PassNoise,
    "detection": Detection,
}


def _section_from_mapping(section: str, values: Mapping[str, Any]) -> Any:
    cls = _SECTIONS[section]
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in hardware section [{section}]; "
            f"allowed keys: {', '.join(sorted(allowed))}"
        )
    return cls(**values)


@dataclass(frozen=True)
class HardwareConfig:
    """All error sources of a chip, one dataclass per group; the default is ideal."""

    static: StaticErrors = field(default_factory=StaticErrors)
    programming: Programming = field(default_factory=Programming)
    pass_noise: PassNoise = field(default_factory=PassNoise)
    detection: Detection = field(default_factory=Detection)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> HardwareConfig:
        """Build a config from nested mappings, e.g. parsed TOML.

        A ``preset`` key names the starting point; the sections override its fields.

        Raises:
            ValueError: for an unknown section, key or preset, or a value out of range.
        """
        values = dict(values)
        base = hardware_preset(values.pop("preset", "ideal"))
        unknown = sorted(set(values) - set(_SECTIONS))
        if unknown:
            raise ValueError(
                f"unknown hardware section {unknown[0]!r}; allowed: preset, "
                + ", ".join(_SECTIONS)
            )
        parts = {}
        for name in _SECTIONS:
            current = {
                f.name: getattr(getattr(base, name), f.name)
                for f in fields(_SECTIONS[name])
            }
            section = values.get(name, {})
            if not isinstance(section, Mapping):
                raise ValueError(
                    f"hardware section [{name}] must be a table, got {section!r}"
                )
            current.update(section)
            parts[name] = _section_from_mapping(name, current)
        return cls(**parts)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return the config as nested plain dicts (for JSON and TOML)."""
        return {
            name: {
                f.name: getattr(getattr(self, name), f.name)
                for f in fields(_SECTIONS[name])
            }
            for name in _SECTIONS
        }


# Presets. Values and their sources:
# - coupler splitting ratio spread of fabricated splitters is 2–6 % std in power; a ratio
#   spread σ_r around 0.5 is an angle spread σ_r/2 rad (d sin²(π/4+ε)/dε = 1 at ε = 0), so
#   0.02 rad is a 4 % ratio spread;
# - per-MZI insertion loss 0.2–0.3 dB with 0.05 dB spread (simphox defaults; Pai et al. 2023
#   simulation);
# - 8-bit phase DAC (L2ight configuration defaults);
# - monitor noise K = 0.01 and phase errors of a few hundredths of a rad as in the noise grid
#   of the Pai et al. 2023 simulation.
HARDWARE_PRESETS: dict[str, HardwareConfig] = {
    "ideal": HardwareConfig(),
    "bench": HardwareConfig(
        static=StaticErrors(
            coupler_error_std=0.02,
            phase_offset_std=0.05,
            mzi_loss_db=0.25,
            mzi_loss_db_std=0.05,
        ),
        programming=Programming(phase_bits=8),
        pass_noise=PassNoise(phase_noise_std=0.01),
        detection=Detection(monitor_noise_k=0.005),
    ),
}


def hardware_preset(name: str) -> HardwareConfig:
    """Return the named hardware preset.

    Raises:
        ValueError: if no preset has that name.
    """
    try:
        return HARDWARE_PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"hardware preset {name!r} does not exist; known presets: "
            + ", ".join(HARDWARE_PRESETS)
        ) from None


def quantize_phase(phases: np.ndarray, bits: int | None) -> np.ndarray:
    """Wrap phases into [0, 2π) and round them to the nearest of 2^bits levels.

    Levels are k·2π/2^bits for k = 0 … 2^bits − 1; a phase that rounds up to 2π lands on level
    0. With ``bits`` None the phases are only wrapped.
    """
    wrapped = np.mod(np.asarray(phases, dtype=float), TWO_PI)
    if bits is None:
        return wrapped
    n_levels = 2**bits
    step = TWO_PI / n_levels
    levels = np.mod(np.rint(wrapped / step), n_levels)
    return levels * step


def read_monitors(
    power: np.ndarray, detection: Detection, rng: np.random.Generator
) -> np.ndarray:
    """Read power monitors: ``P + sqrt(K·P)·n`` with n standard normal, one draw per reading.

    NOTE: readings are not clipped at zero; a noisy reading of a dark monitor can be negative,
    as a detector with a subtracted dark level reads.
    """
    power = np.asarray(power, dtype=float)
    k = detection.monitor_noise_k
    if k == 0:
        return power
    return power + np.sqrt(k * np.clip(power, 0, None)) * rng.standard_normal(
        power.shape
    )


class Chip:
    """A programmable mesh chip: layout, error model, static errors and programmed phases.

    The static errors are drawn once from ``seed``; per-pass noise and detection noise come
    from a separate stream of the same seed, so static draws do not depend on how many passes
    ran.

    Args:
        layout: positions of the MZIs.
        hardware: the error model.
        seed: seed of the chip; the same seed gives the same chip and the same noise sequence.
        phases: programmed phases (θ, φ, ψ) in rad; uniform in [0, 2π) from the seed if None.
    """

    def __init__(
        self,
        layout: MeshLayout,
        hardware: HardwareConfig,
        seed: int | np.random.SeedSequence,
        phases: np.ndarray | None = None,
    ) -> None:
        self.layout = layout
        self.hardware = hardware
        sequence = (
            seed
            if isinstance(seed, np.random.SeedSequence)
            else np.random.SeedSequence(seed)
        )
        static_seq, noise_seq, init_seq = sequence.spawn(3)
        self.noise_rng = np.random.default_rng(noise_seq)
        self._draw_static(np.random.default_rng(static_seq))
        if phases is None:
            phases = np.random.default_rng(init_seq).uniform(0, TWO_PI, layout.n_phases)
        self.phases = phases

    def _draw_static(self, rng: np.random.Generator) -> None:
        m = self.layout.n_mzis
        static = self.hardware.static
        # Every quantity is drawn even when its spread is zero, so the other draws of a chip
        # do not change when one source is switched off.
        coupler = rng.standard_normal((2, m)) * static.coupler_error_std
        limit = QUARTER_PI * (1 - 1e-6)
        self.coupler_angles = QUARTER_PI + np.clip(coupler, -limit, limit)
        self.phase_offsets = (
            rng.standard_normal(self.layout.n_phases) * static.phase_offset_std
        )
        loss_db = static.mzi_loss_db + rng.standard_normal(m) * static.mzi_loss_db_std
        self.mzi_loss_db = np.clip(loss_db, 0.0, None)
        self.mzi_amplitude = 10 ** (-self.mzi_loss_db / 20)

    @property
    def phases(self) -> np.ndarray:
        """Programmed phases (θ, φ, ψ) in rad, as stored by the controller (not quantized)."""
        return self._phases

    @phases.setter
    def phases(self, value: np.ndarray) -> None:
        value = np.array(value, dtype=float)
        self.layout.split_phases(value)
        if not np.all(np.isfinite(value)):
            raise ValueError("programmed phases contain NaN or infinity")
        self._phases = value

    def applied_phases(self) -> np.ndarray:
        """Phases the shifters apply with no per-pass noise: quantized, plus static offsets."""
        return (
            quantize_phase(self._phases, self.hardware.programming.phase_bits)
            + self.phase_offsets
        )

    def device(self) -> RealisedMesh:
        """Return the realised device with static errors and quantization, without per-pass noise."""
        return RealisedMesh(
            self.layout, self.applied_phases(), self.coupler_angles, self.mzi_amplitude
        )

    def pass_device(self) -> RealisedMesh:
        """Return the realised device for one optical pass, with its phase noise drawn afresh."""
        phases = self.applied_phases()
        std = self.hardware.pass_noise.phase_noise_std
        if std > 0:
            phases = phases + std * self.noise_rng.standard_normal(phases.shape)
        return RealisedMesh(
            self.layout, phases, self.coupler_angles, self.mzi_amplitude
        )

    def read_monitors(self, power: np.ndarray) -> np.ndarray:
        """Return monitor readings of the true powers ``power`` with this chip's detection noise."""
        return read_monitors(power, self.hardware.detection, self.noise_rng)
