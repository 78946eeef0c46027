"""Haar-random and uniform initial phases of rectangular and triangular meshes.

For a Haar-random N×N unitary every entry has E|U_ij|² = 1/N and E|U_ij|⁴ = 2/(N(N+1)).
The moment tests build the transfer matrices of many samples at once with their own
batched product of 2×2 MZI matrices, which is checked against ``RealisedMesh.matrix``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import unitary_group

from photonic.decompose import decompose
from photonic.initialization import (
    INITIALIZATIONS,
    haar_phases,
    initial_phases,
    sensitivity_indices,
    uniform_phases,
)
from photonic.mesh import TOPOLOGIES, MeshLayout, RealisedMesh

COUPLER = np.array([[1, 1j], [1j, 1]]) / np.sqrt(2)

N_SAMPLES = 20_000

# For N = 8 and 20 000 samples, these tolerances are about 6 (second moment) and 9
# (fourth moment) standard errors of the Haar sample means.
SECOND_MOMENT_TOL_8 = 0.005
FOURTH_MOMENT_TOL_8 = 0.003
# For N = 4 the entries spread more, so the tolerances are again about 5 standard errors
# of the Haar sample means at 20 000 samples (0.0014 and 0.00096).
SECOND_MOMENT_TOL_4 = 0.007
FOURTH_MOMENT_TOL_4 = 0.005


def phase_diagonal(phases: np.ndarray) -> np.ndarray:
    """Matrices diag(e^{i·phase}, 1) of shape ``phases.shape + (2, 2)``."""
    diagonal = np.zeros(phases.shape + (2, 2), dtype=complex)
    diagonal[..., 0, 0] = np.exp(1j * phases)
    diagonal[..., 1, 1] = 1.0
    return diagonal


def batched_matrices(layout: MeshLayout, phases: np.ndarray) -> np.ndarray:
    """Transfer matrices ``(samples, N, N)`` of an ideal mesh for phases ``(samples, N²)``.

    Every MZI is T(θ, φ) = B · diag(e^{iθ}, 1) · B · diag(e^{iφ}, 1), applied column by
    column to the rows (k, k+1) of the running product, then diag(e^{iψ}) on the output.
    """
    theta, phi, psi = layout.split_phases(phases)
    blocks = COUPLER @ phase_diagonal(theta) @ COUPLER @ phase_diagonal(phi)

    n_samples, n = phases.shape[0], layout.n_modes
    unitary = np.broadcast_to(np.eye(n, dtype=complex), (n_samples, n, n)).copy()
    for top, cols in zip(layout.columns, layout.column_slices()):
        block = blocks[:, cols]
        upper = unitary[:, top, :]
        lower = unitary[:, top + 1, :]
        unitary[:, top, :] = (
            block[..., 0, 0, None] * upper + block[..., 0, 1, None] * lower
        )
        unitary[:, top + 1, :] = (
            block[..., 1, 0, None] * upper + block[..., 1, 1, None] * lower
        )

    return np.exp(1j * psi)[:, :, None] * unitary


def moment_errors(
    layout: MeshLayout, phases: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Deviations of E|U_ij|² and E|U_ij|⁴ over the samples from their Haar values."""
    n = layout.n_modes
    power = np.abs(batched_matrices(layout, phases)) ** 2
    second = power.mean(axis=0) - 1 / n
    fourth = (power**2).mean(axis=0) - 2 / (n * (n + 1))
    return second, fourth


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_batched_matrices_match_realised_mesh(topology):
    layout = MeshLayout.create(5, topology)
    phases = uniform_phases(layout, np.random.default_rng(3), size=4)
    batch = batched_matrices(layout, phases)
    for sample in range(4):
        expected = RealisedMesh.ideal(layout, phases[sample]).matrix()
        np.testing.assert_allclose(batch[sample], expected, atol=1e-12)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_haar_phases_give_haar_moments_n8(topology):
    layout = MeshLayout.create(8, topology)
    phases = haar_phases(layout, np.random.default_rng(8), size=N_SAMPLES)
    second, fourth = moment_errors(layout, phases)
    assert np.max(np.abs(second)) < SECOND_MOMENT_TOL_8
    assert np.max(np.abs(fourth)) < FOURTH_MOMENT_TOL_8


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_haar_phases_give_haar_moments_n4(topology):
    layout = MeshLayout.create(4, topology)
    phases = haar_phases(layout, np.random.default_rng(4), size=N_SAMPLES)
    second, fourth = moment_errors(layout, phases)
    assert np.max(np.abs(second)) < SECOND_MOMENT_TOL_4
    assert np.max(np.abs(fourth)) < FOURTH_MOMENT_TOL_4


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_uniform_phases_miss_haar_moments(topology):
    layout = MeshLayout.create(8, topology)
    phases = uniform_phases(layout, np.random.default_rng(8), size=N_SAMPLES)
    second, fourth = moment_errors(layout, phases)
    assert np.max(np.abs(second)) > SECOND_MOMENT_TOL_8
    assert np.max(np.abs(fourth)) > FOURTH_MOMENT_TOL_8


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_haar_cross_powers_match_decomposed_haar_unitaries(topology):
    # Decomposing Haar-random unitaries gives an independent sample of the θ law: the
    # cross power cos²(θ/2) of an MZI with index α is Beta(α, 1), with mean α/(α+1).
    layout = MeshLayout.create(6, topology)
    unitaries = unitary_group.rvs(6, size=3000, random_state=61)
    theta = np.array(
        [layout.split_phases(decompose(u, topology))[0] for u in unitaries]
    )
    alpha = sensitivity_indices(layout)
    mean_cross_power = np.mean(np.cos(theta / 2) ** 2, axis=0)
    np.testing.assert_allclose(mean_cross_power, alpha / (alpha + 1), atol=0.03)


