"""Hardware error model: physical invariants of realised devices, quantization, crosstalk,
loss correction, drift, and the gradient error that each error source causes on its own.

The gradient tests use problem (a) of conftest.py: three 4-port mesh layers with |z|
activations and a grouped power cross-entropy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from photonic.detection import DetectorConfig
from photonic.hardware import (
    HARDWARE_PRESETS,
    PASS_NAMES,
    Chip,
    Drift,
    HardwareConfig,
    PassErrors,
    Programming,
    StaticErrors,
    hardware_preset,
)
from photonic.insitu import InSituStep, measure_gradient, pass_order, run_pass
from photonic.mesh import TOPOLOGIES, MeshLayout, RealisedMesh
from photonic.mzi import coupler, mzi_transfer
from photonic.programming import quantize_phase, quantize_voltage
from photonic.reference import exact_gradient, gradient_error

TWO_PI = 2 * np.pi
STEP_8_BITS = TWO_PI / 256


def every_pass(**values: Any) -> dict[str, PassErrors]:
    """The same pass errors for the forward, adjoint and interference passes."""
    errors = PassErrors(**values)
    return {name: errors for name in PASS_NAMES}


def static_errors(scale: float, coupler_as_ratio: bool) -> StaticErrors:
    """Static errors with every field nonzero, each proportional to ``scale``.

    The coupler spread is given either as an angle or as a power ratio, because the two
    fields cannot both be set.
    """
    spread = {"coupler_ratio_std" if coupler_as_ratio else "coupler_error_std": 0.05}
    return StaticErrors(
        coupler_error_mean=0.03 * scale,
        phase_offset_std=0.1 * scale,
        mzi_loss_db=0.3 * scale,
        # A spread as large as the mean clips some MZIs at 0 dB.
        mzi_loss_db_std=0.3 * scale,
        arm_imbalance_db_std=0.3 * scale,
        waveguide_loss_db=0.02 * scale,
        heater_gain_std=0.02 * scale,
        **{key: value * scale for key, value in spread.items()},
    )


PROGRAMMING_ERRORS = Programming(
    phase_bits=6, domain="voltage", rounding="stochastic", crosstalk=0.02
)


def singular_values(device: RealisedMesh) -> np.ndarray:
    return np.linalg.svd(device.matrix(), compute_uv=False)


# Passivity and reciprocity


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    n_modes=st.integers(min_value=2, max_value=8),
    topology=st.sampled_from(TOPOLOGIES),
    scale=st.floats(min_value=0.1, max_value=3.0),
    coupler_as_ratio=st.booleans(),
    drift_model=st.sampled_from(["random-walk", "ornstein-uhlenbeck"]),
    time_s=st.floats(min_value=0.0, max_value=100.0),
)
def test_device_with_every_error_is_passive(
    seed: int,
    n_modes: int,
    topology: str,
    scale: float,
    coupler_as_ratio: bool,
    drift_model: str,
    time_s: float,
) -> None:
    """No realised device amplifies: every singular value is at most 1.

    Every static field is nonzero (the coupler spread as an angle or as a ratio), the DAC
    works in the voltage domain with stochastic rounding and crosstalk, drift has run to
    ``time_s`` and every pass adds phase noise.
    """
    hardware = HardwareConfig(
        static=static_errors(scale, coupler_as_ratio),
        programming=PROGRAMMING_ERRORS,
        drift=Drift(model=drift_model, std=0.05 * scale, correlation_time_s=2.0),
        **every_pass(phase_noise_std=0.05 * scale),
    )
    chip = Chip(MeshLayout.create(n_modes, topology), hardware, seed=seed)
    devices = [chip.pass_device(name, time_s) for name in PASS_NAMES]
    devices.append(chip.device())

    for device in devices:
        largest = singular_values(device).max()
        assert largest <= 1 + 1e-12, f"largest singular value {largest!r}"


@pytest.mark.parametrize("coupler_as_ratio", [False, True], ids=["angle", "ratio"])
@pytest.mark.parametrize("n_modes", [2, 5, 8])
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_backward_matrix_is_forward_transpose(
    topology: str, n_modes: int, coupler_as_ratio: bool
) -> None:
    """backward() of a device with every static and programming error acts as Uᵀ."""
    hardware = HardwareConfig(
        static=static_errors(1.0, coupler_as_ratio),
        programming=PROGRAMMING_ERRORS,
    )
    chip = Chip(MeshLayout.create(n_modes, topology), hardware, seed=31)
    device = chip.device()
    assert np.any(device.arm_amplitude < 1)
    assert device.column_amplitude is not None

    # backward(y) returns y @ B.T for the backward transfer matrix B.
    backward_images, _ = device.backward(np.eye(n_modes))
    np.testing.assert_allclose(backward_images.T, device.matrix().T, rtol=0, atol=1e-12)


# Loss and the singular values of a mesh


@pytest.mark.parametrize(
    ("topology", "printed"), [("rectangular", 0.831764), ("triangular", 0.741310)]
)
def test_uniform_waveguide_loss_scales_unitary(topology: str, printed: float) -> None:
    """Equal loss on every waveguide of every column gives 10^(−L·depth/20) times a
    unitary: the rectangular mesh on 8 modes has 8 columns, the triangular one 13."""
    layout = MeshLayout.create(8, topology)
    hardware = HardwareConfig(static=StaticErrors(waveguide_loss_db=0.2))
    values = singular_values(Chip(layout, hardware, seed=4).device())
    expected = 10 ** (-0.2 * layout.depth / 20)

    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(values, printed, rtol=0, atol=1e-6)


def test_triangular_mzi_loss_spreads_singular_values_more() -> None:
    """Per-MZI loss spreads the singular values more in a triangular mesh.

    The spread is the ratio of the largest to the smallest singular value, the amplitude
    ratio between the best and the worst transmitted input state (the mode-dependent
    loss). Unlike a standard deviation of the singular values it does not shrink with
    the mean transmission, and the triangular mesh has more loss on average (13 columns
    against 8). On 8 modes the waveguides of a triangular mesh pass through 1 to 13 MZIs
    and those of a rectangular mesh through 4 to 8, so the loss of the triangular mesh
    depends more on the path.
    """
    hardware = HardwareConfig(static=StaticErrors(mzi_loss_db=0.5, mzi_loss_db_std=0.1))
    mean_ratio = {}
    for topology in TOPOLOGIES:
        layout = MeshLayout.create(8, topology)
        ratios = []
        for seed in range(20):
            values = singular_values(Chip(layout, hardware, seed=seed).device())
            ratios.append(values.max() / values.min())
        mean_ratio[topology] = float(np.mean(ratios))

    assert mean_ratio["rectangular"] > 1.01, mean_ratio
    assert mean_ratio["triangular"] > mean_ratio["rectangular"], mean_ratio


# Quantization


def test_small_update_keeps_nearest_level() -> None:
    # 0.01 rad is less than half of the 8-bit step 2π/256 ≈ 0.0245 rad.
    level = 100 * STEP_8_BITS
    quantized = quantize_phase(np.array([level + 0.01]), 8)
    assert quantized[0] == pytest.approx(level, rel=0, abs=1e-12)


def test_stochastic_rounding_moves_phase_on_average() -> None:
    level = 100 * STEP_8_BITS
    draws = np.full(200_000, level + 0.01)
    quantized = quantize_phase(draws, 8, "stochastic", np.random.default_rng(12))
    moves = quantized - level

    # Each draw moves by 0 or one step, with probability 0.01/step ≈ 0.41 of a step. The
    # standard deviation of one move is about 0.012 rad, so the mean of 2·10⁵ moves has a
    # standard error of about 3·10⁻⁵ rad, far below the 10⁻³ rad tolerance.
    np.testing.assert_allclose(np.unique(moves), [0.0, STEP_8_BITS], atol=1e-12)
    assert abs(np.mean(moves) - 0.01) < 1e-3, f"mean move {np.mean(moves)!r} rad"


def test_phase_below_two_pi_quantizes_to_level_zero() -> None:
    assert quantize_phase(np.array([TWO_PI - 1e-9]), 8)[0] == 0.0


# Phases φ with their 8-bit voltage code k, computed by hand. With the default
# V_max = √2·V_π and φ = γV², γ = π/V_π², the ideal code is 255·sqrt(φ/2π) whatever V_π is:
# φ = 0.3 → 55.72, 1.0 → 101.73, π → 180.31, 5.0 → 227.48, 2π − 10⁻⁹ → 255.00.
VOLTAGE_CODES = [(0.0, 0), (0.3, 56), (1.0, 102), (np.pi, 180), (5.0, 227)]
VOLTAGE_CODES.append((TWO_PI - 1e-9, 255))
V_PI = 4.36


def square_law_phase(code: int, v_pi: float = V_PI) -> float:
    """Phase γ·V² of a shifter driven at DAC code ``code`` of 8 bits over [0, √2·V_π]."""
    gamma = np.pi / v_pi**2
    step = math.sqrt(2) * v_pi / 255
    return gamma * (code * step) ** 2


def test_voltage_quantization_matches_square_law() -> None:
    phases = np.array([phase for phase, _ in VOLTAGE_CODES])
    expected = np.array([square_law_phase(code) for _, code in VOLTAGE_CODES])
    applied = quantize_voltage(phases, 8, V_PI, math.sqrt(2) * V_PI)

    np.testing.assert_allclose(applied, expected, rtol=0, atol=1e-12)
    # 2π(k/255)² is the same law without V_π: 102² / 255² = 0.16 exactly.
    assert applied[2] == pytest.approx(TWO_PI * 0.16, rel=1e-12)


def test_chip_voltage_dac_matches_square_law() -> None:
    layout = MeshLayout.create(3, "rectangular")
    hardware = HardwareConfig(
        programming=Programming(phase_bits=8, domain="voltage", v_pi=V_PI)
    )
    chip = Chip(layout, hardware, seed=6)
    phases = np.zeros(layout.n_phases)
    phases[: len(VOLTAGE_CODES)] = [phase for phase, _ in VOLTAGE_CODES]
    expected = np.zeros(layout.n_phases)
    expected[: len(VOLTAGE_CODES)] = [square_law_phase(c) for _, c in VOLTAGE_CODES]

    chip.phases = phases
    np.testing.assert_allclose(chip.applied_phases(), expected, rtol=0, atol=1e-12)


# Crosstalk

CROSSTALK = 0.05
SET_PHASE = 1.3


def single_phase(layout: MeshLayout, index: int) -> np.ndarray:
    phases = np.zeros(layout.n_phases)
    phases[index] = SET_PHASE
    return phases


def crosstalk_chip(topology: str) -> Chip:
    layout = MeshLayout.create(6, topology)
    hardware = HardwareConfig(programming=Programming(crosstalk=CROSSTALK))
    return Chip(layout, hardware, seed=8)


def neighbours_of(layout: MeshLayout, index: int) -> list[int]:
    pairs = layout.shifter_neighbours()
    return sorted(
        [int(j) for i, j in pairs if i == index]
        + [int(i) for i, j in pairs if j == index]
    )


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_crosstalk_moves_only_neighbours(topology: str) -> None:
    """Setting one shifter to φ adds c·φ to each of its neighbours and nothing elsewhere."""
    chip = crosstalk_chip(topology)
    layout = chip.layout
    checked = 0
    for index in range(layout.n_phases):
        neighbours = neighbours_of(layout, index)
        expected = single_phase(layout, index)
        expected[neighbours] = CROSSTALK * SET_PHASE

        chip.phases = single_phase(layout, index)
        np.testing.assert_allclose(
            chip.applied_phases(), expected, rtol=0, atol=1e-15, err_msg=f"{index}"
        )
        checked += len(neighbours) > 0
    # θ, φ and output shifters all have neighbours on a 6-mode mesh.
    assert checked > layout.n_modes, f"only {checked} shifters have neighbours"


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_crosstalk_changes_realised_matrix(topology: str) -> None:
    """The realised matrix is the ideal mesh with the crosstalk phases, not without."""
    chip = crosstalk_chip(topology)
    layout = chip.layout
    for index in np.unique(layout.shifter_neighbours()):
        programmed = single_phase(layout, index)
        applied = programmed.copy()
        applied[neighbours_of(layout, index)] = CROSSTALK * SET_PHASE

        chip.phases = programmed
        realised = chip.device().matrix()
        with_crosstalk = RealisedMesh.ideal(layout, applied).matrix()
        without = RealisedMesh.ideal(layout, programmed).matrix()

        np.testing.assert_allclose(realised, with_crosstalk, rtol=0, atol=1e-12)
        # Shifting one shifter by δ changes U by |e^{iδ} − 1| ≈ δ in Frobenius norm,
        # because in a lossless mesh the N unit inputs bring a total power of 1 to it.
        change = np.linalg.norm(realised - without)
        assert change > 0.5 * CROSSTALK * SET_PHASE, f"shifter {index}: {change:.3e}"


# Measured gradients


def measured_error(
    problem: Any,
    loss_correction: bool = False,
    pass_interval_s: float | None = None,
) -> tuple[float, float]:
    """Cosine distance and relative L2 error of the measured gradient of ``problem``.

    The reference is the exact gradient of the devices before the step, at time 0. With
    ``pass_interval_s`` the k-th pass of the hardware order runs at k·interval, so drift
    moves the devices during the step; None keeps the drift at time 0.
    """
    network = problem.network
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, problem.x, problem.targets
    )
    if pass_interval_s is None:
        measured = measure_gradient(
            network, problem.x, problem.targets, loss_correction
        )
    else:
        step = InSituStep(network, problem.x, problem.targets, loss_correction)
        for index, (kind, layer) in enumerate(pass_order(network.n_layers)):
            run_pass(step, kind, layer, index * pass_interval_s)
        measured = step.result()
    return gradient_error(measured.flat(), exact.flat())


UNIFORM_LOSS = HardwareConfig(static=StaticErrors(waveguide_loss_db=0.2))
MZI_LOSS = HardwareConfig(static=StaticErrors(mzi_loss_db=0.3, mzi_loss_db_std=0.1))


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_loss_correction_makes_uniform_loss_exact(
    topology: str, classifier_problem
) -> None:
    _, relative = measured_error(
        classifier_problem(topology, UNIFORM_LOSS), loss_correction=True
    )
    assert relative < 1e-9, f"relative error {relative:.3e}"


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_uncorrected_uniform_loss_deviates(topology: str, classifier_problem) -> None:
    _, relative = measured_error(classifier_problem(topology, UNIFORM_LOSS))
    assert relative > 1e-2, f"relative error {relative:.3e}"


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_loss_correction_leaves_mzi_loss_error(
    topology: str, classifier_problem
) -> None:
    """Per-MZI loss is mode dependent (idle waveguides have none, and the loss varies from
    MZI to MZI), so the nominal correction cannot make the measurement exact."""
    cosine, relative = measured_error(
        classifier_problem(topology, MZI_LOSS), loss_correction=True
    )
    print(
        f"{topology}: corrected cosine distance {cosine:.3e}, relative {relative:.3e}"
    )
    assert cosine > 1e-3, f"cosine distance {cosine:.3e}"


@pytest.mark.parametrize(
    "drift",
    [
        Drift(model="random-walk", std=0.01),
        Drift(model="ornstein-uhlenbeck", std=0.01, correlation_time_s=1.0),
    ],
    ids=["random-walk", "ornstein-uhlenbeck"],
)
def test_drift_error_grows_with_pass_delay(drift: Drift, classifier_problem) -> None:
    """Drift between the forward pass (t = 0) and the adjoint and interference passes
    (t = Δ) makes the gradient error grow with Δ. Each trial uses fresh chips, because
    a chip's drift only moves forward in time."""
    delays_s = [1e-3, 1e-1, 10.0]
    mean_cosine = []
    for delay in delays_s:
        errors = []
        for seed in range(16):
            problem = classifier_problem(
                "triangular", HardwareConfig(drift=drift), seed
            )
            network = problem.network
            exact = exact_gradient(
                network.devices(),
                network.activation,
                network.loss,
                problem.x,
                problem.targets,
            )
            step = InSituStep(network, problem.x, problem.targets)
            for layer in range(network.n_layers):
                step.forward_pass(layer, 0.0)
            for layer in reversed(range(network.n_layers)):
                step.adjoint_pass(layer, delay)
                step.interference_pass(layer, delay)
            cosine, _ = gradient_error(step.result().flat(), exact.flat())
            errors.append(cosine)
        mean_cosine.append(float(np.mean(errors)))

    assert mean_cosine[0] > 0, mean_cosine
    assert mean_cosine[0] < mean_cosine[1] < mean_cosine[2], mean_cosine


