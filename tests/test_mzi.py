"""Closed-form checks of the directional coupler and MZI transfer matrices."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from photonic.mzi import coupler, mzi_transfer, splitting_error_from_ratio

THETA_GRID = np.linspace(0.0, 2 * np.pi, 721)


def bar_power(theta: float, splitting_error: float) -> float:
    """Power left in the top port of an MZI fed in its top port, both couplers at ε."""
    transfer = mzi_transfer(theta, 0.0, (splitting_error, splitting_error))
    return float(np.abs(transfer[0, 0]) ** 2)


def test_cross_state_at_zero_phases() -> None:
    transfer = mzi_transfer(0.0, 0.0)
    expected = np.array([[0, 1j], [1j, 0]])
    np.testing.assert_allclose(transfer, expected, rtol=0, atol=1e-15)


def test_bar_state_at_theta_pi() -> None:
    transfer = mzi_transfer(np.pi, 0.0)
    expected = np.diag([-1.0, 1.0])
    np.testing.assert_allclose(transfer, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("phi", [0.0, 0.7, 2.9])
@pytest.mark.parametrize("port", [0, 1])
def test_cross_power_is_cos_squared_half_theta(phi: float, port: int) -> None:
    cross = np.array(
        [np.abs(mzi_transfer(theta, phi)[1 - port, port]) ** 2 for theta in THETA_GRID]
    )
    np.testing.assert_allclose(cross, np.cos(THETA_GRID / 2) ** 2, rtol=0, atol=1e-14)


def test_lossless_mzi_is_unitary() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        theta, phi = rng.uniform(0, 2 * np.pi, 2)
        errors = tuple(rng.uniform(-0.3, 0.3, 2))
        transfer = mzi_transfer(theta, phi, errors)
        np.testing.assert_allclose(
            transfer.conj().T @ transfer, np.eye(2), rtol=0, atol=1e-14
        )


@pytest.mark.parametrize("ratio", [0.5, 0.45, 0.4, 0.1, 0.9])
def test_coupler_cross_power_equals_splitting_ratio(ratio: float) -> None:
    matrix = coupler(float(splitting_error_from_ratio(ratio)))
    assert abs(np.abs(matrix[1, 0]) ** 2 - ratio) < 1e-15
    assert abs(np.abs(matrix[0, 1]) ** 2 - ratio) < 1e-15
    np.testing.assert_allclose(matrix.conj().T @ matrix, np.eye(2), rtol=0, atol=1e-15)


@pytest.mark.parametrize(("ratio", "floor"), [(0.5, 0.0), (0.45, 0.01), (0.4, 0.04)])
def test_min_bar_power_with_unbalanced_couplers(ratio: float, floor: float) -> None:
    # With both couplers at cross ratio r, T[0, 0] = (1 − r)·e^{iθ} − r, whose smallest
    # magnitude over θ is |1 − 2r|. So the MZI cannot reach a full cross state.
    assert abs((1 - 2 * ratio) ** 2 - floor) < 1e-15
    error = float(splitting_error_from_ratio(ratio))

    grid = np.array([bar_power(theta, error) for theta in THETA_GRID + 0.0013])
    assert grid.min() >= floor - 1e-12, f"bar power {grid.min()} below {floor}"

    # Start the bounded search off the minimiser θ = 0 so it has to find it.
    found = minimize_scalar(
        bar_power,
        bounds=(-1.0, 2.5),
        args=(error,),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert abs(found.fun - floor) < 1e-9, f"minimum bar power {found.fun}, not {floor}"


@pytest.mark.parametrize("port", [0, 1])
@pytest.mark.parametrize("errors", [(0.0, 0.0), (0.08, -0.05)])
def test_one_db_loss_transmits_fixed_fraction(
    port: int, errors: tuple[float, float]
) -> None:
    expected = 10 ** (-0.1)
    assert abs(expected - 0.7943) < 1e-4
    rng = np.random.default_rng(port)
    for theta, phi in rng.uniform(0, 2 * np.pi, (40, 2)):
        transfer = mzi_transfer(theta, phi, errors, loss_db=1.0)
        transmitted = np.sum(np.abs(transfer[:, port]) ** 2)
        assert abs(transmitted - expected) < 1e-14, (theta, phi, transmitted)


def test_negative_loss_raises_naming_value() -> None:
    with pytest.raises(ValueError, match=r"-1\.5 dB"):
        mzi_transfer(0.3, 0.1, loss_db=-1.5)


@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.5, -0.2])
def test_splitting_ratio_outside_unit_interval_raises(ratio: float) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(ratio))):
        splitting_error_from_ratio(ratio)


@pytest.mark.parametrize("error", [np.pi / 4, -np.pi / 4, 1.0])
def test_coupler_error_outside_quarter_pi_raises(error: float) -> None:
    with pytest.raises(ValueError, match=re.escape(str(error))):
        coupler(error)
