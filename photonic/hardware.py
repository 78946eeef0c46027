"""Hardware error model of a photonic chip, and a programmed chip that realises devices.

The configuration names the pass or stage where each error applies, one frozen dataclass
per group:

- ``static``: fabrication errors drawn once per chip from its seed and shared by every pass
  (coupler splitting errors, phase-shifter offsets, insertion loss per MZI with its spread and
  arm imbalance, waveguide loss per column, heater gain spread);
- ``programming``: the update of the phases by the phase DAC (quantization in phase or in
  voltage, rounding, thermal crosstalk);
- ``drift``: slow drift of every shifter on the simulated clock;
- ``forward``, ``adjoint``, ``interference``: what each optical pass adds (phase noise drawn
  afresh for the pass, input modulator and coherent-detection errors, monitor and output
  photodetectors).

Every source is off by default, so ``HardwareConfig()`` is the ideal device.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

import numpy as np

from photonic.detection import DetectorConfig, detect
from photonic.drift import DRIFT_MODELS, PhaseDrift
from photonic.initialization import initial_phases
from photonic.mesh import MeshLayout, RealisedMesh
from photonic.mzi import QUARTER_PI
from photonic.programming import apply_crosstalk, quantize_phase, quantize_voltage

logger = logging.getLogger(__name__)

TWO_PI = 2 * np.pi
PASS_NAMES = ("forward", "adjoint", "interference")


def _check_range(
    owner: str,
    name: str,
    value: Any,
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ValueError unless ``value`` is a finite number in the given interval."""
    if high == math.inf:
        allowed = f"{'>' if low_open else '>='} {low:g}"
    else:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        allowed = f"in {left}{low:g}, {high:g}{right}"
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    inside = (
        is_number
        and not math.isnan(value)
        and (value > low if low_open else value >= low)
        and (value < high if high_open else value <= high)
    )
    if not inside:
        raise ValueError(
            f"{owner}.{name} = {value!r} is out of range; it must be a number {allowed}"
        )


@dataclass(frozen=True)
class StaticErrors:
    """Fabrication errors drawn once per chip from its seed and shared by every pass.

    The splitting error of a coupler can be given as an angle or as a power ratio. The cross
    ratio of a coupler with error ε is r = sin²(π/4 + ε), so dr/dε = cos 2ε = 1 at ε = 0 and
    a small ratio spread σ_r equals an angle spread of σ_r rad; draws of the ratio are
    converted exactly with ε = arcsin(√r) − π/4.

    Attributes:
        coupler_error_mean: systematic splitting error ε of every coupler in rad, in
            (−π/4, π/4).
        coupler_error_std: spread of ε in rad (two independent couplers per MZI).
        coupler_ratio_std: spread of the cross power ratio around 0.5, as a fraction; use
            this or ``coupler_error_std``, not both.
        phase_offset_std: spread in rad of a fixed offset of every phase shifter.
        mzi_loss_db: mean insertion loss of one MZI in dB, placed in its two internal arms.
        mzi_loss_db_std: spread of the per-MZI insertion loss in dB; draws below 0 dB are
            clipped to 0, so no MZI has gain.
        arm_imbalance_db_std: spread in dB of the loss difference between the two internal
            arms of an MZI; each arm's loss is clipped at 0 dB.
        waveguide_loss_db: propagation loss in dB of every waveguide across one column, idle
            waveguides included.
        heater_gain_std: relative spread σ_γ/γ of the heater gain; an applied phase is
            scaled by 1 + σ_γ·n for its shifter.
    """

    coupler_error_mean: float = 0.0
    coupler_error_std: float = 0.0
    coupler_ratio_std: float = 0.0
    phase_offset_std: float = 0.0
    mzi_loss_db: float = 0.0
    mzi_loss_db_std: float = 0.0
    arm_imbalance_db_std: float = 0.0
    waveguide_loss_db: float = 0.0
    heater_gain_std: float = 0.0

    def __post_init__(self) -> None:
        _check_range(
            "static",
            "coupler_error_mean",
            self.coupler_error_mean,
            -QUARTER_PI,
            QUARTER_PI,
            low_open=True,
            high_open=True,
        )
        _check_range(
            "static", "coupler_error_std", self.coupler_error_std, 0.0, QUARTER_PI
        )
        _check_range("static", "coupler_ratio_std", self.coupler_ratio_std, 0.0, 0.5)
        if self.coupler_error_std > 0 and self.coupler_ratio_std > 0:
            raise ValueError(
                "static.coupler_error_std and static.coupler_ratio_std are both set; give "
                "the coupler spread as an angle or as a ratio, not both"
            )
        for name in (
            "phase_offset_std",
            "mzi_loss_db",
            "mzi_loss_db_std",
            "arm_imbalance_db_std",
            "waveguide_loss_db",
        ):
            _check_range("static", name, getattr(self, name), 0.0)
        _check_range("static", "heater_gain_std", self.heater_gain_std, 0.0, 1.0)