def test_sensitivity_indices_triangular_n4():
    # MZI order: columns 0…4 hold top modes [0], [1], [0, 2], [1], [0].
    layout = MeshLayout.create(4, "triangular")
    np.testing.assert_array_equal(sensitivity_indices(layout), [1, 2, 1, 3, 2, 1])


def test_sensitivity_indices_rectangular_n4():
    # MZI order: columns 0…3 hold top modes [0, 2], [1], [0, 2], [1].
    layout = MeshLayout.create(4, "rectangular")
    np.testing.assert_array_equal(sensitivity_indices(layout), [1, 1, 3, 2, 2, 1])


def test_sensitivity_indices_rectangular_n8_grid():
    # Each row (top mode 0…6) maps the columns that contain an MZI on it to α. The
    # values are the rounded fits to 3000 decomposed Haar-random 8×8 unitaries.
    grid = {
        0: {0: 1, 2: 2, 4: 2, 6: 2},
        1: {1: 3, 3: 4, 5: 4, 7: 1},
        2: {0: 1, 2: 5, 4: 6, 6: 3},
        3: {1: 3, 3: 7, 5: 5, 7: 1},
        4: {0: 1, 2: 5, 4: 6, 6: 3},
        5: {1: 3, 3: 4, 5: 4, 7: 1},
        6: {0: 1, 2: 2, 4: 2, 6: 2},
    }
    layout = MeshLayout.create(8, "rectangular")
    expected = [
        grid[int(top)][int(column)]
        for top, column in zip(layout.mzi_top_modes, layout.mzi_columns)
    ]
    np.testing.assert_array_equal(sensitivity_indices(layout), expected)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_sensitivity_index_counts(topology):
    # Both parametrisations of U(N) carry N − j MZIs with α = j.
    for n in range(2, 13):
        alpha = sensitivity_indices(MeshLayout.create(n, topology))
        counts = np.bincount(alpha, minlength=n + 1)
        np.testing.assert_array_equal(counts[1:n], n - np.arange(1, n))
        assert counts[0] == 0
        assert counts[n:].sum() == 0


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_haar_phases_ranges_and_shape(topology):
    layout = MeshLayout.create(6, topology)
    single = haar_phases(layout, np.random.default_rng(0))
    batch = haar_phases(layout, np.random.default_rng(0), size=500)
    theta, phi, psi = layout.split_phases(batch)
    assert single.shape == (36,)
    assert batch.shape == (500, 36)
    assert np.all((theta >= 0) & (theta <= np.pi))
    assert np.all((phi >= 0) & (phi < 2 * np.pi))
    assert np.all((psi >= 0) & (psi < 2 * np.pi))


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_haar_phases_deterministic_for_seed(topology):
    layout = MeshLayout.create(8, topology)
    first = haar_phases(layout, np.random.default_rng(123))
    again = haar_phases(layout, np.random.default_rng(123))
    other = haar_phases(layout, np.random.default_rng(124))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_uniform_phases_ranges_and_shape():
    layout = MeshLayout.create(5, "rectangular")
    batch = uniform_phases(layout, np.random.default_rng(0), size=1000)
    assert uniform_phases(layout, np.random.default_rng(0)).shape == (25,)
    assert batch.shape == (1000, 25)
    assert np.all((batch >= 0) & (batch < 2 * np.pi))
    # θ spans the whole circle, unlike the Haar θ in [0, π].
    assert np.max(layout.split_phases(batch)[0]) > np.pi


@pytest.mark.parametrize("name", ["haar", "uniform"])
def test_initial_phases_dispatches_by_name(name):
    layout = MeshLayout.create(4, "triangular")
    via_name = initial_phases(name, layout, np.random.default_rng(9))
    direct = INITIALIZATIONS[name](layout, np.random.default_rng(9))
    np.testing.assert_array_equal(via_name, direct)


def test_initializations_registry_names():
    assert INITIALIZATIONS == {"haar": haar_phases, "uniform": uniform_phases}


def test_initial_phases_unknown_name_raises():
    layout = MeshLayout.create(4, "rectangular")
    with pytest.raises(ValueError, match=r"'gaussian'.*haar, uniform"):
        initial_phases("gaussian", layout, np.random.default_rng(0))


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_invalid_size_raises(size):
    layout = MeshLayout.create(4, "rectangular")
    for sampler in (haar_phases, uniform_phases):
        with pytest.raises(ValueError, match="size"):
            sampler(layout, np.random.default_rng(0), size=size)


def test_haar_phases_reject_nonstandard_layout():
    standard = MeshLayout.create(4, "rectangular")
    mirrored = MeshLayout(4, "rectangular", tuple(reversed(standard.columns)))
    with pytest.raises(ValueError, match="MeshLayout.create"):
        haar_phases(mirrored, np.random.default_rng(0))
