"""Measured gradients, the digital reference, finite differences and loss adjoints.

Problem (a) is a 3-layer classifier of 4-port meshes and problem (b) a single 6-port mesh
with complex targets. Both are built in conftest.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from photonic.hardware import HardwareConfig, Programming, StaticErrors
from photonic.insitu import measure_gradient
from photonic.losses import ComplexMSE, PowerCrossEntropy
from photonic.mesh import TOPOLOGIES, RealisedMesh
from photonic.reference import (
    exact_gradient,
    finite_difference_gradient,
    gradient_error,
)

LOSSY_COUPLERS = HardwareConfig(
    static=StaticErrors(coupler_error_std=0.05, mzi_loss_db=0.3, mzi_loss_db_std=0.1)
)

# Error sources that keep every mesh lossless, hence unitary.
LOSSLESS_ERRORS = {
    "coupler_errors": HardwareConfig(static=StaticErrors(coupler_error_std=0.05)),
    "phase_offsets": HardwareConfig(static=StaticErrors(phase_offset_std=0.2)),
    "quantization": HardwareConfig(programming=Programming(phase_bits=5)),
}

PROBLEMS = ["classifier_problem", "regression_problem"]


def relative_error(value: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(value - reference) / np.linalg.norm(reference))


def reference_and_differences(problem) -> tuple[np.ndarray, np.ndarray]:
    """Digital reference gradient and central finite differences, both flattened."""
    network = problem.network
    devices = network.devices()
    args = (devices, network.activation, network.loss, problem.x, problem.targets)
    exact = exact_gradient(*args).flat()
    differences = np.concatenate(finite_difference_gradient(*args))
    return exact, differences


def single_mesh_gradient(
    device: RealisedMesh, x: np.ndarray, delta: np.ndarray, adjoint: str
) -> np.ndarray:
    """Gradient −Im(a·b) of one mesh with the adjoint field b from Uᵀδ or from U†δ.

    With V the part of the mesh after a phase shifter, the adjoint field there is Vᵀδ,
    which ``backward(delta)`` records. The conjugate-transpose variant V†δ equals
    conj(Vᵀ·conj(δ)), so it is the conjugate of the fields recorded for conj(δ).
    """
    _, forward_fields = device.forward(x, record=True)
    if adjoint == "transpose":
        _, backward_fields = device.backward(delta, record=True)
        adjoint_fields = backward_fields.stacked()
    elif adjoint == "conjugate_transpose":
        _, backward_fields = device.backward(np.conj(delta), record=True)
        adjoint_fields = np.conj(backward_fields.stacked())
    else:
        raise ValueError(f"adjoint {adjoint!r} is unknown")
    return -np.imag(np.sum(forward_fields.stacked() * adjoint_fields, axis=0))


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("problem_name", PROBLEMS)
def test_ideal_measured_gradient_equals_reference(
    problem_name: str, topology: str, request
) -> None:
    problem = request.getfixturevalue(problem_name)(topology)
    network = problem.network
    measured = measure_gradient(network, problem.x, problem.targets)
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, problem.x, problem.targets
    )
    error = relative_error(measured.flat(), exact.flat())
    assert error < 1e-9, f"relative error {error:.3e}"
    assert measured.loss == pytest.approx(exact.loss, rel=1e-12)
    assert measured.optical_passes == 3 * network.n_layers


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("problem_name", PROBLEMS)
def test_ideal_reference_equals_finite_differences(
    problem_name: str, topology: str, request
) -> None:
    problem = request.getfixturevalue(problem_name)(topology)
    exact, differences = reference_and_differences(problem)
    error = relative_error(exact, differences)
    assert error < 1e-6, f"relative error {error:.3e}"


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_conjugate_adjoint_gives_wrong_gradient(
    topology: str, regression_problem
) -> None:
    problem = regression_problem(topology)
    network = problem.network
    device = network.devices()[0]
    out, _ = device.forward(problem.x)
    _, delta = network.loss.value_and_adjoint(out, problem.targets)
    _, differences = reference_and_differences(problem)

    transpose = single_mesh_gradient(device, problem.x, delta, "transpose")
    conjugate = single_mesh_gradient(device, problem.x, delta, "conjugate_transpose")

    transpose_error = relative_error(transpose, differences)
    conjugate_error = relative_error(conjugate, differences)
    assert transpose_error < 1e-6, f"transpose adjoint error {transpose_error:.3e}"
    assert conjugate_error > 0.1, f"U† adjoint error only {conjugate_error:.3e}"


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_lossy_reference_equals_finite_differences(
    topology: str, classifier_problem
) -> None:
    problem = classifier_problem(topology, LOSSY_COUPLERS)
    assert np.any(problem.network.devices()[0].arm_amplitude < 1)
    exact, differences = reference_and_differences(problem)
    error = relative_error(exact, differences)
    assert error < 1e-6, f"relative error {error:.3e}"


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_lossy_measured_gradient_deviates(topology: str, classifier_problem) -> None:
    # The interference pass assumes the forward image of conj(x_adj) is conj(b), which
    # holds only when every partial mesh is unitary. Per-MZI loss breaks that.
    problem = classifier_problem(topology, LOSSY_COUPLERS)
    network = problem.network
    measured = measure_gradient(network, problem.x, problem.targets)
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, problem.x, problem.targets
    )
    cosine_distance, _ = gradient_error(measured.flat(), exact.flat())
    assert cosine_distance > 1e-4, f"cosine distance {cosine_distance:.3e}"


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("source", LOSSLESS_ERRORS)
def test_lossless_errors_keep_measured_gradient_exact(
    source: str, topology: str, classifier_problem
) -> None:
    problem = classifier_problem(topology, LOSSLESS_ERRORS[source])
    network = problem.network
    measured = measure_gradient(network, problem.x, problem.targets)
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, problem.x, problem.targets
    )
    error = relative_error(measured.flat(), exact.flat())
    assert error < 1e-9, f"relative error {error:.3e}"


def test_gradient_error_closed_forms() -> None:
    exact = np.array([1.0, -2.0, 0.5])
    cosine, relative = gradient_error(2.0 * exact, exact)
    assert abs(cosine) < 1e-15
    assert relative == pytest.approx(1.0, rel=1e-15)

    cosine, relative = gradient_error(-exact, exact)
    assert cosine == pytest.approx(2.0, rel=1e-15)
    assert relative == pytest.approx(2.0, rel=1e-15)

    cosine, _ = gradient_error(np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    assert cosine == pytest.approx(1.0, rel=1e-15)


def adjoint_by_differences(loss, y: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """∂L/∂Re(y) − i·∂L/∂Im(y) by central differences with a step of 1e-6."""
    step = 1e-6
    result = np.zeros_like(y)
    for index in np.ndindex(y.shape):
        for direction, weight in ((1.0, 1.0), (1j, -1j)):
            plus, minus = y.copy(), y.copy()
            plus[index] += direction * step
            minus[index] -= direction * step
            value_plus, _ = loss.value_and_adjoint(plus, targets)
            value_minus, _ = loss.value_and_adjoint(minus, targets)
            result[index] += weight * (value_plus - value_minus) / (2 * step)
    return result


@pytest.mark.parametrize(
    "groups",
    [((0, 1), (2, 3)), None, ((3,), (0, 2))],
    ids=["pairs", "ports", "partial"],
)
def test_cross_entropy_adjoint_matches_differences(groups) -> None:
    rng = np.random.default_rng(21)
    loss = PowerCrossEntropy(n_modes=4, groups=groups)
    y = 0.5 * (rng.standard_normal((6, 4)) + 1j * rng.standard_normal((6, 4)))
    labels = rng.integers(0, loss.n_classes, size=6)
    _, adjoint = loss.value_and_adjoint(y, labels)
    expected = adjoint_by_differences(loss, y, labels)
    np.testing.assert_allclose(adjoint, expected, rtol=0, atol=1e-7)


def test_complex_mse_adjoint_matches_differences() -> None:
    rng = np.random.default_rng(22)
    loss = ComplexMSE()
    y = rng.standard_normal((5, 3)) + 1j * rng.standard_normal((5, 3))
    targets = rng.standard_normal((5, 3)) + 1j * rng.standard_normal((5, 3))
    _, adjoint = loss.value_and_adjoint(y, targets)
    expected = adjoint_by_differences(loss, y, targets)
    np.testing.assert_allclose(adjoint, expected, rtol=0, atol=1e-7)


def test_complex_mse_value_closed_form() -> None:
    y = np.array([[1 + 1j, 0.0], [0.0, 2.0]])
    targets = np.array([[1.0, 0.0], [0.0, 0.0]])
    value, _ = ComplexMSE().value_and_adjoint(y, targets)
    # Σ ½|y − t|² = ½(1 + 4) = 2.5 over a batch of 2.
    assert value == pytest.approx(1.25, rel=1e-15)


def test_cross_entropy_equal_logits_give_log_classes() -> None:
    loss = PowerCrossEntropy(n_modes=4, groups=((0, 1), (2, 3)))
    y = np.full((3, 4), 0.5 + 0j)
    value, _ = loss.value_and_adjoint(y, np.array([0, 1, 0]))
    assert value == pytest.approx(np.log(2), rel=1e-14)


@pytest.mark.parametrize(
    "groups",
    [((0, 0), (1, 2)), ((0,),), ((0, 1), (4,))],
    ids=["repeat", "one", "range"],
)
def test_invalid_cross_entropy_groups_raise(groups) -> None:
    with pytest.raises(ValueError, match="output groups"):
        PowerCrossEntropy(n_modes=4, groups=groups)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_batch_summed_measurement_matches_exact(topology):
    # N = 8 and a batch of 96 are large enough for the batch-sum sweep path.
    from photonic.hardware import Chip
    from photonic.mesh import MeshLayout
    from photonic.network import AbsActivation, PhotonicNetwork
    from photonic.sweep import sweep_pays_off

    assert sweep_pays_off(8, 96)
    lossy = HardwareConfig(static=StaticErrors(coupler_error_std=0.05, mzi_loss_db=0.2))
    chips = [Chip(MeshLayout.create(8, topology), lossy, seed=s) for s in (1, 2)]
    network = PhotonicNetwork(
        chips, AbsActivation(), PowerCrossEntropy(8, ((0, 1, 2, 3), (4, 5, 6, 7)))
    )
    rng = np.random.default_rng(4)
    x = rng.standard_normal((96, 8)) + 1j * rng.standard_normal((96, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = rng.integers(0, 2, 96)
    summed = measure_gradient(network, x, labels, summed_monitors=True).flat()
    recorded = measure_gradient(network, x, labels, summed_monitors=False).flat()
    np.testing.assert_allclose(
        summed, recorded, rtol=0, atol=1e-12 * np.abs(recorded).max()
    )
    ideal = [
        Chip(MeshLayout.create(8, topology), HardwareConfig(), seed=s) for s in (1, 2)
    ]
    network = PhotonicNetwork(ideal, network.activation, network.loss)
    measured = measure_gradient(network, x, labels).flat()
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, x, labels
    ).flat()
    assert np.linalg.norm(measured - exact) / np.linalg.norm(exact) < 1e-9


def analog_problem(hardware):
    from photonic.hardware import Chip
    from photonic.mesh import MeshLayout
    from photonic.network import AbsActivation, PhotonicNetwork

    chips = [
        Chip(MeshLayout.create(4, "triangular"), hardware, seed=s) for s in range(3)
    ]
    network = PhotonicNetwork(
        chips, AbsActivation(), PowerCrossEntropy(4, ((0, 1), (2, 3)))
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 4)) + 0j
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return network, x, rng.integers(0, 2, 16)


@pytest.mark.parametrize(
    ("static", "correction"),
    [(StaticErrors(), False), (StaticErrors(waveguide_loss_db=0.1), True)],
)
def test_analog_subtraction_is_exact(static, correction):
    network, x, labels = analog_problem(HardwareConfig(static=static))
    result = measure_gradient(
        network, x, labels, loss_correction=correction, analog_subtraction=True
    )
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, x, labels
    )
    assert result.optical_passes == 12
    assert gradient_error(result.flat(), exact.flat())[1] < 1e-9


def test_analog_subtraction_removes_adjoint_power_bias():
    network, x, labels = analog_problem(
        HardwareConfig(static=StaticErrors(mzi_loss_db=0.25))
    )
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, x, labels
    ).flat()
    three = measure_gradient(network, x, labels).flat()
    four = measure_gradient(network, x, labels, analog_subtraction=True).flat()
    assert gradient_error(four, exact)[1] < 0.5 * gradient_error(three, exact)[1]
