"""Compiled loops over the cells of a mesh sweep.

A cell is a product of up to b² 2×2 blocks on 2b modes, and the values at its sites come
from carrying one 2b×2b block through its local columns. In numpy every local column
costs several calls on arrays of about 10⁴ entries, and the call overhead exceeds the
arithmetic. These loops run over cells, sites and modes directly. numba compiles them
on first use and caches the machine code beside this file, so later processes load it.
"""

from __future__ import annotations

import numba
import numpy as np


# With ``inverse``, a block with determinant 0 divides by zero. numpy's error model gives
# inf or NaN there instead of raising, and callers check for it.
@numba.njit(cache=True, error_model="numpy")
def cell_products(
    blocks: np.ndarray,
    site_tops: np.ndarray,
    group_first: np.ndarray,
    group_count: np.ndarray,
    width: int,
    inverse: bool,
) -> np.ndarray:
    """Multiply the 2×2 ``blocks`` ``(2, 2, b², n_cells)`` of every cell's sites into
    the cell, or with ``inverse`` into the cell's inverse.

    The cell P is built local column after local column as row operations on the
    identity, P ← E·P; its inverse as column operations, P⁻¹ ← P⁻¹·E⁻¹.
    ``group_first`` and ``group_count`` give the first site and the number of sites of
    every local column. The sites of one column act on disjoint pairs of modes, and
    ``site_tops`` gives the upper mode of each pair.

    Returns:
        The cells or their inverses, ``(n_cells, 2b, 2b)``.
    """
    n_cells = blocks.shape[3]
    product = np.zeros((n_cells, width, width), dtype=np.complex128)
    for cell in range(n_cells):
        for mode in range(width):
            product[cell, mode, mode] = 1.0
        for group in range(group_first.shape[0]):
            first = group_first[group]
            for site in range(first, first + group_count[group]):
                r = site_tops[site]
                e00 = blocks[0, 0, site, cell]
                e01 = blocks[0, 1, site, cell]
                e10 = blocks[1, 0, site, cell]
                e11 = blocks[1, 1, site, cell]
                if not inverse:
                    for j in range(width):
                        a = product[cell, r, j]
                        b = product[cell, r + 1, j]
                        product[cell, r, j] = e00 * a + e01 * b
                        product[cell, r + 1, j] = e10 * a + e11 * b
                    continue
                inverse_det = 1.0 / (e00 * e11 - e01 * e10)
                i00, i01 = e11 * inverse_det, -e01 * inverse_det
                i10, i11 = -e10 * inverse_det, e00 * inverse_det
                for i in range(width):
                    a = product[cell, i, r]
                    b = product[cell, i, r + 1]
                    product[cell, i, r] = a * i00 + b * i10
                    product[cell, i, r + 1] = a * i01 + b * i11
    return product


KIND_EXACT = 0
KIND_FORWARD = 1
KIND_ADJOINT = 2