SourceBuilder = Callable[[float], HardwareConfig]

# Sources that keep every mesh unitary: the three-pass measurement stays exact for the
# realised device, so their gradient error is rounding error at any strength.
LOSSLESS_SOURCES: dict[str, tuple[SourceBuilder, list[float]]] = {
    "coupler_angle": (
        lambda v: HardwareConfig(static=StaticErrors(coupler_error_std=v)),
        [0.01, 0.03, 0.1, 0.3],
    ),
    "coupler_ratio": (
        lambda v: HardwareConfig(static=StaticErrors(coupler_ratio_std=v)),
        [0.01, 0.03, 0.1, 0.3],
    ),
    "phase_offset": (
        lambda v: HardwareConfig(static=StaticErrors(phase_offset_std=v)),
        [0.01, 0.03, 0.1, 0.3],
    ),
    "heater_gain": (
        lambda v: HardwareConfig(static=StaticErrors(heater_gain_std=v)),
        [0.01, 0.03, 0.1, 0.3],
    ),
    "phase_quantization": (
        lambda v: HardwareConfig(programming=Programming(phase_bits=int(v))),
        [10, 8, 6, 4],
    ),
    "voltage_quantization": (
        lambda v: HardwareConfig(
            programming=Programming(phase_bits=int(v), domain="voltage")
        ),
        [10, 8, 6, 4],
    ),
    "crosstalk": (
        lambda v: HardwareConfig(programming=Programming(crosstalk=v)),
        [0.001, 0.01, 0.1, 0.3],
    ),
}

