"""Gradient with respect to programmed phases under heater gain spread and crosstalk."""

import numpy as np
import pytest

from photonic.hardware import Chip, HardwareConfig, Programming, StaticErrors
from photonic.insitu import measure_gradient
from photonic.losses import ComplexMSE
from photonic.mesh import MeshLayout
from photonic.network import IdentityActivation, PhotonicNetwork
from photonic.reference import (
    exact_gradient,
    gradient_error,
    network_loss,
    programmed_gradients,
)

PROGRAMMING_ERRORS = HardwareConfig(
    static=StaticErrors(heater_gain_std=0.05, phase_offset_std=0.1),
    programming=Programming(crosstalk=0.03),
)


def make_problem(hardware, seed=3):
    rng = np.random.default_rng(seed)
    chip = Chip(MeshLayout.create(5, "rectangular"), hardware, seed=seed)
    network = PhotonicNetwork([chip], IdentityActivation(), ComplexMSE())
    x = rng.standard_normal((6, 5)) + 1j * rng.standard_normal((6, 5))
    targets = rng.standard_normal((6, 5)) + 1j * rng.standard_normal((6, 5))
    return network, x, targets


def loss_at(network, x, targets):
    return network_loss(network.devices(), network.activation, network.loss, x, targets)


def test_programmed_gradient_matches_finite_differences():
    network, x, targets = make_problem(PROGRAMMING_ERRORS)
    chip = network.chips[0]
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, x, targets
    )
    programmed = programmed_gradients(network.chips, exact.gradients)[0]

    base = chip.phases.copy()
    step = 1e-5
    numeric = np.empty_like(base)
    for index in range(base.size):
        values = []
        for sign in (1.0, -1.0):
            shifted = base.copy()
            shifted[index] += sign * step
            chip.phases = shifted
            values.append(loss_at(network, x, targets))
        numeric[index] = (values[0] - values[1]) / (2 * step)
    chip.phases = base

    error = np.linalg.norm(programmed - numeric) / np.linalg.norm(numeric)
    assert error < 1e-6
    assert np.linalg.norm(exact.gradients[0] - numeric) / np.linalg.norm(numeric) > 1e-3


@pytest.mark.parametrize("crosstalk", [0.0, 0.02])
def test_programmed_gradient_without_spread_is_applied_gradient(crosstalk):
    hardware = HardwareConfig(programming=Programming(crosstalk=crosstalk))
    network, x, targets = make_problem(hardware)
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, x, targets
    )
    programmed = programmed_gradients(network.chips, exact.gradients)[0]
    if crosstalk == 0:
        np.testing.assert_array_equal(programmed, exact.gradients[0])
    else:
        assert not np.allclose(programmed, exact.gradients[0])


def test_measured_gradient_misses_programming_errors():
    # The monitors see the applied phases, so the measured gradient equals the applied
    # gradient but not the gradient with respect to what the controller programs.
    network, x, targets = make_problem(PROGRAMMING_ERRORS)
    measured = measure_gradient(network, x, targets).flat()
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, x, targets
    )
    programmed = np.concatenate(programmed_gradients(network.chips, exact.gradients))
    assert gradient_error(measured, exact.flat())[1] < 1e-9
    assert gradient_error(measured, programmed)[1] > 1e-3