PHASE_DOMAINS = ("phase", "voltage")
ROUNDINGS = ("nearest", "stochastic")


@dataclass(frozen=True)
class Programming:
    """Phase update: the DAC, its rounding and thermal crosstalk, applied at every update.

    Attributes:
        phase_bits: DAC resolution in bits, or None for continuous phases.
        domain: "phase" (levels spaced 2π/2^bits) or "voltage" (thermo-optic φ = γV², levels
            spaced V_max/(2^bits − 1) in voltage).
        v_pi: voltage of a π phase shift in V (voltage domain), γ = π/V_π².
        v_max: top of the DAC's voltage range in V; None means √2·V_π, which reaches 2π.
        rounding: "nearest" or "stochastic". Stochastic rounding is unbiased on average
            in the DAC's own domain. In the voltage domain the applied phase γV² comes out
            high on average by γ·ΔV²·p(1 − p) ≤ γ·ΔV²/4 (about 2e-5 rad at 8 bits).
        crosstalk: thermal crosstalk coefficient c in [0, 1): each shifter gains c times the
            phase of each side-by-side shifter.
        settling_time_constant_s: time constant τ of the shifters' first-order response to
            a new setting, in s; a pass at time t after programming sees the residual
            (φ_new − φ_old)·e^{−t/τ}. 0 settles at once. Only ``Chip.program`` with a time
            starts a settling transient.
    """

    phase_bits: int | None = None
    domain: str = "phase"
    v_pi: float = 4.36
    v_max: float | None = None
    rounding: str = "nearest"
    crosstalk: float = 0.0
    settling_time_constant_s: float = 0.0

    def __post_init__(self) -> None:
        bits = self.phase_bits
        if bits is not None and (
            isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 32
        ):
            raise ValueError(
                f"programming.phase_bits = {bits!r} is invalid; it must be an integer "
                "from 1 to 32, or omitted for continuous phases"
            )
        if self.domain not in PHASE_DOMAINS:
            raise ValueError(
                f"programming.domain = {self.domain!r} is invalid; choose phase or voltage"
            )
        if self.rounding not in ROUNDINGS:
            raise ValueError(
                f"programming.rounding = {self.rounding!r} is invalid; "
                "choose nearest or stochastic"
            )
        _check_range("programming", "v_pi", self.v_pi, 0.0, low_open=True)
        if self.v_max is not None:
            _check_range("programming", "v_max", self.v_max, 0.0, low_open=True)
        _check_range(
            "programming", "crosstalk", self.crosstalk, 0.0, 1.0, high_open=True
        )
        _check_range(
            "programming",
            "settling_time_constant_s",
            self.settling_time_constant_s,
            0.0,
        )

    @property
    def voltage_range(self) -> float:
        """Top of the voltage range in V."""
        return math.sqrt(2) * self.v_pi if self.v_max is None else self.v_max