# Sources that make the mesh mode-dependently lossy or add noise to a pass.
LOSSY_OR_NOISY_SOURCES: dict[str, tuple[SourceBuilder, list[float]]] = {
    "mzi_loss": (
        lambda v: HardwareConfig(static=StaticErrors(mzi_loss_db=v)),
        [0.03, 0.1, 0.3, 1.0],
    ),
    "arm_imbalance": (
        lambda v: HardwareConfig(static=StaticErrors(arm_imbalance_db_std=v)),
        [0.03, 0.1, 0.3, 1.0],
    ),
    "waveguide_loss_uncorrected": (
        lambda v: HardwareConfig(static=StaticErrors(waveguide_loss_db=v)),
        [0.03, 0.1, 0.3, 1.0],
    ),
    "phase_noise": (
        lambda v: HardwareConfig(**every_pass(phase_noise_std=v)),
        [0.001, 0.003, 0.01, 0.03],
    ),
    "input_amplitude": (
        lambda v: HardwareConfig(**every_pass(input_amplitude_error=v)),
        [0.001, 0.003, 0.01, 0.03],
    ),
    "input_phase": (
        lambda v: HardwareConfig(**every_pass(input_phase_error=v)),
        [0.001, 0.003, 0.01, 0.03],
    ),
    "output_amplitude": (
        lambda v: HardwareConfig(**every_pass(output_amplitude_error=v)),
        [0.001, 0.003, 0.01, 0.03],
    ),
    "output_phase": (
        lambda v: HardwareConfig(**every_pass(output_phase_error=v)),
        [0.001, 0.003, 0.01, 0.03],
    ),
    "monitor_noise": (
        lambda v: HardwareConfig(**every_pass(monitor=DetectorConfig.pai2023(v))),
        [1e-4, 1e-3, 1e-2, 1e-1],
    ),
    "drift": (
        lambda v: HardwareConfig(drift=Drift(model="random-walk", std=v)),
        [0.01, 0.03, 0.1, 0.3],
    ),
}

