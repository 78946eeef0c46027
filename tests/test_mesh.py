"""Mesh layouts and light propagation through realised meshes.

The realised matrices are checked against an independent product of 2×2 MZI transfer
matrices from photonic.mzi, so the column-by-column propagation code is not compared with
itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from photonic.hardware import Chip, HardwareConfig, StaticErrors
from photonic.mesh import TOPOLOGIES, MeshLayout, RealisedMesh
from photonic.mzi import QUARTER_PI, coupler

MODE_COUNTS = range(2, 11)

LOSSY = HardwareConfig(
    static=StaticErrors(
        coupler_error_std=0.05,
        phase_offset_std=0.1,
        mzi_loss_db=0.3,
        mzi_loss_db_std=0.1,
        arm_imbalance_db_std=0.1,
        waveguide_loss_db=0.05,
    )
)


def random_phases(layout: MeshLayout, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 2 * np.pi, layout.n_phases)


def product_of_mzis(device: RealisedMesh) -> np.ndarray:
    """Transfer matrix of a device built from 2×2 blocks, column by column.

    Each MZI block is coupler · diag(arm_top·e^{iθ}, arm_bottom) · coupler · diag(e^{iφ}, 1)
    from ``photonic.mzi.coupler``, and each column is followed by its waveguide loss.
    """
    layout = device.layout
    n = layout.n_modes
    theta, phi, psi = layout.split_phases(device.phases)
    errors = device.coupler_angles - QUARTER_PI
    total = np.eye(n, dtype=complex)
    for column, (top_modes, cols) in enumerate(
        zip(layout.columns, layout.column_slices())
    ):
        block = np.eye(n, dtype=complex)
        for top, index in zip(top_modes, range(cols.start, cols.stop)):
            arms = np.diag(
                [
                    device.arm_amplitude[0, index] * np.exp(1j * theta[index]),
                    device.arm_amplitude[1, index],
                ]
            )
            external = np.diag([np.exp(1j * phi[index]), 1.0])
            block[top : top + 2, top : top + 2] = (
                coupler(errors[1, index]) @ arms @ coupler(errors[0, index]) @ external
            )
        if device.column_amplitude is not None:
            block = np.diag(device.column_amplitude[column]) @ block
        total = block @ total
    return np.diag(np.exp(1j * psi)) @ total


def prefix_device(device: RealisedMesh, n_columns: int) -> RealisedMesh:
    """The first ``n_columns`` columns of a device, with zero output phases."""
    layout = device.layout
    columns = layout.columns[:n_columns]
    prefix_layout = MeshLayout(layout.n_modes, layout.topology, columns)
    m = prefix_layout.n_mzis
    theta, phi, _ = layout.split_phases(device.phases)
    phases = np.concatenate([theta[:m], phi[:m], np.zeros(layout.n_modes)])
    return RealisedMesh(
        prefix_layout,
        phases,
        device.coupler_angles[:, :m],
        device.arm_amplitude[:, :m],
        None
        if device.column_amplitude is None
        else device.column_amplitude[:n_columns],
    )


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", MODE_COUNTS)
def test_mzi_count_is_n_choose_two(n: int, topology: str) -> None:
    layout = MeshLayout.create(n, topology)
    assert layout.n_mzis == n * (n - 1) // 2
    assert layout.n_phases == n * n


@pytest.mark.parametrize("n", MODE_COUNTS)
def test_rectangular_depth_is_n(n: int) -> None:
    assert MeshLayout.create(n, "rectangular").depth == n


@pytest.mark.parametrize("n", MODE_COUNTS)
def test_triangular_depth_is_two_n_minus_three(n: int) -> None:
    assert MeshLayout.create(n, "triangular").depth == 2 * n - 3


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", MODE_COUNTS)
def test_column_pairs_are_disjoint_and_adjacent(n: int, topology: str) -> None:
    for column in MeshLayout.create(n, topology).columns:
        assert np.all(column >= 0)
        assert np.all(column + 1 <= n - 1)
        assert np.all(np.diff(column) >= 2), f"overlapping pairs in column {column}"


def test_unknown_topology_raises_naming_value() -> None:
    with pytest.raises(ValueError, match="'hexagonal'"):
        MeshLayout.create(4, "hexagonal")


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", MODE_COUNTS)
def test_lossless_mesh_is_unitary(n: int, topology: str) -> None:
    layout = MeshLayout.create(n, topology)
    matrix = RealisedMesh.ideal(layout, random_phases(layout, n)).matrix()
    np.testing.assert_allclose(matrix.conj().T @ matrix, np.eye(n), rtol=0, atol=1e-12)
    np.testing.assert_allclose(matrix @ matrix.conj().T, np.eye(n), rtol=0, atol=1e-12)


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", [2, 5, 8])
def test_matrix_matches_product_of_mzis(n: int, topology: str) -> None:
    layout = MeshLayout.create(n, topology)
    device = Chip(layout, LOSSY, seed=n).device()
    np.testing.assert_allclose(
        device.matrix(), product_of_mzis(device), rtol=0, atol=1e-13
    )


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", [2, 3, 6, 9])
def test_lossless_mesh_conserves_column_power(
    n: int, topology: str, make_fields
) -> None:
    # The recorded fields contain only the top arm of each MZI, so they cannot show the
    # total power. The prefix device made of the first c columns outputs the field of all
    # N modes after column c. Within a column each MZI is a unitary 2×2 block on its own
    # pair, so column boundaries are the points where the field of every mode is defined.
    # The full prefix must match the mesh itself, which ties the prefixes to the device.
    layout = MeshLayout.create(n, topology)
    device = RealisedMesh.ideal(layout, random_phases(layout, 10 + n))
    x = make_fields(np.random.default_rng(n), 20, n) * 1.7

    full, _ = device.forward(x)
    _, _, psi = layout.split_phases(device.phases)
    last, _ = prefix_device(device, layout.depth).forward(x)
    np.testing.assert_allclose(last * np.exp(1j * psi), full, rtol=0, atol=1e-13)

    for n_columns in range(layout.depth + 1):
        out, _ = prefix_device(device, n_columns).forward(x)
        power = np.sum(np.abs(out) ** 2, axis=1)
        np.testing.assert_allclose(power, 1.7**2, rtol=0, atol=1e-12)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_lossy_mesh_power_never_rises(topology: str, make_fields) -> None:
    layout = MeshLayout.create(6, topology)
    device = Chip(layout, LOSSY, seed=4).device()
    x = make_fields(np.random.default_rng(4), 20, 6)
    previous = np.ones(20)
    for n_columns in range(1, layout.depth + 1):
        out, _ = prefix_device(device, n_columns).forward(x)
        power = np.sum(np.abs(out) ** 2, axis=1)
        assert np.all(power <= previous + 1e-14), f"power rose at column {n_columns}"
        previous = power
    assert np.all(previous < 1.0)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_batch_matches_single_calls(topology: str, make_fields) -> None:
    layout = MeshLayout.create(5, topology)
    device = Chip(layout, LOSSY, seed=5).device()
    x = make_fields(np.random.default_rng(5), 100, 5)

    batch_forward, _ = device.forward(x)
    batch_backward, _ = device.backward(x)
    single_forward = np.array([device.forward(row)[0] for row in x])
    single_backward = np.array([device.backward(row)[0] for row in x])

    assert single_forward.shape == (100, 5)
    np.testing.assert_allclose(batch_forward, single_forward, rtol=0, atol=1e-14)
    np.testing.assert_allclose(batch_backward, single_backward, rtol=0, atol=1e-14)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_forward_equals_x_times_u_transpose(topology: str, make_fields) -> None:
    layout = MeshLayout.create(5, topology)
    device = Chip(layout, LOSSY, seed=6).device()
    x = make_fields(np.random.default_rng(6), 7, 5)
    out, _ = device.forward(x)
    np.testing.assert_allclose(out, x @ product_of_mzis(device).T, rtol=0, atol=1e-13)


@pytest.mark.parametrize("hardware", [HardwareConfig(), LOSSY], ids=["ideal", "lossy"])
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_backward_equals_y_times_u(
    topology: str, hardware: HardwareConfig, make_fields
) -> None:
    layout = MeshLayout.create(5, topology)
    device = Chip(layout, hardware, seed=7).device()
    y = make_fields(np.random.default_rng(7), 7, 5)
    out, _ = device.backward(y)
    np.testing.assert_allclose(out, y @ product_of_mzis(device), rtol=0, atol=1e-13)


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", [2, 4, 7])
def test_backward_matrix_is_forward_transpose(n: int, topology: str) -> None:
    # Reciprocity: light launched into the outputs is transformed by Uᵀ, even with static
    # errors and loss.
    layout = MeshLayout.create(n, topology)
    device = Chip(layout, LOSSY, seed=8).device()
    assert np.any(device.arm_amplitude < 1)
    forward = device.matrix()
    rows, _ = device.backward(np.eye(n))
    backward = rows.T
    np.testing.assert_allclose(backward, forward.T, rtol=0, atol=1e-12)
    assert np.max(np.abs(backward - forward.conj().T)) > 1e-3


@pytest.mark.parametrize("method", ["forward", "backward"])
def test_nan_input_raises(method: str) -> None:
    layout = MeshLayout.create(3, "rectangular")
    device = RealisedMesh.ideal(layout, random_phases(layout, 0))
    x = np.array([1.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        getattr(device, method)(x)


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_device_rejects_non_finite_phases(bad: float) -> None:
    layout = MeshLayout.create(3, "rectangular")
    phases = random_phases(layout, 0)
    phases[4] = bad
    with pytest.raises(ValueError, match=r"NaN or infinity \(1 of 9\)"):
        RealisedMesh.ideal(layout, phases)


def test_wrong_input_width_raises_naming_shape() -> None:
    layout = MeshLayout.create(3, "rectangular")
    device = RealisedMesh.ideal(layout, random_phases(layout, 0))
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        device.forward(np.ones((2, 4)))