@dataclass(frozen=True)
class Drift:
    """Slow drift of every phase shifter on the simulated clock.

    Attributes:
        model: "none", "random-walk" or "ornstein-uhlenbeck".
        std: σ in rad/√s for the random walk, or the stationary standard deviation in rad of
            the Ornstein–Uhlenbeck process.
        correlation_time_s: correlation time τ in s of the Ornstein–Uhlenbeck process.
    """

    model: str = "none"
    std: float = 0.0
    correlation_time_s: float = 1.0

    def __post_init__(self) -> None:
        if self.model not in DRIFT_MODELS:
            raise ValueError(
                f"drift.model = {self.model!r} is invalid; choose one of "
                + ", ".join(DRIFT_MODELS)
            )
        _check_range("drift", "std", self.std, 0.0)
        _check_range(
            "drift", "correlation_time_s", self.correlation_time_s, 0.0, low_open=True
        )


@dataclass(frozen=True)
class PassErrors:
    """Errors one optical pass adds, drawn afresh for every pass.

    Launched and measured vectors follow the model of the Pai et al. (Science 2023)
    simulation: ``x·(1 + a·n1)·exp(i·π·p·n2)`` with n1, n2 standard normal per entry.

    Attributes:
        phase_noise_std: phase error in rad added to every shifter for this pass.
        input_amplitude_error: a of the input modulators.
        input_phase_error: p of the input modulators (a phase error of π·p rad std).
        output_amplitude_error: a of the coherent detection of the fields leaving the mesh.
        output_phase_error: p of that coherent detection.
        monitor: photodetectors of the phase-shifter tap monitors.
        output_detector: photodetectors of the coherent receivers at the ports.
    """

    phase_noise_std: float = 0.0
    input_amplitude_error: float = 0.0
    input_phase_error: float = 0.0
    output_amplitude_error: float = 0.0
    output_phase_error: float = 0.0
    monitor: DetectorConfig = field(default_factory=DetectorConfig.ideal)
    output_detector: DetectorConfig = field(default_factory=DetectorConfig.ideal)

    def __post_init__(self) -> None:
        for name in (
            "phase_noise_std",
            "input_amplitude_error",
            "input_phase_error",
            "output_amplitude_error",
            "output_phase_error",
        ):
            _check_range("pass", name, getattr(self, name), 0.0)


_SECTIONS: dict[str, type] = {
    "static": StaticErrors,
    "programming": Programming,
    "drift": Drift,
    "forward": PassErrors,
    "adjoint": PassErrors,
    "interference": PassErrors,
}
_DETECTOR_FIELDS = ("monitor", "output_detector")


def _build(section: str, cls: type, values: Mapping[str, Any]) -> Any:
    """Build one section from a mapping, rejecting unknown keys by name."""
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in hardware section [{section}]; "
            f"allowed keys: {', '.join(sorted(allowed))}"
        )
    return cls(**values)


def _table(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"hardware section [{name}] must be a table, got {value!r}")
    return value


def _as_dict(section: Any) -> dict[str, Any]:
    out = {}
    for f in fields(section):
        value = getattr(section, f.name)
        if isinstance(value, DetectorConfig):
            value = {g.name: getattr(value, g.name) for g in fields(value)}
        out[f.name] = value
    return out


