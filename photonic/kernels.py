"""Compiled loops over the cells of a mesh sweep.

A cell is a product of up to b² 2×2 blocks on 2b modes, and the values at its sites come
from carrying one 2b×2b block through its local columns. In numpy every local column
costs several calls on arrays of about 10⁴ entries, and the call overhead exceeds the
arithmetic. These loops run over cells, sites and modes directly. numba compiles them
on first use and caches the machine code beside this file, so later processes load it.
"""

from __future__ import annotations

import math

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
    out: np.ndarray,
) -> None:
    """Carry every cell's block through its local columns and write the site values.

    ``state`` ``(stack, n_cells, 2b, 2b)`` holds each cell's block for every matrix of a
    stack; it is overwritten. The local columns are visited in order (``KIND_EXACT``,
    ``KIND_FORWARD``) or last first (``KIND_ADJOINT``). At each site with an MZI of
    index m, the θ value is Σ_ij a_i·conj(a_j)·s·X_ij over the 2×2 block X of the state
    on the site's pair, with a = ``weights[:, m]`` and s = ``scale[m]``. The φ value is
    X00, or for ``KIND_ADJOINT`` Σ_ij e_i·conj(e_j)·X_ij with e the first column of the
    site's block. Then the column's sites update the state on their pairs as
    X ← E·X·E⁻¹ (exact), E·X·Eᴴ (forward) or Eᵀ·X·Ē (adjoint), with E the site's block
    in ``elements`` ``(2, 2, b², n_cells)``.

    The values go to ``out`` ``(stack, 2M + N)`` in phase-vector order: θ of MZI m at
    column m and φ at column M + m. The N output-phase columns are left as they are.
    """
    stack = state.shape[0]
    n_cells = state.shape[1]
    width = state.shape[2]
    n_mzis = weights.shape[1]
    n_groups = group_first.shape[0]
    for index in range(stack):
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
                    x00 = state[index, cell, r, r]
                    x01 = state[index, cell, r, r + 1]
                    x10 = state[index, cell, r + 1, r]
                    x11 = state[index, cell, r + 1, r + 1]
                    a0 = weights[0, mzi]
                    a1 = weights[1, mzi]
                    c0 = a0.conjugate() * scale[mzi]
                    c1 = a1.conjugate() * scale[mzi]
                    out[index, mzi] = a0 * (c0 * x00 + c1 * x01) + a1 * (
                        c0 * x10 + c1 * x11
                    )
                    if kind == KIND_ADJOINT:
                        e0 = elements[0, 0, site, cell]
                        e1 = elements[1, 0, site, cell]
                        d0 = e0.conjugate()
                        d1 = e1.conjugate()
                        out[index, n_mzis + mzi] = e0 * (d0 * x00 + d1 * x01) + e1 * (
                            d0 * x10 + d1 * x11
                        )
                    else:
                        out[index, n_mzis + mzi] = x00
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
                        a = state[index, cell, r, j]
                        b = state[index, cell, r + 1, j]
                        state[index, cell, r, j] = r00 * a + r01 * b
                        state[index, cell, r + 1, j] = r10 * a + r11 * b
                    for i in range(width):
                        a = state[index, cell, i, r]
                        b = state[index, cell, i, r + 1]
                        state[index, cell, i, r] = a * c00 + b * c10
                        state[index, cell, i, r + 1] = a * c01 + b * c11


