"""Tests for programming rectangular and triangular meshes from a unitary matrix."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.linalg import dft
from scipy.stats import unitary_group

from photonic.decompose import (
    UNITARITY_TOLERANCE,
    _move_phases_through_mzi,
    _wrap_phase,
    check_unitary,
    decompose,
    decompose_clements,
    decompose_reck,
    program_mesh,
)
from photonic.mesh import TOPOLOGIES, MeshLayout, RealisedMesh
from photonic.mzi import mzi_transfer

SQRT2 = np.sqrt(2.0)

SPECIAL_MATRICES = {
    "identity": np.eye(4),
    "cyclic_permutation": np.roll(np.eye(4), 1, axis=0),
    "dft_8": dft(8, scale="sqrtn"),
    "sparse_hadamard": np.array(
        [
            [1, 0, 0, 1],
            [0, SQRT2, 0, 0],
            [1, 0, 0, -1],
            [0, 0, SQRT2, 0],
        ]
    )
    / SQRT2,
}


def realised_matrix(matrix: np.ndarray, topology: str) -> np.ndarray:
    layout = MeshLayout.create(matrix.shape[0], topology)
    phases = decompose(matrix, topology)
    return RealisedMesh.ideal(layout, phases).matrix()


def thetas(matrix: np.ndarray, topology: str) -> np.ndarray:
    layout = MeshLayout.create(matrix.shape[0], topology)
    theta, _, _ = layout.split_phases(decompose(matrix, topology))
    return theta


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", range(2, 17))
def test_haar_round_trip(n: int, topology: str) -> None:
    unitary = unitary_group.rvs(n, random_state=1000 + n)
    error = np.max(np.abs(realised_matrix(unitary, topology) - unitary))
    assert error < 1e-12


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_haar_round_trip_64_modes(topology: str) -> None:
    unitary = unitary_group.rvs(64, random_state=64)
    error = np.max(np.abs(realised_matrix(unitary, topology) - unitary))
    assert error < 1e-10


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("name", SPECIAL_MATRICES)
def test_special_matrix_without_warnings(name: str, topology: str) -> None:
    unitary = SPECIAL_MATRICES[name]
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        phases = decompose(unitary, topology)
        layout = MeshLayout.create(unitary.shape[0], topology)
        realised = RealisedMesh.ideal(layout, phases).matrix()

    assert np.all(np.isfinite(phases))
    assert np.max(np.abs(realised - unitary)) < 1e-12


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", range(2, 9))
def test_identity_sets_every_mzi_bar(n: int, topology: str) -> None:
    theta = thetas(np.eye(n), topology)
    assert np.all(theta == np.pi)


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", range(2, 9))
def test_diagonal_phases_set_every_mzi_bar(n: int, topology: str) -> None:
    rng = np.random.default_rng(n)
    unitary = np.diag(np.exp(1j * rng.uniform(0, 2 * np.pi, n)))
    theta = thetas(unitary, topology)
    error = np.max(np.abs(realised_matrix(unitary, topology) - unitary))
    assert np.all(theta == np.pi)
    assert error < 1e-12


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", range(2, 9))
def test_reversal_sets_every_mzi_cross(n: int, topology: str) -> None:
    reversal = np.eye(n)[::-1]
    theta = thetas(reversal, topology)
    error = np.max(np.abs(realised_matrix(reversal, topology) - reversal))
    assert np.all(theta == 0.0)
    assert error < 1e-12


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_phases_lie_in_documented_ranges(topology: str) -> None:
    unitary = unitary_group.rvs(9, random_state=9)
    layout = MeshLayout.create(9, topology)
    theta, phi, psi = layout.split_phases(decompose(unitary, topology))
    assert np.all((theta >= 0) & (theta <= np.pi))
    assert np.all((phi >= 0) & (phi < 2 * np.pi))
    assert np.all((psi >= 0) & (psi < 2 * np.pi))


def test_phase_moves_through_mzi() -> None:
    rng = np.random.default_rng(7)
    for theta, phi, alpha, beta in rng.uniform(0, 2 * np.pi, (20, 4)):
        phi_out, alpha_out, beta_out = _move_phases_through_mzi(theta, phi, alpha, beta)
        before = np.linalg.inv(mzi_transfer(theta, phi)) @ np.diag(
            np.exp(1j * np.array([alpha, beta]))
        )
        after = np.diag(np.exp(1j * np.array([alpha_out, beta_out]))) @ mzi_transfer(
            theta, phi_out
        )
        assert np.max(np.abs(before - after)) < 1e-14


def test_wrap_phase_maps_into_range() -> None:
    wrapped = _wrap_phase(np.array([-1e-17, 2 * np.pi, -np.pi, 7.0]))
    assert wrapped[0] == 0.0
    assert wrapped[1] == 0.0
    assert wrapped[2] == np.pi
    assert wrapped[3] == 7.0 - 2 * np.pi


def test_named_decompositions_match_topologies() -> None:
    unitary = unitary_group.rvs(5, random_state=5)
    assert np.array_equal(
        decompose_clements(unitary), decompose(unitary, "rectangular")
    )
    assert np.array_equal(decompose_reck(unitary), decompose(unitary, "triangular"))


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_program_mesh_returns_matching_layout(topology: str) -> None:
    unitary = unitary_group.rvs(6, random_state=6)
    layout, phases = program_mesh(unitary, topology)
    assert layout.n_modes == 6
    assert layout.topology == topology
    assert phases.shape == (36,)
    realised = RealisedMesh.ideal(layout, phases).matrix()
    assert np.max(np.abs(realised - unitary)) < 1e-12


def test_unknown_topology_rejected() -> None:
    with pytest.raises(ValueError, match="topology 'hexagonal' is unknown"):
        decompose(np.eye(3), "hexagonal")


def test_scaled_identity_reports_deviation() -> None:
    # |1.01² − 1| = 0.0201 on every diagonal entry of U†U − I.
    with pytest.raises(ValueError, match=r"not unitary.*2\.010e-02") as error:
        decompose(1.01 * np.eye(4))
    assert f"{UNITARITY_TOLERANCE:.3e}" in str(error.value)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_random_matrix_reports_deviation(topology: str) -> None:
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
    deviation = np.max(np.abs(matrix.conj().T @ matrix - np.eye(4)))
    with pytest.raises(ValueError, match="not unitary") as error:
        decompose(matrix, topology)
    assert f"{deviation:.3e}" in str(error.value)


def test_tolerance_sets_acceptance() -> None:
    # The (0, 0) entry of U†U − I is 2e-6 + 1e-12.
    matrix = np.diag([1 + 1e-6, 1.0, 1.0])
    with pytest.raises(ValueError, match="2.000e-06"):
        check_unitary(matrix)
    accepted = check_unitary(matrix, tol=1e-5)
    assert np.array_equal(accepted, matrix)


def test_check_unitary_returns_complex_copy() -> None:
    matrix = np.eye(3)
    checked = check_unitary(matrix)
    checked[0, 0] = 5.0
    assert checked.dtype == np.complex128
    assert matrix[0, 0] == 1.0


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.ones((2, 3)), "must be square"),
        (np.eye(4)[None], r"\(3-D\)"),
        (np.ones(4), r"\(1-D\)"),
        (np.eye(1), "at least 2 modes"),
        (np.array([[np.nan, 0], [0, 1]]), "NaN or infinity"),
        (np.array([[1, 0], [0, np.inf]]), "NaN or infinity"),
        (np.array([["a", "b"], ["c", "d"]]), "cannot be converted"),
    ],
    ids=["non_square", "three_dims", "one_dim", "one_mode", "nan", "inf", "strings"],
)
def test_malformed_matrix_rejected(matrix: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decompose(matrix)


@pytest.mark.parametrize("tol", [-1e-9, float("nan"), float("inf"), "small"])
def test_invalid_tolerance_rejected(tol: object) -> None:
    with pytest.raises(ValueError, match="tolerance .* is invalid"):
        check_unitary(np.eye(2), tol=tol)