SEEDS = range(8)
# Passes 10 ms apart, so drift moves the devices during a step.
PASS_INTERVAL_S = 0.01


@pytest.mark.parametrize("source", LOSSLESS_SOURCES)
def test_lossless_source_keeps_gradient_exact(source: str, classifier_problem) -> None:
    """Coupler errors, phase offsets, heater gain spread, quantization and crosstalk keep
    every mesh unitary, so the measured gradient equals the exact gradient of the
    realised device at every strength."""
    build, levels = LOSSLESS_SOURCES[source]
    for level in levels:
        worst = max(
            measured_error(
                classifier_problem("triangular", build(level), seed),
                pass_interval_s=PASS_INTERVAL_S,
            )[1]
            for seed in SEEDS
        )
        assert worst < 1e-9, f"{source} at {level}: relative error {worst:.3e}"


@pytest.mark.parametrize("source", LOSSY_OR_NOISY_SOURCES)
def test_source_error_grows_with_strength(source: str, classifier_problem) -> None:
    """Each lossy or noisy source alone gives a nonzero cosine distance that grows over
    four strengths, as a mean over 8 seeds."""
    build, levels = LOSSY_OR_NOISY_SOURCES[source]
    mean_cosine = []
    for level in levels:
        errors = [
            measured_error(
                classifier_problem("triangular", build(level), seed),
                pass_interval_s=PASS_INTERVAL_S,
            )[0]
            for seed in SEEDS
        ]
        mean_cosine.append(float(np.mean(errors)))

    assert mean_cosine[0] > 1e-6, f"{source}: {mean_cosine}"
    assert np.all(np.diff(mean_cosine) > 0), f"{source}: {mean_cosine}"


