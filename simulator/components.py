"""Hardware components of a photonic training system, their timing and energy, and presets.

Durations are integer picoseconds, because the scheduler clock is an integer count of
picoseconds. Energies are in J, powers in W, rates in Hz or operations per second.

Sources of the cited values:

- Harris et al., "Efficient, compact and low loss thermo-optic phase shifter in silicon",
  Opt. Express 22, 10487 (2014): P_π = 24.77 mW and a 3-dB modulation bandwidth of
  130 kHz, so the thermal time constant is τ = 1 / (2π · 130 kHz) = 1.224 µs.
- "The design of a low-loss, fast-response, metal thermo-optic phase shifter based on
  coupled-mode theory", Photonics 9, 447 (2022), doi:10.3390/photonics9070447: a
  chromium heater with a rise time of 1.15 µs and a decay time of 2.18 µs.
- Pai et al., "Experimentally realized in situ backpropagation for deep learning in
  photonic neural networks", Science 380, 398 (2023), doi:10.1126/science.ade8450: a
  4-port, 3-layer chip with grating tap monitors and a fiber switch for bidirectional
  passes. NOTE: the 20 ms camera exposure and the 20–200 ms settle waits of that bench
  used below were not checked against the paper's methods here.
- Bandyopadhyay et al., "Single-chip photonic deep neural network with forward-only
  training", Nat. Photon. (2024), doi:10.1038/s41566-024-01567-z: 410 ps latency for a
  3-layer network computed optically on one chip.
- Baehr-Jones et al., "Ultralow drive voltage silicon traveling-wave modulator",
  Opt. Express (2012): 200 fJ/bit at 20 Gb/s.

Silicon modulators and photodetectors run at tens of GHz. Every other value is an estimate
and is marked as one next to the field.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "SHIFTER_KINDS",
    "SYSTEM_PRESETS",
    "CameraMonitors",
    "Controller",
    "Detectors",
    "Laser",
    "Modulators",
    "OperationCounts",
    "PhaseShifters",
    "SystemConfig",
    "TapMonitors",
    "system_preset",
]

PS_PER_S = 10**12

SHIFTER_KINDS = ("thermo-optic", "electro-optic")

MONITOR_KINDS = ("taps", "camera")


def _check_int(owner: str, name: str, value: Any, minimum: int) -> int:
    is_integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not is_integer or value < minimum:
        allowed = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{owner}.{name} must be {allowed}, got {value!r}")
    return int(value)


def _check_real(
    owner: str,
    name: str,
    value: Any,
    minimum: float = 0.0,
    maximum: float = math.inf,
    minimum_open: bool = False,
) -> float:
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    inside = (
        is_number
        and math.isfinite(value)
        and (value > minimum if minimum_open else value >= minimum)
        and value <= maximum
    )
    if not inside:
        left = "(" if minimum_open else "["
        right = "]" if math.isfinite(maximum) else ")"
        allowed = f"{left}{minimum:g}, {maximum:g}{right}"
        raise ValueError(
            f"{owner}.{name} must be a finite number in {allowed}, got {value!r}"
        )
    return float(value)


class _Validated:
    """Validation of integer and real fields, shared by the component dataclasses.

    ``_POSITIVE_INTS`` must be >= 1, ``_NON_NEGATIVE_INTS`` >= 0, ``_NON_NEGATIVE_REALS``
    finite and >= 0. Values are stored as plain int and float.
    """

    _SECTION: ClassVar[str] = ""
    _POSITIVE_INTS: ClassVar[tuple[str, ...]] = ()
    _NON_NEGATIVE_INTS: ClassVar[tuple[str, ...]] = ()
    _NON_NEGATIVE_REALS: ClassVar[tuple[str, ...]] = ()

    def _validate_numbers(self) -> None:
        for name in self._POSITIVE_INTS:
            value = _check_int(self._SECTION, name, getattr(self, name), 1)
            object.__setattr__(self, name, value)
        for name in self._NON_NEGATIVE_INTS:
            value = _check_int(self._SECTION, name, getattr(self, name), 0)
            object.__setattr__(self, name, value)
        for name in self._NON_NEGATIVE_REALS:
            value = _check_real(self._SECTION, name, getattr(self, name))
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class Laser(_Validated):
    """The continuous-wave laser that feeds the input modulators.

    Raises:
        ValueError: if ``optical_power_w`` is negative or not finite, or
            ``wall_plug_efficiency`` is outside (0, 1].
    """

    _SECTION: ClassVar[str] = "laser"
    _NON_NEGATIVE_REALS: ClassVar[tuple[str, ...]] = ("optical_power_w",)

    optical_power_w: float = 10e-3
    """Optical output power, W. Estimate."""

    wall_plug_efficiency: float = 0.2
    """Optical output power over electrical input power, in (0, 1]. Estimate."""

    def __post_init__(self) -> None:
        self._validate_numbers()
        value = _check_real(
            "laser", "wall_plug_efficiency", self.wall_plug_efficiency, 0.0, 1.0, True
        )
        object.__setattr__(self, "wall_plug_efficiency", value)

    @property
    def electrical_power_w(self) -> float:
        """Electrical power drawn while the laser is on, W."""
        return self.optical_power_w / self.wall_plug_efficiency


@dataclass(frozen=True)
class Modulators(_Validated):
    """The input modulators of one mesh, one per port, each driven by its own DAC.

    They launch the forward input into the input ports and, switched to the other side,
    the adjoint source into the output ports.
    """

    _SECTION: ClassVar[str] = "modulators"
    _POSITIVE_INTS: ClassVar[tuple[str, ...]] = ("symbol_period_ps", "dac_bits")
    _NON_NEGATIVE_INTS: ClassVar[tuple[str, ...]] = ("latency_ps",)
    _NON_NEGATIVE_REALS: ClassVar[tuple[str, ...]] = (
        "modulator_energy_j",
        "dac_energy_j",
    )

    symbol_period_ps: int = 50
    """Time per sample, ps, the inverse of the symbol rate: 20 GBd. Estimate in the
    tens-of-GHz range of silicon modulators."""

    dac_bits: int = 8
    """DAC resolution, bits. Recorded with the preset; ``dac_energy_j`` already
    contains its cost."""

    dac_energy_j: float = 1e-12
    """Energy per DAC conversion (one symbol on one port), J. Estimate."""

    modulator_energy_j: float = 200e-15
    """Drive energy per symbol and port, J, from the 200 fJ/bit of Baehr-Jones et al.
    (2012). Analog amplitude and phase modulation may cost more."""

    latency_ps: int = 100
    """Delay from a digital sample to its optical symbol, ps. Estimate."""

    def __post_init__(self) -> None:
        self._validate_numbers()

    @property
    def symbol_rate_hz(self) -> float:
        """Symbols per second per port."""
        return PS_PER_S / self.symbol_period_ps


@dataclass(frozen=True)
class PhaseShifters(_Validated):
    """The programmable phase shifters of one mesh and the DAC that writes them.

    Settling follows a first-order response: a change Δφ leaves the residual
    Δφ·e^{−t/τ} after a time t, with τ the rise time constant for increasing phase
    (heating, for a thermo-optic shifter) and the fall time constant for decreasing phase.

    Raises:
        ValueError: for an unknown ``kind`` or a field outside its range.
    """

    _SECTION: ClassVar[str] = "phase_shifters"
    _POSITIVE_INTS: ClassVar[tuple[str, ...]] = (
        "rise_time_constant_ps",
        "fall_time_constant_ps",
        "dac_bits",
        "dac_channels",
    )
    _NON_NEGATIVE_INTS: ClassVar[tuple[str, ...]] = ("min_settle_ps", "dac_write_ps")
    _NON_NEGATIVE_REALS: ClassVar[tuple[str, ...]] = ("p_pi_w", "program_energy_j")

    kind: str = "thermo-optic"
    """"thermo-optic" (a heater) or "electro-optic" (carrier depletion or Pockels)."""

    rise_time_constant_ps: int = 1_224_000
    """Time constant τ of a phase increase, ps: 1 / (2π · 130 kHz), Harris et al.
    (2014)."""

    fall_time_constant_ps: int = 1_224_000
    """Time constant τ of a phase decrease, ps. Harris et al. (2014) give one
    bandwidth, so it equals the rise time constant."""

    min_settle_ps: int = 0
    """Shortest wait after a write whatever the phase change, ps: a fixed wait for slow
    effects that the time constants do not describe (chip temperature, crosstalk)."""

    p_pi_w: float = 24.8e-3
    """Holding power of a π phase shift, W (24.77 mW, Harris et al. 2014). Holding power
    grows linearly with phase."""

    mean_phase_rad: float = math.pi / 2
    """Mean programmed phase, rad, from which the mean holding power follows. π/2 is the
    mean of phases uniform on [0, π], and phases uniform on [0, 2π) give π. Estimate."""

    dac_bits: int = 12
    """Resolution of the phase DAC, bits. Recorded with the preset;
    ``program_energy_j`` already contains its cost."""

    dac_channels: int = 64
    """Phase-DAC channels that write shifters in parallel. Estimate."""

    dac_write_ps: int = 100_000
    """Time for one channel to write one shifter, ps (a 10 MS/s multichannel DAC).
    Estimate."""

    program_energy_j: float = 100e-12
    """DAC and driver energy per shifter write, J. Estimate."""

    def __post_init__(self) -> None:
        if self.kind not in SHIFTER_KINDS:
            raise ValueError(
                f"phase_shifters.kind must be one of {SHIFTER_KINDS}, got {self.kind!r}"
            )
        self._validate_numbers()
        value = _check_real(
            "phase_shifters", "mean_phase_rad", self.mean_phase_rad, 0.0, 2 * math.pi
        )
        object.__setattr__(self, "mean_phase_rad", value)

    @property
    def holding_power_w(self) -> float:
        """Mean power that keeps one shifter at its phase, W: P_π · mean phase / π."""
        return self.p_pi_w * self.mean_phase_rad / math.pi

    @property
    def settle_time_constant_ps(self) -> int:
        """The slower of the rise and fall time constants, ps, which bounds settling when
        some shifters rise and others fall."""
        return max(self.rise_time_constant_ps, self.fall_time_constant_ps)

    def write_time_ps(self, n_shifters: int) -> int:
        """Return the time to write ``n_shifters`` shifters over all DAC channels, ps."""
        return math.ceil(n_shifters / self.dac_channels) * self.dac_write_ps


@dataclass(frozen=True)
class Detectors(_Validated):
    """Coherent receivers and their ADCs at the ports of one mesh.

    They detect the outputs of a forward pass and, switched to the other side, the adjoint
    output at the input ports.
    """

    _SECTION: ClassVar[str] = "detectors"
    _POSITIVE_INTS: ClassVar[tuple[str, ...]] = (
        "sample_period_ps",
        "adc_bits",
        "quadratures",
    )
    _NON_NEGATIVE_INTS: ClassVar[tuple[str, ...]] = ("latency_ps",)
    _NON_NEGATIVE_REALS: ClassVar[tuple[str, ...]] = ("adc_energy_j",)

    sample_period_ps: int = 50
    """Time per sample, ps: 20 GS/s. Estimate in the tens-of-GHz range of silicon
    photodetectors."""

    adc_bits: int = 8
    """ADC resolution, bits. Recorded with the preset; ``adc_energy_j`` already
    contains its cost."""

    adc_energy_j: float = 1e-12
    """Energy per ADC conversion, J. Estimate."""

    quadratures: int = 2
    """Conversions per detected field: 2 for in-phase and quadrature."""

    latency_ps: int = 100
    """Delay from light at a detector to its digital sample, ps. Estimate."""

    def __post_init__(self) -> None:
        self._validate_numbers()


@dataclass(frozen=True)
class TapMonitors(_Validated):
    """On-chip tap photodiodes at every phase shifter, read out through shared ADCs.

    Each photodiode integrates its photocurrent over the whole burst of a pass, so one
    conversion per shifter and pass gives the batch-summed monitor power. The readout
    starts when the pass ends and takes ⌈P / adc_channels⌉ ADC sample periods.

    NOTE: ``photonic.insitu`` scales the adjoint source of every sample separately and
    undoes the scale per sample, which batch-summed readings cannot do. The timing here
    assumes one adjoint gain per batch. Integrators are taken to be double-buffered, so
    a readout may overlap the next pass.
    """

    kind: ClassVar[str] = "taps"
    _SECTION: ClassVar[str] = "monitors"
    _POSITIVE_INTS: ClassVar[tuple[str, ...]] = (
        "adc_channels",
        "adc_sample_period_ps",
        "adc_bits",
    )
    _NON_NEGATIVE_REALS: ClassVar[tuple[str, ...]] = ("adc_energy_j",)

    adc_channels: int = 64
    """ADCs shared by the monitors of one mesh. Estimate."""

    adc_sample_period_ps: int = 1_000
    """Time per conversion of one ADC, ps: 1 GS/s. Estimate."""

    adc_bits: int = 10
    """ADC resolution, bits. Recorded with the preset; ``adc_energy_j`` already
    contains its cost."""

    adc_energy_j: float = 1e-12
    """Energy per conversion, J. Estimate."""

    def __post_init__(self) -> None:
        self._validate_numbers()

    def readout_ps(self, n_shifters: int) -> int:
        """Return the time to convert the monitors of ``n_shifters`` shifters, ps."""
        return math.ceil(n_shifters / self.adc_channels) * self.adc_sample_period_ps


@dataclass(frozen=True)
class CameraMonitors(_Validated):
    """An infrared camera that images the grating taps of every phase shifter.

    With ``frame_per_sample`` the camera takes one frame per sample, so each sample of a
    monitored pass waits for the exposure and the frame readout overlaps the next
    sample. Otherwise one exposure spans the whole burst and the frame is read out after
    the pass. The camera draws ``power_w`` for the whole schedule.
    """

    kind: ClassVar[str] = "camera"
    _SECTION: ClassVar[str] = "monitors"
    _POSITIVE_INTS: ClassVar[tuple[str, ...]] = ("exposure_ps", "frame_readout_ps")
    _NON_NEGATIVE_REALS: ClassVar[tuple[str, ...]] = ("power_w",)

    exposure_ps: int = 20_000_000_000
    """Exposure of one frame, ps: 20 ms, the exposure of the Pai et al. (2023) bench."""

    frame_readout_ps: int = 10_000_000_000
    """Time to read one frame out of the camera, ps: 10 ms (100 frames/s). Estimate."""

    frame_per_sample: bool = True
    """Take one frame per sample (as on a bench that sets one input at a time) rather
    than one frame per pass."""

    power_w: float = 3.0
    """Electrical power of the camera, W. Estimate for a cooled InGaAs camera."""

    def __post_init__(self) -> None:
        self._validate_numbers()
        if not isinstance(self.frame_per_sample, bool):
            raise ValueError(
                f"monitors.frame_per_sample must be true or false, "
                f"got {self.frame_per_sample!r}"
            )


@dataclass(frozen=True)
class Controller(_Validated):
    """The digital controller: gradient arithmetic, optimizer, loss and device models.

    With ``stream_elementwise`` the element-wise operations between passes (activation,
    adjoint source, interference input, loss terms) run at line rate in a digital front
    end between the detectors and the modulators. They then add ``stream_latency_ps`` to
    the pass that consumes their output and cost their energy, but no controller time.
    Otherwise they run on the controller after the pass that produced their input.

    NOTE: the line-rate front end is not a scheduled resource, so it never limits the
    pass rate and its contention is not modelled.
    """

    _SECTION: ClassVar[str] = "controller"
    _POSITIVE_INTS: ClassVar[tuple[str, ...]] = ("cores",)
    _NON_NEGATIVE_INTS: ClassVar[tuple[str, ...]] = ("stream_latency_ps",)
    _NON_NEGATIVE_REALS: ClassVar[tuple[str, ...]] = ("energy_per_op_j",)

    ops_per_s: float = 1e10
    """Sustained floating-point operations per second of one core. Estimate."""

    energy_per_op_j: float = 1e-12
    """Energy per floating-point operation, J. Estimate."""

    cores: int = 1
    """Cores that run independent computations at the same time."""

    stream_elementwise: bool = True
    """Run element-wise operations at line rate in the digital front end."""

    stream_latency_ps: int = 1_000
    """Latency of the line-rate front end, ps. Estimate."""

    def __post_init__(self) -> None:
        self._validate_numbers()
        value = _check_real(
            "controller", "ops_per_s", self.ops_per_s, 0.0, minimum_open=True
        )
        object.__setattr__(self, "ops_per_s", value)
        if not isinstance(self.stream_elementwise, bool):
            raise ValueError(
                f"controller.stream_elementwise must be true or false, "
                f"got {self.stream_elementwise!r}"
            )

    def compute_time_ps(self, n_ops: int) -> int:
        """Return the time of ``n_ops`` operations on one core, ps, rounded up."""
        return math.ceil(n_ops * PS_PER_S / self.ops_per_s)


@dataclass(frozen=True)
class OperationCounts(_Validated):
    """Floating-point operations of each digital task, per element. Estimates."""

    _SECTION: ClassVar[str] = "operations"
    _NON_NEGATIVE_INTS: ClassVar[tuple[str, ...]] = (
        "activation",
        "loss_term",
        "interference_input",
        "gradient_term",
        "phase_update",
        "mzi_propagation",
        "model_gradient_term",
        "difference_quotient",
    )

    activation: int = 4
    """Per mode and sample: the activation |z|, or its derivative in the backward pass."""

    loss_term: int = 10
    """Per output mode and sample: the loss and its adjoint source."""

    interference_input: int = 2
    """Per mode and sample: x − i·conj(x_adj), one complex subtraction."""

    gradient_term: int = 4
    """Per shifter and monitor reading: (P_sum − P_fwd − P_bwd) / 2 and its sum."""

    phase_update: int = 2
    """Per shifter: the optimizer step (plain SGD: one multiply, one subtract)."""

    mzi_propagation: int = 28
    """Per MZI and sample in one direction of a digital mesh model: a 2×2 complex
    matrix-vector product (24) and the phase factors (4)."""

    model_gradient_term: int = 3
    """Per shifter and sample of a digital mesh model: −Im(a·b) and its sum."""

    difference_quotient: int = 3
    """Per shifter of a finite-difference gradient: (L₊ − L₋) / 2h."""

    def __post_init__(self) -> None:
        self._validate_numbers()


_SECTIONS: dict[str, type] = {
    "laser": Laser,
    "modulators": Modulators,
    "phase_shifters": PhaseShifters,
    "detectors": Detectors,
    "monitors": TapMonitors,
    "controller": Controller,
    "operations": OperationCounts,
}
_MONITOR_CLASSES: dict[str, type] = {"taps": TapMonitors, "camera": CameraMonitors}


@dataclass(frozen=True)
class SystemConfig:
    """Every component of a photonic training system, with the optical transit time.

    The pipelined architecture has one copy of the modulators, phase shifters, detectors
    and monitors per layer, each with these parameters. The time-multiplexed
    architecture has one of each.

    Raises:
        ValueError: if ``transit_time_ps`` is not a non-negative integer or a component
            has the wrong type.
    """

    name: str = "thermo-optic-chip"
    laser: Laser = field(default_factory=Laser)
    modulators: Modulators = field(default_factory=Modulators)
    phase_shifters: PhaseShifters = field(default_factory=PhaseShifters)
    detectors: Detectors = field(default_factory=Detectors)
    monitors: TapMonitors | CameraMonitors = field(default_factory=TapMonitors)
    controller: Controller = field(default_factory=Controller)
    operations: OperationCounts = field(default_factory=OperationCounts)

    transit_time_ps: int = 137
    """Optical transit through one mesh, ps: the 410 ps latency of the 3-layer network of
    Bandyopadhyay et al. (2024) divided by its 3 layers."""

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "transit_time_ps",
            _check_int("system", "transit_time_ps", self.transit_time_ps, 0),
        )
        for name, cls in _SECTIONS.items():
            value = getattr(self, name)
            allowed = (TapMonitors, CameraMonitors) if name == "monitors" else cls
            if not isinstance(value, allowed):
                raise ValueError(
                    f"system.{name} must be a {cls.__name__}, got {type(value).__name__}"
                )

    @property
    def monitor_kind(self) -> str:
        """ "taps" or "camera"."""
        return self.monitors.kind

    def to_dict(self) -> dict[str, Any]:
        """Return the config as nested plain values, with ``monitors.kind``."""
        values: dict[str, Any] = {
            "name": self.name,
            "transit_time_ps": self.transit_time_ps,
        }
        for name in _SECTIONS:
            section = dataclasses.asdict(getattr(self, name))
            if name == "monitors":
                section = {"kind": self.monitor_kind, **section}
            values[name] = section
        return values

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SystemConfig:
        """Build a system from a preset and overrides, e.g. a parsed TOML table.

        ``preset`` names the starting point (default "thermo-optic-chip");
        ``transit_time_ps`` and one table per component override its fields. A
        ``monitors`` table with a ``kind`` different from the preset's starts from the
        defaults of that kind.

        Raises:
            ValueError: for an unknown preset, table or key (the message lists the
                allowed ones), or a value outside its range.
        """
        values = dict(values)
        base = system_preset(values.pop("preset", DEFAULT_SYSTEM_PRESET))
        allowed = ("name", "transit_time_ps", *_SECTIONS)
        for key in values:
            if key not in allowed:
                raise ValueError(
                    f"unknown system key {key!r}; allowed keys: preset, "
                    + ", ".join(allowed)
                )

        changes: dict[str, Any] = {}
        for key in ("name", "transit_time_ps"):
            if key in values:
                changes[key] = values[key]
        for name, section_cls in _SECTIONS.items():
            if name not in values:
                continue
            table = values[name]
            if not isinstance(table, Mapping):
                raise ValueError(f"system.{name} must be a table, got {table!r}")
            table = dict(table)
            current = getattr(base, name)
            if name == "monitors":
                kind = table.pop("kind", current.kind)
                if kind not in _MONITOR_CLASSES:
                    raise ValueError(
                        f"monitors.kind must be one of {MONITOR_KINDS}, got {kind!r}"
                    )
                section_cls = _MONITOR_CLASSES[kind]
                if kind != current.kind:
                    current = section_cls()
            changes[name] = _replace_checked(name, current, table)
        return dataclasses.replace(base, **changes)


def _replace_checked(section: str, current: Any, overrides: Mapping[str, Any]) -> Any:
    allowed = [f.name for f in dataclasses.fields(current)]
    for key in overrides:
        if key not in allowed:
            raise ValueError(
                f"unknown key {key!r} in [system.{section}]; allowed keys: "
                + ", ".join(allowed)
            )
    return dataclasses.replace(current, **overrides)


DEFAULT_SYSTEM_PRESET = "thermo-optic-chip"

SYSTEM_PRESETS: dict[str, SystemConfig] = {
    # Integrated silicon chip with heaters (Harris et al. 2014), tap monitors with shared
    # ADCs and a line-rate digital front end.
    "thermo-optic-chip": SystemConfig(),
    # The same chip with the faster chromium heater of Photonics 9, 447 (2022). The reported
    # rise and decay times are taken as time constants. If they are 10–90 % times, the
    # first-order time constants are t / ln 9, and this preset settles 2.2 times too
    # slowly.
    "thermo-optic-fast-heater": SystemConfig(
        name="thermo-optic-fast-heater",
        phase_shifters=PhaseShifters(
            rise_time_constant_ps=1_150_000, fall_time_constant_ps=2_180_000
        ),
    ),
    # Electro-optic shifters hold their phase without power and settle when their
    # drivers have charged them. Time constant (200 ps), write time (1 ns per channel,
    # 256 channels) and CV² write energy (1 pJ) are estimates.
    "electro-optic-chip": SystemConfig(
        name="electro-optic-chip",
        phase_shifters=PhaseShifters(
            kind="electro-optic",
            rise_time_constant_ps=200,
            fall_time_constant_ps=200,
            p_pi_w=0.0,
            dac_channels=256,
            dac_write_ps=1_000,
            program_energy_j=1e-12,
        ),
    ),
    # The lab bench of Pai et al. (2023). Its thermo-optic shifters are written over a
    # slow DAC and get a 20 ms settle wait after every write, the shortest of the
    # 20–200 ms waits. An on-chip thermo-optic generator sets each input with the same
    # wait, and an IR camera images the grating taps with 20 ms exposure per sample.
    # A PC runs the element-wise operations. DAC write time, frame readout, camera and
    # PC figures are estimates.
    "pai2023-bench": SystemConfig(
        name="pai2023-bench",
        laser=Laser(optical_power_w=1e-3, wall_plug_efficiency=0.05),
        modulators=Modulators(
            symbol_period_ps=20_000_000_000,
            dac_bits=16,
            dac_energy_j=1e-6,
            modulator_energy_j=0.0,
            latency_ps=1_000_000_000,
        ),
        phase_shifters=PhaseShifters(
            min_settle_ps=20_000_000_000,
            dac_bits=16,
            dac_channels=1,
            dac_write_ps=10_000_000,
            program_energy_j=1e-6,
        ),
        detectors=Detectors(
            sample_period_ps=1_000_000,
            adc_bits=16,
            adc_energy_j=1e-9,
            latency_ps=1_000_000,
        ),
        monitors=CameraMonitors(),
        controller=Controller(
            ops_per_s=1e9,
            energy_per_op_j=1e-9,
            stream_elementwise=False,
        ),
        transit_time_ps=137,
    ),
}


def system_preset(name: str) -> SystemConfig:
    """Return the named system from ``SYSTEM_PRESETS``.

    Raises:
        ValueError: if no preset has that name; the message lists the known names.
    """
    try:
        return SYSTEM_PRESETS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(key) for key in SYSTEM_PRESETS)
        raise ValueError(
            f"unknown system preset {name!r}. Known presets are {known}"
        ) from None