@numba.njit(cache=True, error_model="numpy")
def site_values(
    state: np.ndarray,
    elements: np.ndarray,
    kind: int,
    weights: np.ndarray,
    scale: np.ndarray,
    site_mzi: np.ndarray,
    site_tops: np.ndarray,
    group_first: np.ndarray,
    group_count: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Carry every cell's block through its local columns and read the site values.

    ``state`` ``(n_cells, 2b, 2b)`` holds each cell's block; it is overwritten. The
    local columns are visited in order (``KIND_EXACT``, ``KIND_FORWARD``) or last first
    (``KIND_ADJOINT``). At each site with an MZI of index m, the θ value is
    Σ_ij a_i·conj(a_j)·s·X_ij over the 2×2 block X of the state on the site's pair, with
    a = ``weights[:, m]`` and s = ``scale[m]``. The φ value is X00, or for
    ``KIND_ADJOINT`` Σ_ij e_i·conj(e_j)·X_ij with e the first column of the site's block.
    Then the column's sites update the state on their pairs as X ← E·X·E⁻¹ (exact),
    E·X·Eᴴ (forward) or Eᵀ·X·Ē (adjoint), with E the site's block in ``elements``
    ``(2, 2, b², n_cells)``.

    Returns:
        The φ and θ values, each ``(b², n_cells)``, 0 at sites without an MZI.
    """
    n_cells = state.shape[0]
    width = state.shape[1]
    sites = site_tops.shape[0]
    n_groups = group_first.shape[0]
    phi = np.zeros((sites, n_cells), dtype=np.complex128)
    theta = np.zeros((sites, n_cells), dtype=np.complex128)
    for cell in range(n_cells):
        for step in range(n_groups):
            group = n_groups - 1 - step if kind == KIND_ADJOINT else step
            first = group_first[group]
            last = first + group_count[group]
            for site in range(first, last):
                mzi = site_mzi[site, cell]
                if mzi < 0:
                    continue
                r = site_tops[site]
                x00 = state[cell, r, r]
                x01 = state[cell, r, r + 1]
                x10 = state[cell, r + 1, r]
                x11 = state[cell, r + 1, r + 1]
                a0 = weights[0, mzi]
                a1 = weights[1, mzi]
                c0 = a0.conjugate() * scale[mzi]
                c1 = a1.conjugate() * scale[mzi]
                theta[site, cell] = a0 * (c0 * x00 + c1 * x01) + a1 * (
                    c0 * x10 + c1 * x11
                )
                if kind == KIND_ADJOINT:
                    e0 = elements[0, 0, site, cell]
                    e1 = elements[1, 0, site, cell]
                    d0 = e0.conjugate()
                    d1 = e1.conjugate()
                    phi[site, cell] = e0 * (d0 * x00 + d1 * x01) + e1 * (
                        d0 * x10 + d1 * x11
                    )
                else:
                    phi[site, cell] = x00
            if step == n_groups - 1:
                continue
            for site in range(first, last):
                r = site_tops[site]
                e00 = elements[0, 0, site, cell]
                e01 = elements[0, 1, site, cell]
                e10 = elements[1, 0, site, cell]
                e11 = elements[1, 1, site, cell]
                if kind == KIND_EXACT:
                    r00, r01, r10, r11 = e00, e01, e10, e11
                    inverse_det = 1.0 / (e00 * e11 - e01 * e10)
                    c00, c01 = e11 * inverse_det, -e01 * inverse_det
                    c10, c11 = -e10 * inverse_det, e00 * inverse_det
                elif kind == KIND_FORWARD:
                    r00, r01, r10, r11 = e00, e01, e10, e11
                    c00, c01 = e00.conjugate(), e10.conjugate()
                    c10, c11 = e01.conjugate(), e11.conjugate()
                else:
                    r00, r01, r10, r11 = e00, e10, e01, e11
                    c00, c01 = e00.conjugate(), e01.conjugate()
                    c10, c11 = e10.conjugate(), e11.conjugate()
                for j in range(width):
                    a = state[cell, r, j]
                    b = state[cell, r + 1, j]
                    state[cell, r, j] = r00 * a + r01 * b
                    state[cell, r + 1, j] = r10 * a + r11 * b
                for i in range(width):
                    a = state[cell, i, r]
                    b = state[cell, i, r + 1]
                    state[cell, i, r] = a * c00 + b * c10
                    state[cell, i, r + 1] = a * c01 + b * c11
    return phi, theta


@numba.njit(cache=True)
def mzi_blocks(
    theta_phasor: np.ndarray,
    phi_phasor: np.ndarray,
    cosines: np.ndarray,
    sines: np.ndarray,
    arm_amplitude: np.ndarray,
    column_top: np.ndarray,
    column_bottom: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compute every MZI's 2×2 block and the weights of the values at its shifters.

    The block is diag(w)·coupler(c2, s2)·diag(α, β)·coupler(c1, s1)·diag(e^{iφ}, 1), with
    α = a_top·e^{iθ}, β = a_bottom and coupler(c, s) = [[c, i·s], [i·s, c]]. The inputs
    are e^{iθ} and e^{iφ} ``(m,)``, the cosines and sines of the two coupler angles
    ``(2, m)``, the arm amplitudes ``(2, m)`` and the waveguide amplitudes w =
    (``column_top``, ``column_bottom``) of the MZI's column. numpy computes the cosines
    and sines, because its vectorised versions are several times faster than a call per
    value here.

    Returns:
        The blocks ``(2, 2, m)``; k = (c1·e^{iφ}, i·s1), the first row of
        coupler(c1, s1)·diag(e^{iφ}, 1), as ``(2, m)``; the top arm power a_top²; and
        (w_top·c2, i·s2·w_bottom), the first column of diag(w)·coupler(c2, s2), as
        ``(2, m)``.
    """
    m = theta_phasor.shape[0]
    blocks = np.empty((2, 2, m), dtype=np.complex128)
    k = np.empty((2, m), dtype=np.complex128)
    top_power = np.empty(m)
    adjoint = np.empty((2, m), dtype=np.complex128)
    for index in range(m):
        c1, c2 = cosines[0, index], cosines[1, index]
        s1, s2 = sines[0, index], sines[1, index]
        top = arm_amplitude[0, index]
        beta = arm_amplitude[1, index]
        alpha = top * theta_phasor[index]
        rotation = phi_phasor[index]
        w_top = column_top[index]
        w_bottom = column_bottom[index]
        blocks[0, 0, index] = w_top * rotation * (alpha * (c1 * c2) - beta * (s1 * s2))
        blocks[0, 1, index] = w_top * 1j * (alpha * (s1 * c2) + beta * (c1 * s2))
        blocks[1, 0, index] = (
            w_bottom * 1j * rotation * (alpha * (c1 * s2) + beta * (s1 * c2))
        )
        blocks[1, 1, index] = w_bottom * (beta * (c1 * c2) - alpha * (s1 * s2))
        k[0, index] = c1 * rotation
        k[1, index] = 1j * s1
        top_power[index] = top * top
        adjoint[0, index] = w_top * c2
        adjoint[1, index] = 1j * s2 * w_bottom
    return blocks, k, top_power, adjoint