# Validation and presets

# Each case: how to build the bad input, the text naming the value, and the allowed range.
INVALID_INPUTS: dict[str, tuple[Callable[[], object], str, str]] = {
    "coupler_error_mean_at_quarter_pi": (
        lambda: StaticErrors(coupler_error_mean=np.pi / 4),
        "coupler_error_mean = 0.785398",
        "(-0.785398, 0.785398)",
    ),
    "coupler_error_mean_below_range": (
        lambda: StaticErrors(coupler_error_mean=-1.0),
        "coupler_error_mean = -1.0",
        "(-0.785398, 0.785398)",
    ),
    "coupler_at_quarter_pi": (
        lambda: coupler(np.pi / 4),
        "splitting error 0.785398",
        "(-pi/4, pi/4)",
    ),
    "negative_mzi_loss": (
        lambda: StaticErrors(mzi_loss_db=-0.1),
        "mzi_loss_db = -0.1",
        ">= 0",
    ),
    "negative_waveguide_loss": (
        lambda: StaticErrors(waveguide_loss_db=-0.01),
        "waveguide_loss_db = -0.01",
        ">= 0",
    ),
    "negative_mzi_transfer_loss": (
        lambda: mzi_transfer(0.0, 0.0, loss_db=-1.0),
        "loss -1.0 dB",
        ">= 0 dB",
    ),
    "zero_phase_bits": (
        lambda: Programming(phase_bits=0),
        "phase_bits = 0 ",
        "from 1 to 32",
    ),
    "zero_adc_bits": (
        lambda: DetectorConfig(adc_bits=0),
        "adc_bits = 0 ",
        "from 1 to 32",
    ),
    "crosstalk_of_one": (
        lambda: Programming(crosstalk=1.0),
        "crosstalk = 1.0",
        "[0, 1)",
    ),
    "crosstalk_above_one": (
        lambda: Programming(crosstalk=1.5),
        "crosstalk = 1.5",
        "[0, 1)",
    ),
    "unknown_preset": (
        lambda: hardware_preset("cryogenic"),
        "'cryogenic'",
        ", ".join(HARDWARE_PRESETS),
    ),
    "unknown_preset_in_mapping": (
        lambda: HardwareConfig.from_mapping({"preset": "cryogenic"}),
        "'cryogenic'",
        ", ".join(HARDWARE_PRESETS),
    ),
}


@pytest.mark.parametrize("case", INVALID_INPUTS)
def test_invalid_input_names_value_and_range(case: str) -> None:
    build, value_text, range_text = INVALID_INPUTS[case]
    with pytest.raises(ValueError) as raised:
        build()
    message = str(raised.value)
    assert value_text in message, message
    assert range_text in message, message


def without_none(value: Any) -> Any:
    """Drop None entries from nested dicts, as writing TOML does."""
    if isinstance(value, dict):
        return {
            key: without_none(item) for key, item in value.items() if item is not None
        }
    return value


@pytest.mark.parametrize("name", HARDWARE_PRESETS)
def test_preset_survives_toml_round_trip(name: str) -> None:
    preset = HARDWARE_PRESETS[name]
    mapping = without_none(preset.to_dict())
    assert HardwareConfig.from_mapping(mapping) == preset
