"""SVD layers: programming from a weight matrix, the extended device, and its gradients."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest

from photonic.detection import DetectorConfig
from photonic.hardware import Chip, Drift, HardwareConfig, PassErrors, StaticErrors
from photonic.insitu import measure_gradient
from photonic.losses import ComplexMSE, PowerCrossEntropy
from photonic.mesh import MeshLayout
from photonic.mzi import QUARTER_PI, mzi_transfer
from photonic.network import AbsActivation, IdentityActivation, PhotonicNetwork
from photonic.reference import exact_gradient, finite_difference_gradient
from photonic.svd import SVDChip, SVDDevice, attenuator_phases

IDEAL = HardwareConfig()
LOSSY = HardwareConfig(
    static=StaticErrors(
        coupler_error_std=0.05,
        phase_offset_std=0.1,
        mzi_loss_db=0.3,
        mzi_loss_db_std=0.1,
        arm_imbalance_db_std=0.05,
        waveguide_loss_db=0.02,
    )
)
WAVEGUIDE_LOSS_DB = 0.1
UNIFORM_LOSS = HardwareConfig(static=StaticErrors(waveguide_loss_db=WAVEGUIDE_LOSS_DB))
SHAPES = [(3, 5), (5, 3), (4, 4)]


def complex_matrix(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    return rng.standard_normal((rows, cols)) + 1j * rng.standard_normal((rows, cols))


def random_weights(seed: int, rows: int, cols: int) -> np.ndarray:
    return complex_matrix(np.random.default_rng(seed), rows, cols)


def complex_with_norm_three() -> np.ndarray:
    matrix = random_weights(1, 4, 4)
    return 3.0 * matrix / np.linalg.norm(matrix, 2)


WEIGHTS: dict[str, Callable[[], np.ndarray]] = {
    "sparse_4x5": lambda: np.array(
        [
            [0.0, 1.5, 0.0, 0.0, -2.0],
            [0.0, 0.0, 0.0, 0.5, 0.0],
            [3.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, -1.0, 0.0, 0.0],
        ]
    ),
    "rank_deficient_2x2": lambda: np.array([[1.0, 2.0], [2.0, 4.0]]),
    "zero_3x3": lambda: np.zeros((3, 3)),
    "diagonal_2_2_1": lambda: np.diag([2.0, 2.0, 1.0]),
    "complex_4x4_norm_3": complex_with_norm_three,
    "real_3x2": lambda: np.random.default_rng(2).standard_normal((3, 2)),
    "real_2x3": lambda: np.random.default_rng(3).standard_normal((2, 3)),
}


def relative_error(value: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(value - reference) / np.linalg.norm(reference))


def unit_fields(seed: int, batch: int, width: int) -> np.ndarray:
    fields = complex_matrix(np.random.default_rng(seed), batch, width)
    return fields / np.linalg.norm(fields, axis=1, keepdims=True)


def svd_device(shape: tuple[int, int], hardware: HardwareConfig, seed: int = 4):
    """Realised SVD layer programmed to a random complex matrix of ``shape`` (M, N)."""
    chip = SVDChip.from_matrix(random_weights(seed, *shape), hardware, seed=seed)
    return chip, chip.device()


# Programming from a weight matrix


@pytest.mark.parametrize("name", WEIGHTS)
def test_from_matrix_reproduces_weights(name: str) -> None:
    weights = WEIGHTS[name]()
    rows, cols = weights.shape
    chip = SVDChip.from_matrix(weights, IDEAL, seed=5)
    device = chip.device()
    x = unit_fields(6, 7, cols)

    main_block = device.extended_matrix()[:rows, :cols]
    via_block = chip.output_scale * (main_block @ x.T)
    assert np.max(np.abs(via_block - weights @ x.T)) < 1e-12

    via_forward, _ = device.forward(x)
    assert np.max(np.abs(via_forward - x @ weights.T)) < 1e-12


@pytest.mark.parametrize("name", WEIGHTS)
def test_output_scale_is_largest_singular_value(name: str) -> None:
    weights = WEIGHTS[name]()
    chip = SVDChip.from_matrix(weights, IDEAL, seed=5)
    assert chip.output_scale == pytest.approx(np.linalg.norm(weights, 2), abs=1e-12)


def test_zero_matrix_dark_without_warnings() -> None:
    x = unit_fields(1, 3, 3)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        chip = SVDChip.from_matrix(np.zeros((3, 3)), IDEAL, seed=2)
        device = chip.device()
        out, _ = device.forward(x)
        transmissions = device.attenuators.bar_transmissions()

    assert chip.output_scale == 0.0
    assert np.all(np.isfinite(chip.phases))
    assert np.all(out == 0)
    assert np.max(np.abs(transmissions)) < 1e-15


@pytest.mark.parametrize("transmission", [0.0, 0.25, 0.5, np.sqrt(0.5), 0.9, 1.0])
def test_attenuator_phases_give_real_bar_amplitude(transmission: float) -> None:
    theta, phi = attenuator_phases(np.array([transmission]))
    transfer = mzi_transfer(theta, phi)
    assert abs(transfer[0, 0] - transmission) < 1e-15
    assert abs(transfer[1, 0]) ** 2 == pytest.approx(1 - transmission**2, abs=1e-15)


@pytest.mark.parametrize("transmission", [-0.1, 1.1, np.nan])
def test_attenuator_phases_reject_gain_and_nan(transmission: float) -> None:
    with pytest.raises(ValueError, match="passive"):
        attenuator_phases(np.array([transmission]))


def test_attenuator_stage_matches_mzi_transfer() -> None:
    hardware = HardwareConfig(
        static=StaticErrors(
            coupler_error_std=0.05, phase_offset_std=0.1, mzi_loss_db=0.4
        )
    )
    chip = SVDChip.from_matrix(random_weights(8, 3, 4), hardware, seed=8)
    stage = chip.attenuator_chip.device()
    r = stage.layout.n_attenuators
    from_main_u, from_main_dump, _ = stage.forward(np.eye(4)[:r], np.zeros((r, 3)))
    from_aux_u, from_aux_dump, _ = stage.forward(np.zeros((r, 4)), np.eye(3)[:r])

    for k in range(r):
        expected = mzi_transfer(
            stage.phases[k],
            stage.phases[r + k],
            tuple(stage.coupler_angles[:, k] - QUARTER_PI),
            -20 * np.log10(stage.arm_amplitude[0, k]),
        )
        assert abs(from_main_u[k, k] - expected[0, 0]) < 1e-15
        assert abs(from_main_dump[k, k] - expected[1, 0]) < 1e-15
        assert abs(from_aux_u[k, k] - expected[0, 1]) < 1e-15
        assert abs(from_aux_dump[k, k] - expected[1, 1]) < 1e-15


@pytest.mark.parametrize(
    "weights",
    [np.ones((1, 3)), np.ones((3, 1)), np.ones((2, 2, 2)), np.array([[1, np.nan]] * 2)],
    ids=["one_row", "one_column", "three_dimensional", "nan"],
)
def test_from_matrix_rejects_invalid_weights(weights: np.ndarray) -> None:
    with pytest.raises(ValueError, match="weight"):
        SVDChip.from_matrix(weights, IDEAL, seed=0)


def test_constructor_rejects_negative_output_scale() -> None:
    with pytest.raises(ValueError, match="output_scale"):
        SVDChip(3, 2, IDEAL, seed=0, output_scale=-1.0)


# The extended device


@pytest.mark.parametrize("n_outputs, n_inputs", SHAPES)
def test_port_and_phase_counts(n_outputs: int, n_inputs: int) -> None:
    chip, device = svd_device((n_outputs, n_inputs), IDEAL)
    r = min(n_inputs, n_outputs)
    assert chip.n_inputs == n_inputs
    assert chip.n_outputs == n_outputs
    assert chip.n_ports == n_inputs + n_outputs
    assert chip.n_phases == n_inputs**2 + 2 * r + n_outputs**2
    assert device.extended_matrix().shape == (n_inputs + n_outputs,) * 2
    adjoint, fields = device.backward(np.ones((2, n_outputs)), record=True)
    assert adjoint.shape == (2, n_inputs + n_outputs)
    assert fields.stacked().shape == (2, chip.n_phases)


@pytest.mark.parametrize("n_outputs, n_inputs", SHAPES)
def test_ideal_extended_device_is_unitary(n_outputs: int, n_inputs: int) -> None:
    _, device = svd_device((n_outputs, n_inputs), IDEAL)
    extended = device.extended_matrix()
    identity = np.eye(n_inputs + n_outputs)
    assert np.max(np.abs(extended.conj().T @ extended - identity)) < 1e-12
    assert np.max(np.abs(extended @ extended.conj().T - identity)) < 1e-12


@pytest.mark.parametrize("n_outputs, n_inputs", SHAPES)
def test_lossy_extended_device_is_passive(n_outputs: int, n_inputs: int) -> None:
    _, device = svd_device((n_outputs, n_inputs), LOSSY)
    singular = np.linalg.svd(device.extended_matrix(), compute_uv=False)
    assert singular.max() <= 1 + 1e-12
    assert singular.max() < 0.99


@pytest.mark.parametrize("n_outputs, n_inputs", SHAPES)
def test_extended_device_is_reciprocal(n_outputs: int, n_inputs: int) -> None:
    _, device = svd_device((n_outputs, n_inputs), LOSSY)
    extended = device.extended_matrix()
    backward_rows, _ = device.extended_backward(np.eye(n_inputs + n_outputs))
    assert np.max(np.abs(backward_rows - extended)) < 1e-12


@pytest.mark.parametrize("n_outputs, n_inputs", SHAPES)
def test_waveguide_loss_is_uniform_over_paths(n_outputs: int, n_inputs: int) -> None:
    chip, device = svd_device((n_outputs, n_inputs), UNIFORM_LOSS)
    columns = chip.v_chip.layout.depth + 1 + chip.u_chip.layout.depth
    power = 10 ** (-WAVEGUIDE_LOSS_DB * columns / 10)
    extended = device.extended_matrix()
    identity = np.eye(n_inputs + n_outputs)
    assert np.max(np.abs(extended.conj().T @ extended - power * identity)) < 1e-12


def test_forward_pads_dark_auxiliary_inputs() -> None:
    chip, device = svd_device((3, 4), LOSSY)
    x = unit_fields(3, 5, 4)
    padded = np.concatenate([x, np.zeros((5, 3))], axis=1)
    out, _ = device.forward(x)
    extended_out, _ = device.extended_forward(padded)
    padded_out, _ = device.forward(padded)
    assert out.shape == (5, 3)
    assert np.max(np.abs(out - chip.output_scale * extended_out[:, :3])) < 1e-15
    assert np.max(np.abs(padded_out - out)) < 1e-15


def test_forward_of_single_vector_returns_vector() -> None:
    _, device = svd_device((3, 4), IDEAL)
    x = unit_fields(3, 1, 4)
    single, _ = device.forward(x[0])
    batch, _ = device.forward(x)
    assert single.shape == (3,)
    assert np.max(np.abs(single - batch[0])) < 1e-15


def test_backward_is_transpose_of_forward() -> None:
    _, device = svd_device((3, 4), LOSSY)
    x = unit_fields(5, 1, 7)[0]
    y = unit_fields(6, 1, 3)[0]
    forward_out, _ = device.forward(x)
    backward_out, _ = device.backward(y)
    assert np.sum(backward_out * x) == pytest.approx(np.sum(y * forward_out), abs=1e-12)


@pytest.mark.parametrize(
    "method, width", [("forward", 5), ("forward", 3), ("backward", 7)]
)
def test_device_rejects_wrong_width(method: str, width: int) -> None:
    _, device = svd_device((3, 4), IDEAL)
    with pytest.raises(ValueError, match="shape"):
        getattr(device, method)(np.ones((2, width)))


def test_device_with_phases_round_trips() -> None:
    _, device = svd_device((3, 4), LOSSY)
    shifted = device.phases + 0.1
    moved = device.with_phases(shifted)
    assert isinstance(moved, SVDDevice)
    assert np.array_equal(moved.phases, shifted)
    assert np.array_equal(moved.with_phases(device.phases).matrix(), device.matrix())


# The chip interface


def test_phase_vector_concatenates_parts_in_order() -> None:
    chip, _ = svd_device((3, 4), IDEAL)
    v_part, attenuator_part, u_part = chip.phase_slices()
    assert np.array_equal(chip.phases[v_part], chip.v_chip.phases)
    assert np.array_equal(chip.phases[attenuator_part], chip.attenuator_chip.phases)
    assert np.array_equal(chip.phases[u_part], chip.u_chip.phases)
    assert (v_part.stop, attenuator_part.stop, u_part.stop) == (16, 22, 31)


def test_output_phase_indices_are_last_of_u_mesh() -> None:
    chip, _ = svd_device((3, 4), IDEAL)
    assert np.array_equal(chip.output_phase_indices, [28, 29, 30])


def test_phases_setter_programs_every_part() -> None:
    chip, _ = svd_device((3, 4), IDEAL)
    new = np.linspace(0.0, 3.0, chip.n_phases)
    chip.phases = new
    assert np.array_equal(chip.phases, new)
    assert np.array_equal(chip.device().phases, new)


def test_phases_setter_rejects_wrong_length() -> None:
    chip, _ = svd_device((3, 4), IDEAL)
    with pytest.raises(ValueError, match="needs \\(31,\\)"):
        chip.phases = np.zeros(30)


def test_default_attenuators_transmit_fully() -> None:
    chip = SVDChip(4, 3, IDEAL, seed=1, initialization="haar")
    transmissions = chip.device().attenuators.bar_transmissions()
    assert np.max(np.abs(transmissions - 1)) < 1e-15


def test_pass_device_advances_drift_of_every_part() -> None:
    hardware = HardwareConfig(drift=Drift(model="random-walk", std=0.01))
    chip, _ = svd_device((3, 4), hardware)
    chip.pass_device("forward", 2.0)
    assert [part.drift.time_s for part in chip.chips] == [2.0, 2.0, 2.0]


def test_read_monitors_are_exact_when_ideal() -> None:
    chip, _ = svd_device((3, 4), IDEAL)
    power = np.random.default_rng(0).random((2, chip.n_phases))
    assert np.array_equal(chip.read_monitors(power, "adjoint"), power)


def test_output_adc_sees_light_before_scaling() -> None:
    # Guided power 1.0 reads full scale, so the scaled outputs (power up to 9) would clip.
    detector = DetectorConfig(adc_bits=12)
    hardware = HardwareConfig(forward=PassErrors(output_detector=detector))
    chip = SVDChip(4, 3, hardware, seed=9, output_scale=3.0)
    light = unit_fields(1, 5, 3)

    measured = chip.measure_fields(3.0 * light, "forward")

    # A reading is off by at most half an ADC step in power, sqrt(0.5/4095) in amplitude.
    amplitude_error = np.abs(np.abs(measured) - 3.0 * np.abs(light))
    assert np.max(amplitude_error) < 3.0 * np.sqrt(0.5 / 4095)
    assert np.max(np.abs(np.angle(measured / light))) < 1e-12


def test_zero_scale_measures_zero_outputs() -> None:
    chip = SVDChip(4, 3, IDEAL, seed=9, output_scale=0.0)
    measured = chip.measure_fields(np.zeros((2, 3)), "forward")
    assert np.array_equal(measured, np.zeros((2, 3)))


def test_nominal_power_factors_follow_the_light_path() -> None:
    mzi_db, waveguide_db = 0.3, 0.05
    hardware = HardwareConfig(
        static=StaticErrors(mzi_loss_db=mzi_db, waveguide_loss_db=waveguide_db)
    )
    chip, _ = svd_device((3, 4), hardware)
    factors = chip.nominal_power_factors()
    column_db = mzi_db + waveguide_db
    v_depth = chip.v_chip.layout.depth
    _, attenuator_part, u_part = chip.phase_slices()

    assert factors.shape == (chip.n_phases,)
    attenuator_theta = factors[attenuator_part.start]
    attenuator_phi = factors[attenuator_part.start + 3]
    assert attenuator_theta == pytest.approx(
        10 ** (-(v_depth * column_db + mzi_db) / 10)
    )
    assert attenuator_phi == pytest.approx(10 ** (-v_depth * column_db / 10))
    assert factors[u_part][-1] == pytest.approx(
        10 ** (-(v_depth + 1 + chip.u_chip.layout.depth) * column_db / 10)
    )


# Gradients in a network


def regression_4_to_3(hardware: HardwareConfig):
    chip = SVDChip.from_matrix(random_weights(21, 3, 4), hardware, seed=21)
    network = PhotonicNetwork([chip], IdentityActivation(), ComplexMSE())
    return network, unit_fields(22, 5, 4), unit_fields(23, 5, 3)


def classifier_4_4_2(hardware: HardwareConfig):
    chips = [
        SVDChip.from_matrix(random_weights(31, 4, 4), hardware, seed=31),
        SVDChip.from_matrix(random_weights(32, 2, 4), hardware, seed=32),
    ]
    network = PhotonicNetwork(chips, AbsActivation(), PowerCrossEntropy(n_modes=2))
    labels = np.random.default_rng(33).integers(0, 2, size=6)
    return network, unit_fields(34, 6, 4), labels


def linear_3_5_2(hardware: HardwareConfig):
    chips = [
        SVDChip.from_matrix(random_weights(41, 5, 3), hardware, seed=41),
        SVDChip.from_matrix(random_weights(42, 2, 5), hardware, seed=42),
    ]
    network = PhotonicNetwork(chips, IdentityActivation(), ComplexMSE())
    return network, unit_fields(43, 4, 3), unit_fields(44, 4, 2)


def mesh_then_svd(hardware: HardwareConfig):
    chips = [
        Chip(MeshLayout.create(4), hardware, seed=51),
        SVDChip.from_matrix(random_weights(52, 2, 4), hardware, seed=52),
    ]
    network = PhotonicNetwork(chips, AbsActivation(), ComplexMSE())
    return network, unit_fields(53, 4, 4), unit_fields(54, 4, 2)


PROBLEMS = {
    "regression_4_to_3": regression_4_to_3,
    "classifier_4_4_2": classifier_4_4_2,
    "linear_3_5_2": linear_3_5_2,
    "mesh_then_svd": mesh_then_svd,
}


def reference_gradients(network: PhotonicNetwork, x: np.ndarray, targets: np.ndarray):
    args = (network.devices(), network.activation, network.loss, x, targets)
    exact = exact_gradient(*args)
    differences = np.concatenate(finite_difference_gradient(*args))
    return exact, differences


@pytest.mark.parametrize("problem", PROBLEMS)
def test_ideal_measured_gradient_equals_reference(problem: str) -> None:
    network, x, targets = PROBLEMS[problem](IDEAL)
    measured = measure_gradient(network, x, targets)
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, x, targets
    )
    error = relative_error(measured.flat(), exact.flat())
    assert error < 1e-9, f"relative error {error:.3e}"
    assert measured.loss == pytest.approx(exact.loss, rel=1e-12)


@pytest.mark.parametrize("problem", PROBLEMS)
def test_ideal_reference_equals_finite_differences(problem: str) -> None:
    network, x, targets = PROBLEMS[problem](IDEAL)
    exact, differences = reference_gradients(network, x, targets)
    error = relative_error(exact.flat(), differences)
    assert error < 1e-6, f"relative error {error:.3e}"


@pytest.mark.parametrize("problem", PROBLEMS)
def test_lossy_reference_equals_finite_differences(problem: str) -> None:
    network, x, targets = PROBLEMS[problem](LOSSY)
    exact, differences = reference_gradients(network, x, targets)
    error = relative_error(exact.flat(), differences)
    assert error < 1e-6, f"relative error {error:.3e}"


def test_measured_gradient_reaches_every_part() -> None:
    network, x, targets = regression_4_to_3(IDEAL)
    chip = network.chips[0]
    measured = measure_gradient(network, x, targets).flat()
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, x, targets
    ).flat()
    for part in chip.phase_slices():
        assert np.linalg.norm(exact[part]) > 1e-2
        assert relative_error(measured[part], exact[part]) < 1e-9


@pytest.mark.parametrize("problem", ["regression_4_to_3", "linear_3_5_2"])
def test_loss_correction_is_exact_for_waveguide_loss(problem: str) -> None:
    network, x, targets = PROBLEMS[problem](UNIFORM_LOSS)
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, x, targets
    ).flat()
    corrected = measure_gradient(network, x, targets, loss_correction=True).flat()
    uncorrected = measure_gradient(network, x, targets).flat()
    assert relative_error(corrected, exact) < 1e-9
    assert relative_error(uncorrected, exact) > 1e-2


def test_zero_layer_has_zero_gradient() -> None:
    chip = SVDChip.from_matrix(np.zeros((2, 3)), IDEAL, seed=3)
    network = PhotonicNetwork([chip], IdentityActivation(), ComplexMSE())
    x, targets = unit_fields(1, 4, 3), unit_fields(2, 4, 2)
    measured = measure_gradient(network, x, targets).flat()
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, x, targets
    ).flat()
    assert np.all(np.isfinite(measured))
    assert np.max(np.abs(measured)) < 1e-15
    assert np.max(np.abs(exact)) == 0.0