@numba.njit(cache=True)
def mzi_blocks(
    internal_phases: np.ndarray,
    cosines: np.ndarray,
    sines: np.ndarray,
    arm_amplitude: np.ndarray,
    column_top: np.ndarray,
    column_bottom: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compute every MZI's 2×2 block and the weights of the values at its shifters.

    The block is diag(w)·coupler(c2, s2)·diag(α, β)·coupler(c1, s1)·diag(e^{iφ}, 1), with
    α = a_top·e^{iθ}, β = a_bottom and coupler(c, s) = [[c, i·s], [i·s, c]]. The inputs
    are the phases (θ, φ) ``(2m,)`` in rad, the cosines and sines of the two coupler
    angles ``(2, m)``, the arm amplitudes ``(2, m)`` and the waveguide amplitudes w =
    (``column_top``, ``column_bottom``) of the MZI's column. The phasors come from
    math.cos and math.sin, the same libm calls as numpy's float64 cos and sin, which
    took twice as long for 4032 phases (74 µs against 36 µs).

    Returns:
        The blocks ``(2, 2, m)``; k = (c1·e^{iφ}, i·s1), the first row of
        coupler(c1, s1)·diag(e^{iφ}, 1), as ``(2, m)``; the top arm power a_top²; and
        (w_top·c2, i·s2·w_bottom), the first column of diag(w)·coupler(c2, s2), as
        ``(2, m)``.
    """
    m = cosines.shape[1]
    blocks = np.empty((2, 2, m), dtype=np.complex128)
    k = np.empty((2, m), dtype=np.complex128)
    top_power = np.empty(m)
    adjoint = np.empty((2, m), dtype=np.complex128)
    for index in range(m):
        c1, c2 = cosines[0, index], cosines[1, index]
        s1, s2 = sines[0, index], sines[1, index]
        top = arm_amplitude[0, index]
        beta = arm_amplitude[1, index]
        theta = internal_phases[index]
        phi = internal_phases[m + index]
        alpha = top * complex(math.cos(theta), math.sin(theta))
        rotation = complex(math.cos(phi), math.sin(phi))
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


@numba.njit(cache=True)
def site_elements(
    blocks: np.ndarray,
    site_mzi: np.ndarray,
    idle_sites: np.ndarray,
    idle_loss: np.ndarray,
    idle_count: np.ndarray,
    column_amplitude: np.ndarray,
) -> tuple[np.ndarray, float]:
    """Return the 2×2 block of every site of every cell and the cells' worst conditioning.

    A site with an MZI (``site_mzi`` >= 0) takes its block from ``blocks`` ``(2, 2, m)``;
    any other site is the identity, except that an idle waveguide inside the mesh applies
    its column's loss. For the upper (0) and the lower (1) mode of a site,
    ``idle_sites[local, :idle_count[local]]`` are the flat indices into (b², n_cells) of
    such sites and ``idle_loss`` the flat indices of their loss in the flattened
    ``column_amplitude``.

    Returns:
        The blocks ``(2, 2, b², n_cells)``, and the largest over the cells of the
        product of the condition numbers of the cell's site blocks as they act on all
        2b modes (inf if a block is singular). A site block E embedded in the identity
        has the singular values σ_max and σ_min of E and 1, so its condition number is
        max(σ_max, 1)/min(σ_min, 1). For a passive block that is 1/σ_min, because equal
        loss in both arms still scales the site's rows against the rest. Carrying a matrix
        X ← E·X·E⁻¹ through a cell's sites multiplies its relative rounding error by at
        most that product.
    """
    sites, n_cells = site_mzi.shape
    # Squared condition number of every MZI's block: σ_max·σ_min = |det| and
    # σ_max² + σ_min² = ‖E‖_F², so both follow without a decomposition.
    n_mzis = blocks.shape[2]
    squared = np.empty(n_mzis)
    for mzi in range(n_mzis):
        e00 = blocks[0, 0, mzi]
        e01 = blocks[0, 1, mzi]
        e10 = blocks[1, 0, mzi]
        e11 = blocks[1, 1, mzi]
        determinant = e00 * e11 - e01 * e10
        det2 = determinant.real**2 + determinant.imag**2
        frobenius = (
            e00.real**2 + e00.imag**2 + e01.real**2 + e01.imag**2
        ) + (e10.real**2 + e10.imag**2 + e11.real**2 + e11.imag**2)
        if det2 == 0.0:
            squared[mzi] = np.inf
            continue
        largest = 0.5 * (frobenius + np.sqrt(max(frobenius**2 - 4.0 * det2, 0.0)))
        squared[mzi] = max(largest, 1.0) / min(det2 / largest, 1.0)

    elements = np.zeros((2, 2, sites, n_cells), dtype=np.complex128)
    products = np.ones(n_cells)
    for site in range(sites):
        for cell in range(n_cells):
            mzi = site_mzi[site, cell]
            if mzi < 0:
                elements[0, 0, site, cell] = 1.0
                elements[1, 1, site, cell] = 1.0
            else:
                elements[0, 0, site, cell] = blocks[0, 0, mzi]
                elements[0, 1, site, cell] = blocks[0, 1, mzi]
                elements[1, 0, site, cell] = blocks[1, 0, mzi]
                elements[1, 1, site, cell] = blocks[1, 1, mzi]
                products[cell] *= squared[mzi]
    for local in range(2):
        for entry in range(idle_count[local]):
            flat = idle_sites[local, entry]
            site, cell = flat // n_cells, flat % n_cells
            amplitude = column_amplitude[idle_loss[local, entry]]
            elements[local, local, site, cell] = amplitude
            # A diagonal block diag(w, 1) or diag(1, w) with w <= 1.
            products[cell] *= np.inf if amplitude == 0.0 else 1.0 / min(amplitude, 1.0) ** 2
    worst = np.sqrt(np.max(products)) if n_cells else 1.0
    return elements, worst


# numpy's broadcast product of a complex batch with complex per-row factors ran at about
# half the speed of this loop for (1024, 64) complex128 arrays on the 2-core benchmark
# machine (73 µs against 37 µs). It runs once per Gram matrix of a measured gradient.
@numba.njit(cache=True)
def scale_rows_into(fields: np.ndarray, factors: np.ndarray, out: np.ndarray) -> None:
    """Scale row b of ``fields`` ``(batch, N)`` by ``factors[b]``, writing to ``out``."""
    for row in range(fields.shape[0]):
        factor = factors[row]
        for column in range(fields.shape[1]):
            out[row, column] = fields[row, column] * factor


@numba.njit(cache=True)
def scale_rows(fields: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Scale row b of ``fields`` ``(batch, N)`` by ``factors[b]`` into a new array."""
    out = np.empty_like(fields)
    scale_rows_into(fields, factors, out)
    return out


@numba.njit(cache=True)
def interference_fields(x: np.ndarray, adjoint_out: np.ndarray) -> np.ndarray:
    """Return x − i·conj(x_adj) for two ``(batch, N)`` complex128 arrays, in one pass."""
    out = np.empty_like(x)
    for row in range(x.shape[0]):
        for column in range(x.shape[1]):
            a = x[row, column]
            b = adjoint_out[row, column]
            out[row, column] = complex(a.real - b.imag, a.imag - b.real)
    return out