@dataclass(frozen=True)
class HardwareConfig:
    """All error sources of a chip, one dataclass per group or pass; the default is ideal."""

    static: StaticErrors = field(default_factory=StaticErrors)
    programming: Programming = field(default_factory=Programming)
    drift: Drift = field(default_factory=Drift)
    forward: PassErrors = field(default_factory=PassErrors)
    adjoint: PassErrors = field(default_factory=PassErrors)
    interference: PassErrors = field(default_factory=PassErrors)

    def pass_errors(self, name: str) -> PassErrors:
        """Return the errors of the pass called ``name`` (forward, adjoint or interference)."""
        if name not in PASS_NAMES:
            raise ValueError(
                f"pass {name!r} is unknown; choose one of {', '.join(PASS_NAMES)}"
            )
        return getattr(self, name)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> HardwareConfig:
        """Build a config from nested mappings, e.g. parsed TOML.

        ``preset`` names the starting point (default "ideal"). A ``passes`` table sets
        fields of all three passes at once; the ``forward``, ``adjoint`` and
        ``interference`` tables then override single passes. ``monitor`` and
        ``output_detector`` are sub-tables of a pass.

        Raises:
            ValueError: for an unknown section, key or preset, or a value out of range.
        """
        values = dict(values)
        base = hardware_preset(values.pop("preset", "ideal"))
        allowed = ["preset", "passes", *_SECTIONS]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ValueError(
                f"unknown hardware section {unknown[0]!r}; allowed: {', '.join(allowed)}"
            )
        shared = dict(_table("passes", values.get("passes", {})))
        parts = {}
        for name, section_cls in _SECTIONS.items():
            current = _as_dict(getattr(base, name))
            overrides = dict(_table(name, values.get(name, {})))
            if section_cls is PassErrors:
                overrides = _merge(shared, overrides)
            for key in _DETECTOR_FIELDS:
                if section_cls is PassErrors and key in overrides:
                    detector = _merge(
                        current[key], _table(f"{name}.{key}", overrides[key])
                    )
                    overrides[key] = _build(f"{name}.{key}", DetectorConfig, detector)
            if section_cls is PassErrors:
                for key in _DETECTOR_FIELDS:
                    if isinstance(current[key], dict):
                        current[key] = DetectorConfig(**current[key])
            current.update(overrides)
            parts[name] = _build(name, section_cls, current)
        return cls(**parts)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return the config as nested plain dicts (for JSON and TOML)."""
        return {name: _as_dict(getattr(self, name)) for name in _SECTIONS}


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Merge two mappings one level deep, so sub-tables are merged rather than replaced."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _all_passes(**values: Any) -> dict[str, PassErrors]:
    errors = PassErrors(**values)
    return {"forward": errors, "adjoint": errors, "interference": errors}


# Named presets. Their values and sources are listed in docs/hardware.md.
HARDWARE_PRESETS: dict[str, HardwareConfig] = {
    "ideal": HardwareConfig(),
    # The noise model of the Pai et al., Science 380, 398 (2023) simulation has I/O
    # amplitude and phase errors up to 0.05 and monitor noise K up to 0.02; this preset
    # takes mid values. It adds loss of 0.25 dB per MZI with 0.05 dB spread, a 2 % coupler
    # ratio spread and an 8-bit DAC.
    "bench": HardwareConfig(
        static=StaticErrors(
            coupler_ratio_std=0.02,
            phase_offset_std=0.05,
            mzi_loss_db=0.25,
            mzi_loss_db_std=0.05,
        ),
        programming=Programming(phase_bits=8),
        **_all_passes(
            phase_noise_std=0.01,
            input_amplitude_error=0.01,
            input_phase_error=0.01,
            output_amplitude_error=0.01,
            output_phase_error=0.01,
            monitor=DetectorConfig.pai2023(0.005),
        ),
    ),
    # A silicon chip with thermo-optic shifters: φ = γV² with V_π = 4.36 V on an 8-bit
    # voltage DAC, heater gain spread 0.002 and nearest-neighbour crosstalk 0.005 (L2ight /
    # pytorch-onn defaults), 0.23 dB loss per MZI and a thermal time constant of 1.22 µs
    # from the 130 kHz bandwidth (Harris et al., Opt. Express 2014),
    # 4 % coupler ratio spread (fabricated splitters: 2–6 %), on-chip germanium monitors
    # with shot and amplifier noise and a 10-bit ADC (estimates).
    "thermo-optic-si": HardwareConfig(
        static=StaticErrors(
            coupler_ratio_std=0.04,
            phase_offset_std=0.1,
            mzi_loss_db=0.23,
            mzi_loss_db_std=0.05,
            arm_imbalance_db_std=0.02,
            waveguide_loss_db=0.01,
            heater_gain_std=0.002,
        ),
        programming=Programming(
            phase_bits=8,
            domain="voltage",
            v_pi=4.36,
            crosstalk=0.005,
            settling_time_constant_s=1.22e-6,
        ),
        drift=Drift(model="ornstein-uhlenbeck", std=0.005, correlation_time_s=10.0),
        **_all_passes(
            phase_noise_std=0.002,
            input_amplitude_error=0.005,
            input_phase_error=0.005,
            output_amplitude_error=0.005,
            output_phase_error=0.005,
            monitor=DetectorConfig(
                launch_power_w=1e-3,
                tap_fraction=0.02,
                responsivity_a_per_w=1.0,
                bandwidth_hz=1e6,
                shot_noise=True,
                thermal_noise_a_per_rthz=1e-12,
                dark_current_a=1e-9,
                adc_bits=10,
            ),
            output_detector=DetectorConfig(
                launch_power_w=1e-3,
                responsivity_a_per_w=1.0,
                bandwidth_hz=1e9,
                shot_noise=True,
                thermal_noise_a_per_rthz=1e-11,
                adc_bits=10,
            ),
        ),
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


def _check_time(time_s: object) -> None:
    """Raise ValueError unless ``time_s`` is None or a finite number of seconds."""
    if time_s is None:
        return
    if (
        isinstance(time_s, bool)
        or not isinstance(time_s, (int, float, np.integer, np.floating))
        or not math.isfinite(time_s)
    ):
        raise ValueError(
            f"time_s {time_s!r} is invalid; it must be a finite number of seconds or None"
        )


def _perturb(
    vectors: np.ndarray, amplitude: float, phase: float, rng: np.random.Generator
) -> np.ndarray:
    """Apply ``x·(1 + a·n1)·exp(i·π·p·n2)`` entry by entry."""
    if amplitude == 0 and phase == 0:
        return vectors
    gain = 1 + amplitude * rng.standard_normal(vectors.shape)
    rotation = np.exp(1j * np.pi * phase * rng.standard_normal(vectors.shape))
    return vectors * gain * rotation


class Chip:
    """A programmable mesh chip: layout, error model, static errors and programmed phases.

    Random streams are spawned from ``seed``: static errors, programming (stochastic
    rounding), per-pass noise, drift and the initial phases, so a chip's static draws do not
    depend on how many passes ran or which sources are on.

    Args:
        layout: positions of the MZIs.
        hardware: the error model.
        seed: seed of the chip; the same seed gives the same chip and the same noise.
        phases: programmed phases (θ, φ, ψ) in rad; drawn from the seed by
            ``initialization`` if None.
        initialization: "uniform" or "haar" (see ``photonic.initialization``).
    """

    def __init__(
        self,
        layout: MeshLayout,
        hardware: HardwareConfig,
        seed: int | np.random.SeedSequence,
        phases: np.ndarray | None = None,
        initialization: str = "uniform",
    ) -> None:
        self.layout = layout
        self.hardware = hardware
        sequence = (
            seed
            if isinstance(seed, np.random.SeedSequence)
            else np.random.SeedSequence(seed)
        )
        static_seq, program_seq, noise_seq, drift_seq, init_seq = sequence.spawn(5)
        self.program_rng = np.random.default_rng(program_seq)
        self.noise_rng = np.random.default_rng(noise_seq)
        self._draw_static(np.random.default_rng(static_seq))
        self._neighbours = layout.shifter_neighbours()
        drift = hardware.drift
        self.drift = PhaseDrift(
            layout.n_phases,
            drift.model,
            drift.std,
            drift.correlation_time_s,
            np.random.default_rng(drift_seq),
        )
        self._settling_from: tuple[np.ndarray, float] | None = None
        self._last_device: RealisedMesh | None = None
        if phases is None:
            phases = initial_phases(
                initialization, layout, np.random.default_rng(init_seq)
            )
        self.phases = phases

    @property
    def n_inputs(self) -> int:
        """Number of input ports."""
        return self.layout.n_modes

    @property
    def n_outputs(self) -> int:
        """Number of output ports."""
        return self.layout.n_modes

    @property
    def n_phases(self) -> int:
        """Number of programmable phases."""
        return self.layout.n_phases

    @property
    def output_phase_indices(self) -> np.ndarray:
        """Indices of the output phases ψ in the phase vector."""
        return np.arange(2 * self.layout.n_mzis, self.layout.n_phases)

    def _draw_static(self, rng: np.random.Generator) -> None:
        m, layout = self.layout.n_mzis, self.layout
        static = self.hardware.static
        # Every quantity is drawn even when its spread is zero, so the other draws of a chip
        # do not change when one source is switched off.
        normal_coupler = rng.standard_normal((2, m))
        if static.coupler_ratio_std > 0:
            ratio = np.clip(
                0.5 + static.coupler_ratio_std * normal_coupler, 1e-6, 1 - 1e-6
            )
            errors = np.arcsin(np.sqrt(ratio)) - QUARTER_PI + static.coupler_error_mean
        else:
            errors = (
                static.coupler_error_mean + static.coupler_error_std * normal_coupler
            )
        limit = QUARTER_PI * (1 - 1e-6)
        self.coupler_angles = QUARTER_PI + np.clip(errors, -limit, limit)

        self.phase_offsets = (
            rng.standard_normal(layout.n_phases) * static.phase_offset_std
        )
        mzi_db = static.mzi_loss_db + rng.standard_normal(m) * static.mzi_loss_db_std
        mzi_db = np.clip(mzi_db, 0.0, None)
        imbalance = rng.standard_normal(m) * static.arm_imbalance_db_std
        arm_db = np.clip(
            np.stack([mzi_db + imbalance / 2, mzi_db - imbalance / 2]), 0.0, None
        )
        self.arm_amplitude = 10 ** (-arm_db / 20)
        self.column_amplitude = None
        if static.waveguide_loss_db > 0:
            shape = (layout.depth, layout.n_modes)
            self.column_amplitude = np.full(
                shape, 10 ** (-static.waveguide_loss_db / 20)
            )
        self.heater_gain = 1 + static.heater_gain_std * rng.standard_normal(
            layout.n_phases
        )
        # The devices of the chip share these arrays and keep values computed from
        # them (cells, transfer matrix), so they must not change in place.
        for array in (self.coupler_angles, self.arm_amplitude, self.column_amplitude):
            if array is not None:
                array.setflags(write=False)

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
        self._applied = self._program(value)

    def _program(self, phases: np.ndarray) -> np.ndarray:
        """Applied phases after the DAC, heater gain, crosstalk and static offsets."""
        programming = self.hardware.programming
        if programming.domain == "voltage":
            heated = quantize_voltage(
                phases,
                programming.phase_bits,
                programming.v_pi,
                programming.voltage_range,
                programming.rounding,
                self.program_rng,
            )
        else:
            heated = quantize_phase(
                phases, programming.phase_bits, programming.rounding, self.program_rng
            )
        heated = heated * self.heater_gain
        heated = apply_crosstalk(heated, self._neighbours, programming.crosstalk)
        return heated + self.phase_offsets

    def programmed_gradient(self, applied_gradient: np.ndarray) -> np.ndarray:
        """Convert a gradient with respect to the applied phases into one with respect to
        the programmed phases, the values the controller updates.

        The applied phases are offset + (I + c·A)·(g ⊙ q(p)) for heater gains g, crosstalk
        coefficient c and the symmetric neighbour matrix A, so the chain rule gives
        g ⊙ (I + c·A)·∂L/∂φ. The DAC rounding q is taken as the identity in the chain rule
        (straight-through), because its true derivative is zero almost everywhere.
        """
        crosstalk = self.hardware.programming.crosstalk
        coupled = apply_crosstalk(applied_gradient, self._neighbours, crosstalk)
        return self.heater_gain * coupled

    def program(self, phases: np.ndarray, time_s: float | None = None) -> None:
        """Program new phases at simulated time ``time_s`` (s).

        With a settling time constant, passes after ``time_s`` see the shifters still
        moving from their previous applied phases. Without a time, the new phases apply at
        once, as setting ``phases`` does.
        """
        _check_time(time_s)
        previous = self._applied
        self.phases = phases
        if (
            time_s is not None
            and self.hardware.programming.settling_time_constant_s > 0
        ):
            self._settling_from = (previous, float(time_s))
        else:
            self._settling_from = None

    def settling_residual(self, time_s: float | None) -> np.ndarray | float:
        """Phase lag in rad of every shifter at ``time_s`` behind its programmed value."""
        tau = self.hardware.programming.settling_time_constant_s
        if self._settling_from is None or time_s is None or tau == 0:
            return 0.0
        previous, programmed_at = self._settling_from
        elapsed = max(time_s - programmed_at, 0.0)
        return (self._applied - previous) * math.exp(-elapsed / tau)

    def applied_phases(self) -> np.ndarray:
        """Phases the shifters apply now, without per-pass noise: programmed, plus drift."""
        return self._applied + self.drift.offsets

    def _realise(self, phases: np.ndarray) -> RealisedMesh:
        """Return the device applying ``phases``: the last one if it applies the same.

        A device is frozen and caches its transfer matrix and sweep, so passes without
        phase noise share one instance and build those once per phase update.
        """
        last = self._last_device
        if (
            last is not None
            and last.coupler_angles is self.coupler_angles
            and last.arm_amplitude is self.arm_amplitude
            and last.column_amplitude is self.column_amplitude
            and np.array_equal(last.phases, phases)
        ):
            return last
        device = RealisedMesh(
            self.layout,
            phases,
            self.coupler_angles,
            self.arm_amplitude,
            self.column_amplitude,
        )
        self._last_device = device
        return device

    def device(self) -> RealisedMesh:
        """Return the realised device now, with static errors, programming and drift, and
        without per-pass noise."""
        return self._realise(self.applied_phases())

    def pass_device(
        self, pass_name: str = "forward", time_s: float | None = None
    ) -> RealisedMesh:
        """Return the device of one optical pass, with its phase noise drawn afresh.

        Args:
            pass_name: forward, adjoint or interference.
            time_s: simulated time of the pass in s; drift is advanced to it, and shifters
                programmed shortly before still lag (see ``program``). None keeps the drift
                where it is and takes the shifters as settled.
        """
        errors = self.hardware.pass_errors(pass_name)
        _check_time(time_s)
        if time_s is not None:
            self.drift.advance(time_s)
        phases = self.applied_phases() - self.settling_residual(time_s)
        if errors.phase_noise_std > 0:
            phases = phases + errors.phase_noise_std * self.noise_rng.standard_normal(
                phases.shape
            )
        return self._realise(phases)

    def launch(self, vectors: np.ndarray, pass_name: str) -> np.ndarray:
        """Fields the input modulators actually launch when asked for ``vectors``."""
        errors = self.hardware.pass_errors(pass_name)
        return _perturb(
            vectors,
            errors.input_amplitude_error,
            errors.input_phase_error,
            self.noise_rng,
        )

    def measure_fields(self, fields: np.ndarray, pass_name: str) -> np.ndarray:
        """Coherent detection of the fields leaving the mesh: detector noise on the power,
        then the amplitude and phase errors of the receiver."""
        errors = self.hardware.pass_errors(pass_name)
        detector = errors.output_detector
        if not detector.is_noiseless or detector.adc_bits is not None:
            power = detect(np.abs(fields) ** 2, detector, self.noise_rng)
            fields = np.sqrt(np.clip(power, 0.0, None)) * np.exp(1j * np.angle(fields))
        return _perturb(
            fields,
            errors.output_amplitude_error,
            errors.output_phase_error,
            self.noise_rng,
        )

    def read_monitors(
        self, power: np.ndarray, pass_name: str = "forward"
    ) -> np.ndarray:
        """Monitor readings of the true powers ``power`` in the pass called ``pass_name``."""
        return detect(
            power, self.hardware.pass_errors(pass_name).monitor, self.noise_rng
        )

    def nominal_power_factors(self) -> np.ndarray:
        """Nominal power transmission from the input ports to every phase shifter.

        Computed from the configured mean losses as if every waveguide of every column had
        the same loss (MZI loss plus waveguide loss), in phase-vector order. The θ point of
        an MZI in column c lies after c columns and its own internal arms. The φ point lies
        after c columns, and the output phases after every column.
        """
        static = self.hardware.static
        column_db = static.mzi_loss_db + static.waveguide_loss_db
        columns = self.layout.mzi_columns
        theta_db = columns * column_db + static.mzi_loss_db
        phi_db = columns * column_db
        psi_db = np.full(self.layout.n_modes, self.layout.depth * column_db)
        return 10 ** (-np.concatenate([theta_db, phi_db, psi_db]) / 10)
