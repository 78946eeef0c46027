"""Batch sums over one realised mesh, computed without the per-sample fields.

The gradient and the monitor powers of in situ backpropagation are sums over the batch,
and each is a quadratic form in the fields at one phase shifter. Write the mesh as
U = G_p · F_p, with F_p mapping the inputs to the plane p of a shifter and G_p mapping
that plane to the outputs. With inputs x_b, adjoint sources δ_b launched into the outputs
and weights w_b:

- exact gradient (as in ``photonic.reference``): the forward field is a = F_p x and the
  adjoint field b = G_pᵀ δ, so Σ_b a_k·b_k = [F_p M G_p]_kk with M = Xᵀ Δ. Composing U
  from the inputs passes through every F_p; they are kept when they fit in
  ``PARTIALS_BUDGET_BYTES``. Then Z_p = M G_p is swept from the outputs as Z ← Z B and
  each cell's diagonal block is F_p[rows] · Z_p[:, rows], with no inverse across cells.
  For larger meshes, where keeping F_p costs too much memory, the matrix
  S_p = F_p (M U) F_p⁻¹ moves from plane to plane as S ← B S B⁻¹ instead.
- forward monitor powers: Σ_b w_b |a_k|² = [F_p Q F_pᴴ]_kk with Q = Xᵀ diag(w) X̄, which
  moves as Q ← B Q Bᴴ and needs no inverse.
- adjoint monitor powers: Σ_b w_b |b_k|² = [G_pᵀ R Ḡ_p]_kk with R = Δᵀ diag(w) Δ̄, swept
  from the outputs back to the inputs as R ← Bᵀ R B̄.

Each sum costs one N×N Gram product over the batch and O(depth·N²) work on N×N matrices.
The recorded fields cost O(batch·N²) memory and time instead.

The 2×2 blocks are grouped into cells. With b = ``cell_columns``, the MZI sites at column
c = b·ℓ + α + β and top mode k = b·q + α − β (0 <= α, β < b, q ≡ ℓ mod 2) act only on
the 2b modes b·q − b + 1 .. b·q + b. The cells of one ℓ act on disjoint modes, after the
cells of ℓ − 1, so every layer ℓ is block diagonal with 2b×2b blocks and one matrix
product advances a sweep by b columns. The value at a shifter inside a cell follows from
the cell's 2b×2b diagonal block of the swept matrix, carried through the cell's own
columns. Sites without an MZI apply the propagation loss of idle waveguides.

Monitor noise is drawn for the batch sum directly when each reading is Gaussian with a
variance affine in the power, c0 + c1·P. That covers shot noise, amplifier noise and the
model of ``DetectorConfig.pai2023``, without an ADC. Then Σ_b w_b·(P_b + σ(P_b)·n_b) has
the distribution of Σ_b w_b P_b + sqrt(c0·Σ w_b² + c1·Σ w_b² P_b)·n, one normal draw per
monitor. An ADC quantizes every reading on its own, so readings through an ADC are drawn
sample by sample from the recorded fields.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import weakref
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import blas

from photonic.detection import DetectorConfig, detect, noise_std
from photonic.kernels import (
    KIND_ADJOINT,
    KIND_EXACT,
    KIND_FORWARD,
    cell_products,
    interference_fields,
    mzi_blocks,
    scale_rows_into,
    site_elements,
    site_values,
)
from photonic.mesh import MeshLayout, RealisedMesh

logger = logging.getLogger(__name__)

DIRECTIONS = ("forward", "adjoint")
"""Directions of a pass: light launched into the input ports or into the output ports."""

SWEEP_DTYPES: tuple[type, ...] = (np.complex128, np.complex64)
"""Complex types the sweeps compute in."""

DEFAULT_CELL_COLUMNS = 4
"""MZI columns that one layer of cells advances; the cells span 8 modes."""

PARTIALS_BUDGET_BYTES = 16 * 2**20
"""Largest memory in bytes for the partial products F_p that a sweep keeps per device.

With them the exact gradient needs no inverse cells and about a quarter less time at
N = 64 (benchmarks/RESULTS.md). They take (layers + 1)·padded·N complex numbers: 1.4 MB
at N = 64 and 72 MB at N = 256 with 4-column cells, so large meshes do without.
"""

EXACT_CONDITION_LIMIT = {np.dtype(np.complex128): 1e6, np.dtype(np.complex64): 1e2}
"""Largest accepted product of the condition numbers of the site blocks of one cell.

The values inside a cell come from carrying its diagonal block through the cell's
columns as X ← E·X·E⁻¹. That multiplies the relative rounding error by at most the
product of the condition numbers of the site blocks E embedded in the cell's 2b modes,
1/σ_min(E) each for passive blocks (``photonic.kernels.site_elements``). Above the limit
the exact gradient is computed from recorded fields, so the error stays below about
1e-10 (complex128) and 1e-5 (complex64). With 4-column cells of 16 MZIs, a loss of
0.2 dB per MZI gives a product of about 1.4, and 3 dB gives about 250. complex64 falls
back from about 2.5 dB per MZI on, and complex128 from about 7.5 dB.
"""

EXACT_RESIDUAL_TOLERANCE = {np.dtype(np.complex128): 1e-9, np.dtype(np.complex64): 1e-4}
"""Largest accepted relative residual of the exact gradient sweep S ← B S B⁻¹, by dtype.

That sweep multiplies by the inverse of every cell, so lossy blocks amplify its rounding
errors. After the last layer the swept matrix must equal P_ψ⁻¹·(U M)·P_ψ, with P_ψ the
output phases. When their relative Frobenius distance exceeds this tolerance, the exact
gradient is computed from recorded fields instead. The tolerances lie about 10^7 and 10^3
times above the unit roundoff of the two types, so only grown errors exceed them.
"""


# Below this many (batch × modes) the per-cell overhead of a sweep exceeds the cost of
# recording every sample's fields. Measured on a 2-core x86_64 machine: at N = 8 the
# recorded path wins at batch 32 (0.9 ms against 1.4 ms) and loses at batch 256 (2.4 ms
# against 1.4 ms); at N = 16 the two break even at batch 16.
SWEEP_MIN_WORK = 512


def sweep_pays_off(n_modes: int, batch: int) -> bool:
    """Return whether batch sums by sweep are expected to beat recorded fields here."""
    return n_modes * batch >= SWEEP_MIN_WORK


def _check_dtype(dtype: object) -> np.dtype:
    message = f"sweep dtype {dtype!r} is unsupported; use complex128 or complex64"
    if dtype is None:
        raise ValueError(message)
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise ValueError(message) from error
    if resolved not in [np.dtype(t) for t in SWEEP_DTYPES]:
        raise ValueError(
            f"sweep dtype {resolved} is unsupported; use complex128 or complex64"
        )
    return resolved


def _check_fields(
    fields: np.ndarray, n_modes: int, name: str, finite: bool = True
) -> np.ndarray:
    """Return ``fields`` as a 2-D array ``(batch, n_modes)``, raising on shape or NaN.

    With ``finite`` False only the shape is checked. The caller then checks a product of
    the fields instead, which is cheaper to check and is not finite if any entry is not.
    """
    fields = np.asarray(fields)
    if fields.ndim == 1:
        fields = fields[None, :]
    if fields.ndim != 2 or fields.shape[1] != n_modes:
        raise ValueError(
            f"{name} has shape {fields.shape}; expected (batch, {n_modes}) or "
            f"({n_modes},)"
        )
    # A finite sum proves every entry finite. Only a non-finite sum needs the full check,
    # which separates an overflowing sum from a NaN or infinite entry.
    if finite and not _finite_sum(fields) and not np.all(np.isfinite(fields)):
        raise ValueError(f"{name} contains NaN or infinity; every entry must be finite")
    return fields


def _finite_sum(array: np.ndarray) -> bool:
    """Return whether the sum of ``array`` is finite; an overflowing sum warns nothing."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.sum(array)))


def _check_weights(weights: np.ndarray | None, batch: int) -> np.ndarray:
    """Return per-sample weights as a float array ``(batch,)``, all ones for None."""
    if weights is None:
        return np.ones(batch)
    weights = np.asarray(weights)
    if np.iscomplexobj(weights):
        raise ValueError(
            "weights are complex; per-sample weights must be real numbers"
        )
    weights = weights.astype(float)
    if weights.shape != (batch,):
        raise ValueError(
            f"weights have shape {weights.shape}; expected ({batch},), one per sample"
        )
    if not np.all(np.isfinite(weights)):
        raise ValueError("weights contain NaN or infinity; every weight must be finite")
    return weights


def _batch_product(
    first: np.ndarray, second: np.ndarray, dtype: np.dtype, conjugate: bool
) -> np.ndarray:
    """Compute Σ_b first_b ⊗ second_b = Fᵀ·S, or Fᵀ·S̄ with ``conjugate`` (N×N).

    Calls BLAS gemm with the transposes as flags, which avoids the copy that
    ``first.T @ second.conj()`` makes for the conjugate.
    """
    gemm = blas.zgemm if dtype == np.dtype(np.complex128) else blas.cgemm
    first = np.ascontiguousarray(first, dtype=dtype)
    second = np.ascontiguousarray(second, dtype=dtype)
    return gemm(1.0, first.T, second.T, trans_b=2 if conjugate else 1)


def _gram(
    fields: np.ndarray, weights: np.ndarray, dtype: np.dtype, name: str = "fields"
) -> np.ndarray:
    """Compute the Gram matrix Σ_b w_b · f_b f_bᴴ = Fᵀ diag(w) F̄ for real or complex w.

    Raises:
        ValueError: if ``fields`` (called ``name`` in the message) contains NaN or
            infinity, or if the sum overflows ``dtype``. A non-finite entry makes the
            Gram matrix non-finite (0·inf is NaN), so the fields are checked entry by
            entry only then.
    """
    original = fields
    fields = np.ascontiguousarray(fields, dtype=dtype)
    # A non-finite entry is reported below; compiled code raises no floating-point
    # warnings for it. The weighted rows live only until the product is taken, so
    # they go to a pooled buffer that the next Gram matrix of this shape reuses.
    weighted = _take_buffer(fields.shape, fields.dtype)
    try:
        scale_rows_into(fields, weights.astype(dtype), weighted)
        gram = _batch_product(weighted, fields, dtype, conjugate=True)
    finally:
        _return_buffer(weighted)
    if not np.all(np.isfinite(gram)):
        _check_fields(original, fields.shape[1], name)
        _raise_overflow(name, dtype, float(np.max(np.abs(original))))
    return gram


def _check_sums(
    sums: np.ndarray, name: str, dtype: np.dtype, *fields: np.ndarray
) -> None:
    """Raise the overflow error if batch sums of finite fields came out non-finite.

    The Gram matrix can stay finite while the products of the sweep overflow, for
    fields within a few orders of magnitude of the largest float.
    """
    if not _finite_sum(sums):
        largest = max(float(np.max(np.abs(f))) if np.size(f) else 0.0 for f in fields)
        _raise_overflow(name, dtype, largest)


def _raise_overflow(name: str, dtype: np.dtype, largest: float) -> None:
    """Raise the error for finite fields whose batch sums overflow ``dtype``."""
    advice = "use complex128 or " if dtype == np.dtype(np.complex64) else ""
    raise ValueError(
        f"the batch sums of {name} overflow {dtype} (largest |field| {largest:.3g}); "
        f"{advice}scale the fields down"
    )


# ----------------------------------------------------------------------------------------
# Blocks are stored with the cell index last, (2, 2, ..., n) or (w, w, n), so that the
# elementwise numpy operations that build them run over long contiguous arrays.


# Buffers for the kept partial products, handed from a sweep that is gone to the next
# one of the same shape, and for the weighted rows of a Gram product. A new array of a
# few MB costs a page fault per 4 kB page when the allocator maps fresh memory for it,
# and at N = 64 that took about 0.5 ms per device, half the time of composing U.
_BUFFER_POOL: dict[tuple[tuple[int, ...], np.dtype], list[np.ndarray]] = {}
_BUFFERS_PER_SHAPE = 4
_POOL_MAX_BYTES = 64 * 2**20
_POOL_LOCK = threading.Lock()
_pool_bytes = 0


def _take_buffer(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Return a writable array of ``shape`` and ``dtype`` from the pool, or a new one."""
    global _pool_bytes
    with _POOL_LOCK:
        free = _BUFFER_POOL.get((shape, np.dtype(dtype)))
        if free:
            buffer = free.pop()
            _pool_bytes -= buffer.nbytes
            buffer.setflags(write=True)
            return buffer
    return np.empty(shape, dtype=dtype)


def _return_buffer(buffer: np.ndarray) -> None:
    """Put a buffer back into the pool, unless its shape or the pool's bytes are full."""
    global _pool_bytes
    with _POOL_LOCK:
        free = _BUFFER_POOL.setdefault((buffer.shape, buffer.dtype), [])
        if (
            len(free) < _BUFFERS_PER_SHAPE
            and _pool_bytes + buffer.nbytes <= _POOL_MAX_BYTES
        ):
            free.append(buffer)
            _pool_bytes += buffer.nbytes


# Cosines and sines of coupler angles. The devices of one chip share its angle array, so
# a new device after a phase update finds them here; at N = 64 they took about 30 µs of
# every new device. An entry keeps a copy of the angles and is used only while they are
# equal to it, so an array changed in place, or a new array at a reused address, gets
# fresh values. The lock keeps lookups and evictions from other threads apart.
_COUPLER_TERMS: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
_COUPLER_TERMS_KEPT = 64
_COUPLER_TERMS_LOCK = threading.Lock()


def _coupler_terms(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return cos and sin of the coupler angles, reusing them for equal angles."""
    key = id(angles)
    with _COUPLER_TERMS_LOCK:
        entry = _COUPLER_TERMS.pop(key, None)
        if entry is not None and np.array_equal(entry[0], angles):
            _COUPLER_TERMS[key] = entry
            return entry[1], entry[2]
    cosines, sines = np.cos(angles), np.sin(angles)
    cosines.setflags(write=False)
    sines.setflags(write=False)
    with _COUPLER_TERMS_LOCK:
        while len(_COUPLER_TERMS) >= _COUPLER_TERMS_KEPT:
            _COUPLER_TERMS.pop(next(iter(_COUPLER_TERMS)))
        _COUPLER_TERMS[key] = (np.array(angles), cosines, sines)
    return cosines, sines


_NO_AMPLITUDE = np.ones(1)
"""Stands for the waveguide amplitudes of a mesh without waveguide loss."""


def _unit_phasor(phases: np.ndarray) -> np.ndarray:
    """Return e^{i·phase}, computed from cos and sin (faster than a complex exp)."""
    phasor = np.empty(np.shape(phases), dtype=np.complex128)
    # Assigning the parts is several times faster than np.cos(..., out=phasor.real).
    phasor.real = np.cos(phases)
    phasor.imag = np.sin(phases)
    return phasor


# ----------------------------------------------------------------------------------------
# Geometry of the cells: it depends only on the layout, the cell size and whether the
# waveguides are lossy, so it is built once per combination.


@dataclass(frozen=True)
class _Layer:
    """Cells [start, stop) of one layer and the padded indices of the modes they cover.

    Attributes:
        take_index: flat indices into the padded matrix of the cells' diagonal blocks.
        uncovered: padded index ranges of real modes outside the layer's cells.
    """

    start: int
    stop: int
    row_start: int
    row_stop: int
    take_index: np.ndarray
    uncovered: tuple[slice, ...]


@dataclass(frozen=True)
class _CellGeometry:
    """Cells of a layout: their sites, their layers and the padded matrix they act on.

    Attributes:
        width: modes per cell, 2b.
        pad: dummy modes before mode 0 in the padded matrices.
        padded: size of the padded matrices.
        site_groups: first site and number of sites of every local column of a cell.
        group_first, group_count: the same as two arrays.
        site_tops: local top mode of every site, ``(b²,)``.
        site_mzi: MZI index at every site, or −1, ``(b², n_cells)``.
        idle_sites, idle_loss, idle_count: for the upper (row 0) and the lower (row 1)
            mode of a site, the flat indices into (b², n_cells) of the sites without an
            MZI on a real mode inside the mesh, the flat indices into
            ``column_amplitude`` of their loss, and how many there are of each (the
            rows are padded to equal length).
        layers: the layers of cells in propagation order.
    """

    width: int
    pad: int
    padded: int
    n_cells: int
    site_groups: tuple[tuple[int, int], ...]
    group_first: np.ndarray
    group_count: np.ndarray
    site_tops: np.ndarray
    site_mzi: np.ndarray
    idle_sites: np.ndarray
    idle_loss: np.ndarray
    idle_count: np.ndarray
    layers: tuple[_Layer, ...]


def _cell_grid(b: int, n: int, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the layer ℓ and the index q of every candidate cell, by layer, then by q."""
    # Cell (ℓ, q), q ≡ ℓ (mod 2), covers modes b·q − b + 1 .. b·q + b. Keep the q whose
    # cells reach a real mode, in every layer that reaches a real column.
    q_low = np.array([0, -1])
    top = (n + b - 2) // b
    q_high = np.array([top - (top % 2), top - ((top - 1) % 2)])
    counts = (q_high - q_low) // 2 + 1
    ells = np.arange(-1, (depth - 1) // b + 1)
    per_layer = counts[ells % 2]
    ell = np.repeat(ells, per_layer)
    offsets = np.repeat(np.cumsum(per_layer) - per_layer, per_layer)
    q = q_low[ell % 2] + 2 * (np.arange(ell.size) - offsets)
    return ell, q


@functools.lru_cache(maxsize=32)
def _cell_geometry(
    n_modes: int, topology: str, cell_columns: int, waveguide_loss: bool
) -> _CellGeometry:
    """Build the cells of a layout, for meshes with or without lossy waveguides."""
    layout = MeshLayout.create(n_modes, topology)
    n, depth, b = n_modes, layout.depth, cell_columns
    width = 2 * b

    # The site (α, β) of a cell sits in local column α + β on local modes α − β + b − 1
    # and α − β + b. Sites are ordered by local column, and the sites of one local column
    # act on disjoint pairs of modes.
    alpha, beta = np.meshgrid(np.arange(b), np.arange(b), indexing="ij")
    local_column = (alpha + beta).ravel()
    local_top = (alpha - beta + b - 1).ravel()
    order = np.lexsort((local_top, local_column))
    local_column, local_top = local_column[order], local_top[order]
    groups = tuple(
        (int(np.flatnonzero(local_column == t)[0]), int(np.sum(local_column == t)))
        for t in range(2 * b - 1)
    )

    ell, q = _cell_grid(b, n, depth)
    columns = b * ell[None, :] + local_column[:, None]
    tops = b * q[None, :] + local_top[:, None] - b + 1
    inside = (columns >= 0) & (columns < depth)
    lookup = np.full((depth, n), -1, dtype=np.intp)
    lookup[layout.mzi_columns, layout.mzi_top_modes] = np.arange(layout.n_mzis)
    site_mzi = np.full(columns.shape, -1, dtype=np.intp)
    valid = inside & (tops >= 0) & (tops <= n - 2)
    site_mzi[valid] = lookup[columns[valid], tops[valid]]

    active = site_mzi >= 0
    if waveguide_loss:
        active |= inside & (tops + 1 >= 0) & (tops <= n - 1)
    # Drop the cells at the edges that are the identity in every layer of their parity,
    # keeping the cells of each parity a contiguous range of q.
    nontrivial = np.any(active, axis=0)
    keep = np.zeros(ell.size, dtype=bool)
    for parity in (0, 1):
        of_parity = ell % 2 == parity
        used = q[of_parity & nontrivial]
        if used.size:
            keep |= of_parity & (q >= used.min()) & (q <= used.max())
    ell, q = ell[keep], q[keep]
    columns, tops = columns[:, keep], tops[:, keep]
    inside, site_mzi = inside[:, keep], site_mzi[:, keep]

    idle_flat, idle_loss = [], []
    for local in range(2):
        mode = tops + local
        idle = inside & (site_mzi < 0) & (mode >= 0) & (mode < n)
        if not waveguide_loss:
            idle[:] = False
        flat = np.flatnonzero(idle)
        idle_flat.append(flat)
        idle_loss.append(columns.ravel()[flat] * n + mode.ravel()[flat])
    idle_count = np.array([flat.size for flat in idle_flat], dtype=np.intp)
    idle_sites = np.zeros((2, int(idle_count.max())), dtype=np.intp)
    idle_lookup = np.zeros_like(idle_sites)
    for local in range(2):
        idle_sites[local, : idle_count[local]] = idle_flat[local]
        idle_lookup[local, : idle_count[local]] = idle_loss[local]

    # Padded index of each cell's first mode: b·q − b + 1 + pad, with pad = 2b − 1.
    pad = width - 1
    starts = b * (q + 1)
    padded = int(max(starts.max() + width, n + pad)) if starts.size else n + pad
    rows = starts[:, None] + np.arange(width)[None, :]
    take = (rows[:, :, None] * padded + rows[:, None, :]).reshape(-1)
    take.setflags(write=False)
    bounds = np.flatnonzero(np.diff(ell)) + 1
    layers = []
    for start, stop in zip(
        np.concatenate([[0], bounds]), np.concatenate([bounds, [ell.size]])
    ):
        row_start = int(starts[start])
        row_stop = row_start + width * int(stop - start)
        uncovered = tuple(
            part
            for part in (
                slice(pad, min(row_start, pad + n)),
                slice(max(row_stop, pad), pad + n),
            )
            if part.stop > part.start
        )
        layers.append(
            _Layer(
                start=int(start),
                stop=int(stop),
                row_start=row_start,
                row_stop=row_stop,
                take_index=take[width * width * start : width * width * stop],
                uncovered=uncovered,
            )
        )
    for array in (local_top, site_mzi, idle_sites, idle_lookup, idle_count):
        array.setflags(write=False)
    return _CellGeometry(
        width=width,
        pad=pad,
        padded=padded,
        n_cells=int(ell.size),
        site_groups=groups,
        group_first=np.array([first for first, _ in groups], dtype=np.intp),
        group_count=np.array([count for _, count in groups], dtype=np.intp),
        site_tops=local_top,
        site_mzi=site_mzi,
        idle_sites=idle_sites,
        idle_loss=idle_lookup,
        idle_count=idle_count,
        layers=tuple(layers),
    )


class MeshSweep:
    """Batch sums through one realised mesh, swept layer of cells by layer.

    Building the cells costs O(N²·b) and is done once per instance, so reuse the object
    for several sums over the same device. ``RealisedMesh.sweep`` keeps one per device.
    The device is frozen, so the cells stay valid unless someone writes into its arrays.
    Once U is composed, the instance also keeps the partial products F_p if they fit in
    ``PARTIALS_BUDGET_BYTES`` (1.4 MB at N = 64).

    Args:
        device: the realised mesh.
        dtype: complex128 (default) or complex64, the type of the Gram products and the
            swept matrices. complex64 halves their memory, at a relative error of about
            1e-6 (measured in benchmarks/RESULTS.md).
        cell_columns: MZI columns b that one layer of cells advances. A cell spans 2b
            modes. Every value gives the same sums to rounding, and 4 was fastest at
            N = 64 in benchmarks/bench_core.py.

    Raises:
        ValueError: for an unsupported dtype or a ``cell_columns`` below 1.
    """

    def __init__(
        self,
        device: RealisedMesh,
        dtype: type | np.dtype = np.complex128,
        cell_columns: int = DEFAULT_CELL_COLUMNS,
    ) -> None:
        if (
            isinstance(cell_columns, bool)
            or not isinstance(cell_columns, (int, np.integer))
            or cell_columns < 1
        ):
            raise ValueError(
                f"cell_columns {cell_columns!r} is invalid; it must be an integer >= 1"
            )
        self.dtype = _check_dtype(dtype)
        # Cells wider than the mesh only add identity blocks and cost O(b³) each.
        limit = max(device.layout.depth, DEFAULT_CELL_COLUMNS)
        if cell_columns > limit:
            raise ValueError(
                f"cell_columns {cell_columns!r} is invalid; it must be an integer from 1 "
                f"to {limit} for a mesh of {device.layout.depth} columns"
            )
        self.layout = device.layout
        self.n_modes = device.layout.n_modes
        self._columns_per_cell = int(cell_columns)
        # The device's arrays, kept to rebuild it for the recorded-field fallback. Keeping
        # the device itself would make a reference cycle with RealisedMesh.sweep.
        self._device_fields = (
            device.phases,
            device.coupler_angles,
            device.arm_amplitude,
            device.column_amplitude,
        )
        self._geometry = _cell_geometry(
            self.n_modes,
            device.layout.topology,
            self._columns_per_cell,
            device.column_amplitude is not None,
        )
        self._build_mzi_blocks(device)
        self._build_cells(device)
        self._matrix: np.ndarray | None = None
        self._partials: np.ndarray | None = None

    # ------------------------------------------------------------------ construction

    def _build_mzi_blocks(self, device: RealisedMesh) -> None:
        """Compute the 2×2 block of every MZI, followed by its column's waveguide loss."""
        layout = device.layout
        m = layout.n_mzis
        _, _, psi = layout.split_phases(device.phases)
        self._unit_scale = np.ones(m)
        if device.column_amplitude is None:
            w_top = w_bottom = self._unit_scale
        else:
            tops, columns = layout.mzi_top_modes, layout.mzi_columns
            w_top = device.column_amplitude[columns, tops]
            w_bottom = device.column_amplitude[columns, tops + 1]
        coupler_cos, coupler_sin = _coupler_terms(device.coupler_angles)
        blocks, k, top_power, adjoint_theta = mzi_blocks(
            np.ascontiguousarray(device.phases[: 2 * m], dtype=float),
            coupler_cos,
            coupler_sin,
            np.ascontiguousarray(device.arm_amplitude, dtype=float),
            np.ascontiguousarray(w_top, dtype=float),
            np.ascontiguousarray(w_bottom, dtype=float),
        )
        self._mzi_blocks = blocks
        # The field after θ is α·(k0·upper + k1·lower) of the fields entering the MZI.
        self._k = k
        self._top_power = top_power
        # How the adjoint fields at the MZI's outputs reach the point after θ.
        self._adjoint_theta = adjoint_theta
        self._output_rotation = _unit_phasor(psi)

    def _build_cells(self, device: RealisedMesh) -> None:
        """Gather the 2×2 block of every site and multiply them into the cells."""
        geometry = self._geometry
        # 2×2 block of every site: its MZI, the loss of idle waveguides, or identity.
        amplitude = (
            _NO_AMPLITUDE
            if device.column_amplitude is None
            else np.ascontiguousarray(device.column_amplitude, dtype=float).ravel()
        )
        elements, self._worst_condition = site_elements(
            self._mzi_blocks,
            geometry.site_mzi,
            geometry.idle_sites,
            geometry.idle_loss,
            geometry.idle_count,
            amplitude,
        )
        self._elements = elements
        self._invertible = bool(
            np.all(device.arm_amplitude > 0)
            and (device.column_amplitude is None or np.all(device.column_amplitude > 0))
        )

        # The cells: the running product P ← E·P of their local columns.
        self._cells = self._running_product(elements).astype(self.dtype, copy=False)
        self._inverse_cells: np.ndarray | None = None

    def _inverse(self) -> np.ndarray:
        """Return the inverse of every cell, ``(n_cells, 2b, 2b)``, built on first use as
        the product of the inverse blocks in reverse order, with inf or NaN where an
        amplitude is 0."""
        if self._inverse_cells is None:
            geometry = self._geometry
            with np.errstate(divide="ignore", invalid="ignore"):
                inverse = cell_products(
                    self._elements,
                    geometry.site_tops,
                    geometry.group_first,
                    geometry.group_count,
                    geometry.width,
                    True,
                )
            self._inverse_cells = inverse.astype(self.dtype, copy=False)
        return self._inverse_cells

    def _running_product(self, blocks: np.ndarray) -> np.ndarray:
        """Multiply the local columns of every cell, starting from the identity.

        The 2×2 ``blocks`` ``(2, 2, b², n_cells)`` of every site are applied as row
        operations, and the products ``(n_cells, 2b, 2b)`` are returned.
        """
        geometry = self._geometry
        return cell_products(
            blocks,
            geometry.site_tops,
            geometry.group_first,
            geometry.group_count,
            geometry.width,
            False,
        )

    # ------------------------------------------------------------------ properties

    @property
    def invertible(self) -> bool:
        """Whether every 2×2 block is invertible: no arm or waveguide amplitude is 0.

        The exact gradient needs the inverse blocks; without them it is computed from
        recorded fields.
        """
        return self._invertible

    @property
    def n_layers(self) -> int:
        """Number of layers of cells, about depth / cell_columns + 1."""
        return len(self._geometry.layers)

    def device(self) -> RealisedMesh:
        """Return the realised mesh these sums are taken over (a new, equal instance)."""
        phases, coupler_angles, arm_amplitude, column_amplitude = self._device_fields
        return RealisedMesh(
            self.layout, phases, coupler_angles, arm_amplitude, column_amplitude
        )

    # ------------------------------------------------------------------ transfer matrix

    def matrix(self) -> np.ndarray:
        """Return the realised transfer matrix U (output = U · input), read-only.

        Composed on first use by one product of 2b×2b blocks per layer applied to the
        identity, then cached in this object. Equal to ``RealisedMesh.matrix()`` to
        rounding. The partial products F_p before every layer are kept for the exact
        gradient when they fit in ``PARTIALS_BUDGET_BYTES``.
        """
        if self._matrix is None:
            geometry, n = self._geometry, self.n_modes
            real = slice(geometry.pad, geometry.pad + n)
            stored = len(geometry.layers) + 1
            keep = stored * geometry.padded * n * self.dtype.itemsize
            if keep <= PARTIALS_BUDGET_BYTES:
                partials = _take_buffer((stored, geometry.padded, n), self.dtype)
                weakref.finalize(self, _return_buffer, partials)
            else:
                # Two buffers, used in turn.
                partials = np.empty((2, geometry.padded, n), dtype=self.dtype)
            partials[0] = 0.0
            partials[0, real] = np.eye(n)
            for index, layer in enumerate(geometry.layers):
                before = partials[index % len(partials)]
                after = partials[(index + 1) % len(partials)]
                self._apply_layer(layer, before, after)
            rotation = self._output_rotation.astype(self.dtype)
            matrix = after[real] * rotation[:, None]
            matrix.setflags(write=False)
            self._matrix = matrix
            if len(partials) == stored:
                partials.setflags(write=False)
                self._partials = partials
        return self._matrix

    def _apply_layer(self, layer: _Layer, before: np.ndarray, after: np.ndarray) -> None:
        """Write ``layer``'s cells times ``before`` ``(padded, N)`` into ``after``."""
        width, n = self._geometry.width, self.n_modes
        blocks = layer.stop - layer.start
        rows = slice(layer.row_start, layer.row_stop)
        np.matmul(
            self._cells[layer.start : layer.stop],
            before[rows].reshape(blocks, width, n),
            out=after[rows].reshape(blocks, width, n),
        )
        after[: layer.row_start] = before[: layer.row_start]
        after[layer.row_stop :] = before[layer.row_stop :]

    # ------------------------------------------------------------------ sweeps

    @staticmethod
    def _copy_uncovered(
        source: np.ndarray, destination: np.ndarray, layer: _Layer, axis: int
    ) -> None:
        """Copy the real modes along ``axis`` that ``layer``'s cells leave unchanged."""
        for part in layer.uncovered:
            index = [slice(None)] * source.ndim
            index[axis] = part
            destination[tuple(index)] = source[tuple(index)]

    def _sweep(
        self,
        start: np.ndarray,
        left: np.ndarray,
        right: np.ndarray,
        reverse: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Apply X ← L X R layer by layer to a stack of N×N matrices.

        ``left`` and ``right`` hold one 2b×2b block per cell. Returns the diagonal block
        of every cell taken before its layer is applied, ``(stack, n_cells, 2b, 2b)``,
        and the final matrices ``(stack, N, N)``.
        """
        geometry, n = self._geometry, self.n_modes
        size, width = geometry.padded, geometry.width
        area = width * width
        stack = start.shape[0]
        real = slice(geometry.pad, geometry.pad + n)
        current = np.zeros((stack, size, size), dtype=self.dtype)
        current[:, real, real] = start
        spare = np.zeros_like(current)
        flat = current.reshape(stack, size * size)
        taken = np.empty((stack, geometry.n_cells * area), dtype=self.dtype)

        layers = geometry.layers[::-1] if reverse else geometry.layers
        for layer in layers:
            blocks = layer.stop - layer.start
            cells = slice(layer.start, layer.stop)
            rows = slice(layer.row_start, layer.row_stop)
            for index in range(stack):
                np.take(
                    flat[index],
                    layer.take_index,
                    out=taken[index, area * layer.start : area * layer.stop],
                )

            np.matmul(
                left[cells],
                current[:, rows, real].reshape(stack, blocks, width, n),
                out=spare[:, rows, real].reshape(stack, blocks, width, n),
            )
            if layer.uncovered:
                self._copy_uncovered(current, spare, layer, axis=1)
            column_view = (stack, n, blocks, width)
            np.matmul(
                spare[:, real, rows].reshape(column_view).transpose(0, 2, 1, 3),
                right[cells],
                out=current[:, real, rows].reshape(column_view).transpose(0, 2, 1, 3),
            )
            if layer.uncovered:
                self._copy_uncovered(spare, current, layer, axis=2)

        taken = taken.reshape(stack, geometry.n_cells, width, width)
        return taken, current[:, real, real]

    def _exact_blocks(
        self, outer: np.ndarray, partials: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return every cell's block of F_p·M·G_p at its start and the output values.

        Z = M·G_p ``(N, padded)`` starts from M·P_ψ at the outputs and moves back
        through the layers as Z ← Z·B. The block of a cell is F_p[rows]·Z_p[:, rows],
        with F_p from ``partials``. Returns the blocks ``(1, n_cells, 2b, 2b)`` and the
        diagonal of F_D·M·P_ψ ``(1, N)``, the values at the output phases.
        """
        geometry, n = self._geometry, self.n_modes
        width = geometry.width
        real = slice(geometry.pad, geometry.pad + n)
        rotation = self._output_rotation.astype(self.dtype)
        current = np.zeros((n, geometry.padded), dtype=self.dtype)
        current[:, real] = outer * rotation[None, :]
        output = np.einsum("kj,jk->k", partials[-1, real], current[:, real])
        spare = np.zeros_like(current)
        blocks = np.empty((1, geometry.n_cells, width, width), dtype=self.dtype)
        for index in range(len(geometry.layers) - 1, -1, -1):
            layer = geometry.layers[index]
            count = layer.stop - layer.start
            cells = slice(layer.start, layer.stop)
            rows = slice(layer.row_start, layer.row_stop)
            view = (n, count, width)
            np.matmul(
                current[:, rows].reshape(view).transpose(1, 0, 2),
                self._cells[cells],
                out=spare[:, rows].reshape(view).transpose(1, 0, 2),
            )
            if layer.uncovered:
                self._copy_uncovered(current, spare, layer, axis=1)
            current, spare = spare, current
            np.matmul(
                partials[index, rows].reshape(count, width, n),
                current[:, rows].reshape(view).transpose(1, 0, 2),
                out=blocks[0, cells],
            )
        return blocks, output[None]

    # ------------------------------------------------------------------ values at sites

    def _values(
        self, kind: str, blocks: np.ndarray, output: np.ndarray
    ) -> np.ndarray:
        """Compute the values at every phase shifter, ``(stack, N²)`` in phase-vector order.

        ``blocks`` ``(stack, n_cells, 2b, 2b)`` are the cells' diagonal blocks of the
        swept matrices at the cells' start ("exact", "forward") or end ("adjoint"); they
        are overwritten. Each is carried through the cell's local columns like the whole
        matrix through the layers: X ← E X E⁻¹ ("exact"), X ← E X Eᴴ ("forward") or,
        backwards, X ← Eᵀ X Ē ("adjoint"). A value is a quadratic form Σ c_i d_j X_ij in
        the 2×2 block on the site's pair of modes just before ("exact", "forward") or
        after ("adjoint") the site's column. ``output`` ``(stack, N)`` contains the values
        at the output phases.
        """
        geometry = self._geometry
        # The compiled loop works in complex128 and carries each block in place.
        state = np.asarray(blocks, dtype=np.complex128)
        m = self.layout.n_mzis
        values = np.empty((state.shape[0], 2 * m + self.n_modes), dtype=np.complex128)
        values[:, 2 * m :] = output
        if kind == "adjoint":
            # The power after θ is Σ v_i X_ij v̄_j over the state after the column, with
            # v how the adjoint fields at the MZI's outputs reach that point.
            code, weights, scale = KIND_ADJOINT, self._adjoint_theta, self._unit_scale
        elif kind == "exact":
            # The field after θ is α·(k0·upper + k1·lower) of the MZI's inputs, and
            # the field after φ has the power of the upper input.
            code, weights, scale = KIND_EXACT, self._k, self._unit_scale
        else:
            code, weights, scale = KIND_FORWARD, self._k, self._top_power
        site_values(
            state,
            self._elements,
            code,
            weights,
            scale,
            geometry.site_mzi,
            geometry.site_tops,
            geometry.group_first,
            geometry.group_count,
            values,
        )
        return values

    # ------------------------------------------------------------------ public sums

    def exact_gradient(self, x: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """Compute the exact gradient −Im Σ_b a_b·b_b of the batch for every phase.

        The forward fields a come from the inputs ``x`` and the adjoint fields b from the
        sources ``delta`` launched into the output ports, as in the reference computation.
        The result is in phase-vector order (θ, φ, ψ), in 1/rad. The fields are recorded
        sample by sample instead, which needs batch·N² memory, when ``invertible`` is
        False, when a cell's blocks are conditioned worse than
        ``EXACT_CONDITION_LIMIT``, or, for meshes too large to keep their partial
        products, when the sweep's residual exceeds ``EXACT_RESIDUAL_TOLERANCE``.

        NOTE: for meshes too large to keep their partial products, the residual is
        checked after the last layer only. Rounding errors that grow in the middle of
        the mesh and shrink again before its end go unnoticed.

        Raises:
            ValueError: for fields of the wrong shape or with NaN, or batches of
                different sizes.
        """
        x = _check_fields(x, self.n_modes, "x", finite=False)
        delta = _check_fields(delta, self.n_modes, "delta", finite=False)
        if x.shape[0] != delta.shape[0]:
            raise ValueError(
                f"x has {x.shape[0]} samples but delta has {delta.shape[0]}; "
                "every sample needs its adjoint source"
            )
        if not self.invertible:
            logger.debug("a mesh amplitude is 0; exact gradient from recorded fields")
            _check_fields(x, self.n_modes, "x")
            _check_fields(delta, self.n_modes, "delta")
            return _exact_gradient_from_fields(self.device(), x, delta)

        outer = _batch_product(x, delta, self.dtype, conjugate=False)
        # A NaN or infinite entry of x or delta makes Σ x_b δ_bᵀ non-finite (0·inf is
        # NaN), so the fields are checked entry by entry only then, for the message.
        if not np.all(np.isfinite(outer)):
            _check_fields(x, self.n_modes, "x")
            _check_fields(delta, self.n_modes, "delta")
            _raise_overflow(
                "x and delta",
                self.dtype,
                float(max(np.max(np.abs(x)), np.max(np.abs(delta)))),
            )
        if not self._worst_condition <= EXACT_CONDITION_LIMIT[self.dtype]:
            logger.debug(
                "a cell's blocks have a condition product of %.1e, above %.0e; "
                "exact gradient from recorded fields",
                self._worst_condition,
                EXACT_CONDITION_LIMIT[self.dtype],
            )
            return _exact_gradient_from_fields(self.device(), x, delta)
        matrix = self.matrix()
        if self._partials is not None:
            blocks, output = self._exact_blocks(outer, self._partials)
            gradient = -self._values("exact", blocks, output)[0].imag
            _check_sums(gradient, "x and delta", self.dtype, x, delta)
            return gradient

        start = (outer @ matrix)[None]
        blocks, final = self._sweep(start, self._cells, self._inverse())

        # After the last layer the swept matrix is F_D·M·U·F_D⁻¹ with U = P_ψ·F_D, that
        # is P_ψ⁻¹·(U·M)·P_ψ: compare, to catch rounding errors grown by lossy blocks.
        rotation = self._output_rotation.astype(self.dtype)
        expected = (matrix @ outer) * (rotation.conj()[:, None] * rotation[None, :])
        scale = np.linalg.norm(expected)
        residual = np.linalg.norm(final[0] - expected) / scale if scale > 0 else 0.0
        if not residual <= EXACT_RESIDUAL_TOLERANCE[self.dtype]:
            logger.debug(
                "exact gradient sweep residual %.2e exceeds %.0e; using recorded fields",
                residual,
                EXACT_RESIDUAL_TOLERANCE[self.dtype],
            )
            return _exact_gradient_from_fields(self.device(), x, delta)

        values = self._values("exact", blocks, np.diagonal(final, axis1=1, axis2=2))
        gradient = -values[0].imag
        _check_sums(gradient, "x and delta", self.dtype, x, delta)
        return gradient

    def batch_powers(
        self,
        fields: np.ndarray,
        direction: str,
        weights: np.ndarray | None = None,
        name: str = "fields",
    ) -> np.ndarray:
        """Weighted batch sums Σ_b w_b·|field_b|² at every phase shifter.

        Args:
            fields: ``(batch, N)`` fields launched into the input ports (direction
                "forward") or into the output ports ("adjoint").
            direction: "forward" or "adjoint".
            weights: ``(batch,)`` weights, ``(stack, batch)`` for several weightings at
                once, or None for a plain sum.
            name: what to call the fields in an error message.

        Returns:
            ``(N²,)`` sums in phase-vector order (θ, φ, ψ), or ``(stack, N²)``, in units
            of the launched power, at the points where ``RealisedMesh.forward`` and
            ``backward`` record their fields.

        Raises:
            ValueError: for an unknown direction, or fields or weights of the wrong
                shape or with NaN.
        """
        if direction not in DIRECTIONS:
            raise ValueError(
                f"direction {direction!r} is unknown; choose forward or adjoint"
            )
        fields = _check_fields(fields, self.n_modes, name, finite=False)
        batch = fields.shape[0]
        if weights is not None and np.ndim(weights) not in (1, 2):
            raise ValueError(
                f"weights have shape {np.shape(weights)}; expected ({batch},) or "
                f"(stack, {batch})"
            )
        if weights is not None and np.ndim(weights) == 2 and len(weights) == 0:
            raise ValueError(
                f"weights have shape {np.shape(weights)}; a stack needs at least one row"
            )
        single = weights is None or np.ndim(weights) == 1
        rows = (
            [_check_weights(weights, batch)]
            if single
            else [_check_weights(row, batch) for row in weights]
        )
        # Every value is linear in the Gram matrix and real for real weights, so one
        # sweep of Q(w1) + i·Q(w2) returns the sums of two weightings as its real and
        # imaginary parts.
        paired = [
            rows[i] + 1j * rows[i + 1] if i + 1 < len(rows) else rows[i]
            for i in range(0, len(rows), 2)
        ]
        grams = np.stack([_gram(fields, row, self.dtype, name) for row in paired])
        sums = self._power_sums(grams, direction)
        _check_sums(sums, name, self.dtype, fields)
        result = np.empty((len(rows), sums.shape[1]))
        result[0::2] = sums.real
        result[1::2] = sums[: len(rows) // 2].imag
        return result[0] if single else result

    def combined_powers(
        self,
        terms: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
        direction: str,
        names: tuple[str, ...] | None = None,
    ) -> np.ndarray:
        """Two weighted power sums over several batches, from one Gram and one sweep.

        Args:
            terms: (fields, weights, second weights or None) for every batch, the fields
                ``(batch, N)`` launched in ``direction`` and the weights ``(batch,)``.
            direction: "forward" or "adjoint".
            names: what to call each term's fields in an error message; "fields" by
                default.

        Returns:
            ``(2, N²)``: Σ over the terms of Σ_b w_b·P_b, and of Σ_b v_b·P_b with the
            second weights v (zeros when every term has None).

        Raises:
            ValueError: for an unknown direction, or fields or weights of the wrong
                shape or with NaN.
        """
        if direction not in DIRECTIONS:
            raise ValueError(
                f"direction {direction!r} is unknown; choose forward or adjoint"
            )
        names = ("fields",) * len(terms) if names is None else names
        gram = np.zeros((self.n_modes, self.n_modes), dtype=self.dtype)
        for (fields, weights, second), name in zip(terms, names, strict=True):
            fields = _check_fields(fields, self.n_modes, name, finite=False)
            weights = _check_weights(weights, fields.shape[0])
            if second is not None:
                weights = weights + 1j * _check_weights(second, fields.shape[0])
            gram += _gram(fields, weights, self.dtype, name)
        sums = self._power_sums(gram[None], direction)[0]
        _check_sums(sums, " and ".join(names), self.dtype, *[term[0] for term in terms])
        return np.stack([sums.real, sums.imag])

    def _power_sums(self, grams: np.ndarray, direction: str) -> np.ndarray:
        """Values ``(stack, N²)`` of the power forms for a stack of Gram matrices: the
        weighted power sums, complex when the weights were."""
        if direction == "forward":
            blocks, final = self._sweep(
                grams, self._cells, self._cells.conj().transpose(0, 2, 1)
            )
            output = np.diagonal(final, axis1=1, axis2=2)
        else:
            rotation = self._output_rotation.astype(self.dtype)
            start = grams * (rotation[:, None] * rotation.conj()[None, :])
            blocks, _ = self._sweep(
                start,
                np.ascontiguousarray(self._cells.transpose(0, 2, 1)),
                self._cells.conj(),
                reverse=True,
            )
            output = np.diagonal(grams, axis1=1, axis2=2)
        return self._values(direction, blocks, output)


def _exact_gradient_from_fields(
    device: RealisedMesh, x: np.ndarray, delta: np.ndarray
) -> np.ndarray:
    """−Im Σ_b a·b from the fields recorded sample by sample (batch·N² memory)."""
    _, forward = device.forward(x, record=True)
    _, adjoint = device.backward(delta, record=True)
    return -np.imag(np.sum(forward.stacked() * adjoint.stacked(), axis=0))


def _powers_from_fields(
    device: RealisedMesh, fields: np.ndarray, direction: str
) -> np.ndarray:
    """Powers ``(batch, N²)`` at every shifter from the fields recorded sample by sample."""
    if direction == "forward":
        _, recorded = device.forward(fields, record=True)
    else:
        _, recorded = device.backward(fields, record=True)
    return recorded.powers()


# ----------------------------------------------------------------------------------------
# Functions on devices


def sweep_for(
    device: RealisedMesh, dtype: type | np.dtype = np.complex128
) -> MeshSweep:
    """Return the ``MeshSweep`` of ``device``: the one it keeps (``RealisedMesh.sweep``)
    for complex128, a new one for complex64.

    Raises:
        ValueError: for an unsupported dtype.
    """
    if _check_dtype(dtype) == np.dtype(np.complex128):
        return device.sweep
    return MeshSweep(device, dtype)


def compose_matrix(
    device: RealisedMesh, dtype: type | np.dtype = np.complex128
) -> np.ndarray:
    """Compose the realised transfer matrix U of ``device`` (output = U · input).

    One product of 2b×2b blocks per layer of cells, about depth/4 + 1 products of O(N²)
    each. The complex128 matrix is cached on the device (``RealisedMesh.transfer_matrix``).

    Returns:
        A read-only N×N array of ``dtype``.

    Raises:
        ValueError: for an unsupported dtype.
    """
    return sweep_for(device, dtype).matrix()


def propagate(device: RealisedMesh, x: np.ndarray) -> np.ndarray:
    """Propagate inputs through ``device`` with its cached transfer matrix: ``x @ U.T``.

    Equal to ``device.forward(x)[0]`` to rounding. U is composed on the first call and
    reused while the device exists. A device is frozen, so new phases mean a new device
    and a new U.

    Raises:
        ValueError: for fields of the wrong shape or with NaN.
    """
    single = np.ndim(x) == 1
    fields = _check_fields(x, device.layout.n_modes, "x")
    out = fields @ device.transfer_matrix.T
    return out[0] if single else out


def propagate_backward(device: RealisedMesh, y: np.ndarray) -> np.ndarray:
    """Launch ``y`` into the output ports of ``device``: ``y @ U`` (reciprocity).

    Equal to ``device.backward(y)[0]`` to rounding, with the cached transfer matrix.

    Raises:
        ValueError: for fields of the wrong shape or with NaN.
    """
    single = np.ndim(y) == 1
    fields = _check_fields(y, device.layout.n_modes, "y")
    out = fields @ device.transfer_matrix
    return out[0] if single else out


def exact_batch_gradient(
    device: RealisedMesh,
    x: np.ndarray,
    delta: np.ndarray,
    dtype: type | np.dtype = np.complex128,
) -> np.ndarray:
    """Compute the exact gradient −Im Σ_b a_b·b_b of one layer for its phases (θ, φ, ψ).

    ``x`` are the inputs launched into the device and ``delta`` the adjoint sources
    launched into its outputs, both ``(batch, N)``. The result, in 1/rad, equals the
    per-layer sum of ``photonic.reference.exact_gradient``. ``MeshSweep.exact_gradient``
    describes when it falls back to recorded fields.

    Raises:
        ValueError: for fields of the wrong shape or with NaN, batches of different
            sizes, or an unsupported dtype.
    """
    return sweep_for(device, dtype).exact_gradient(x, delta)


def batch_powers(
    device: RealisedMesh,
    fields: np.ndarray,
    direction: str,
    weights: np.ndarray | None = None,
    dtype: type | np.dtype = np.complex128,
) -> np.ndarray:
    """Compute weighted batch sums of the true powers at every shifter of ``device``.

    ``MeshSweep.batch_powers`` describes the arguments and the result.

    Raises:
        ValueError: for an unknown direction, fields or weights of the wrong shape or
            with NaN, or an unsupported dtype.
    """
    return sweep_for(device, dtype).batch_powers(fields, direction, weights)


# A monitor configuration is frozen and hashable. Every measured gradient needs the
# variance of its three monitors, so the noise evaluations are cached per configuration.
@functools.lru_cache(maxsize=64)
def reading_variance(monitor: DetectorConfig) -> tuple[float, float] | None:
    """Return the coefficients (c0, c1) of the variance c0 + c1·P of one reading.

    Readings are in units of the launched power. Returns None when the readings of a
    batch cannot be summed before the noise is drawn: with an ADC, which quantizes each
    reading, or if the variance is not affine in P.
    """
    if monitor.adc_bits is not None:
        return None
    v0, v1, v2 = (float(noise_std(power, monitor)) ** 2 for power in (0.0, 1.0, 2.0))
    c0, c1 = v0, v1 - v0
    if not math.isclose(v2, c0 + 2 * c1, rel_tol=1e-9, abs_tol=1e-300):
        return None
    return c0, c1


def _require_rng(
    rng: np.random.Generator | None, monitor: DetectorConfig
) -> np.random.Generator:
    if rng is not None:
        return rng
    if not monitor.is_noiseless:
        raise ValueError(
            "rng is missing; a noisy monitor needs a numpy Generator for its draws"
        )
    # A noiseless reading draws nothing; detect() still takes a generator.
    return np.random.default_rng(0)


def batch_monitor_readings(
    device: RealisedMesh,
    fields: np.ndarray,
    direction: str,
    monitor: DetectorConfig | None = None,
    rng: np.random.Generator | None = None,
    weights: np.ndarray | None = None,
    dtype: type | np.dtype = np.complex128,
    name: str = "fields",
) -> np.ndarray:
    """Draw the weighted batch sum Σ_b w_b·r_b of the monitor readings r_b of one pass.

    The readings are those of ``photonic.detection.detect``, one draw per sample and
    monitor. Without an ADC the sum is drawn at once as Σ_b w_b P_b + sqrt(c0·Σ w_b² +
    c1·Σ w_b² P_b)·n, with one standard normal n per monitor. A sum of independent
    Gaussians has that distribution, and it takes N² draws from ``rng`` instead of
    batch·N². With an ADC every sample is recorded and read on its own.

    Args:
        device: the device of the pass.
        fields: ``(batch, N)`` fields launched into the inputs ("forward") or the
            outputs ("adjoint").
        direction: "forward" or "adjoint".
        monitor: the monitor model; None reads true powers.
        rng: source of the noise draws; needed when the monitor is noisy.
        weights: ``(batch,)`` weights w_b; None means 1.
        dtype: complex128 or complex64 for the sweep.
        name: what to call the fields in an error message.

    Returns:
        ``(N²,)`` summed readings in phase-vector order, in units of the launched power.

    Raises:
        ValueError: for an unknown direction, fields or weights of the wrong shape,
            a noisy monitor without ``rng``, or an unsupported dtype.
    """
    monitor = DetectorConfig.ideal() if monitor is None else monitor
    if direction not in DIRECTIONS:
        raise ValueError(
            f"direction {direction!r} is unknown; choose forward or adjoint"
        )
    # The sweep finds non-finite fields in its Gram matrix; recorded fields are checked here.
    fields = _check_fields(fields, device.layout.n_modes, name, finite=False)
    weights = _check_weights(weights, fields.shape[0])
    variance = reading_variance(monitor)
    if variance is None:
        _check_fields(fields, device.layout.n_modes, name)
        readings = detect(
            _powers_from_fields(device, fields, direction),
            monitor,
            _require_rng(rng, monitor),
        )
        return weights @ readings

    sweep = sweep_for(device, dtype)
    c0, c1 = variance
    if c0 == 0 and c1 == 0:
        return sweep.batch_powers(fields, direction, weights, name)
    rng = _require_rng(rng, monitor)
    sums = sweep.batch_powers(fields, direction, np.stack([weights, weights**2]), name)
    spread = c0 * np.sum(weights**2) + c1 * np.maximum(sums[1], 0.0)
    return sums[0] + np.sqrt(spread) * rng.standard_normal(sums.shape[1])


def _sample_powers(fields: np.ndarray) -> np.ndarray:
    """Return Σ_k |f_bk|² of every sample, in one pass over the real and imaginary parts."""
    fields = np.ascontiguousarray(fields, dtype=np.complex128)
    parts = fields.view(np.float64).reshape(fields.shape[0], -1)
    return np.einsum("bk,bk->b", parts, parts)


def interference_input(x: np.ndarray, adjoint_out: np.ndarray) -> np.ndarray:
    """Return the input x − i·conj(x_adj) of the interference pass, ``(batch, N)``.

    Written out as (Re x − Im x_adj) + i·(Im x − Re x_adj), which needs no temporary
    arrays; two arrays of equal shape ``(batch, N)`` take one compiled pass.
    """
    x = np.asarray(x)
    adjoint_out = np.asarray(adjoint_out)
    if x.ndim == 2 and x.shape == adjoint_out.shape:
        return interference_fields(
            np.ascontiguousarray(x, dtype=np.complex128),
            np.ascontiguousarray(adjoint_out, dtype=np.complex128),
        )
    out = np.empty(np.broadcast_shapes(x.shape, adjoint_out.shape), np.complex128)
    np.subtract(x.real, adjoint_out.imag, out=out.real)
    np.subtract(x.imag, adjoint_out.real, out=out.imag)
    return out


def adjoint_gain(
    x: np.ndarray, delta: np.ndarray, output_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Return the per-sample gain of the launched adjoint source and its inverse weight.

    The in situ protocol launches every sample's source at the power of its forward
    input: gain_b = sqrt(|x_b|² / (s²·|δ_b|²)) with s the layer's digital output scale,
    and weighs the measured gradient by 1/gain_b. Both are 0 for a sample whose source
    is 0.

    Returns:
        ``(gain, weight)``, each ``(batch,)``.
    """
    input_power = _sample_powers(x)
    source_power = output_scale**2 * _sample_powers(delta)
    gain = np.sqrt(
        np.divide(
            input_power,
            source_power,
            out=np.zeros_like(input_power),
            where=source_power > 0,
        )
    )
    weight = np.divide(1.0, gain, out=np.zeros_like(gain), where=gain > 0)
    return gain, weight


@dataclass(frozen=True)
class OpticalPass:
    """One optical pass of a measured gradient.

    Attributes:
        device: the device during the pass, with its phase noise.
        fields: ``(batch, N)`` fields the modulators launched: into the input ports for
            the forward and the interference pass, into the output ports for the
            adjoint pass.
        monitor: the phase-shifter tap monitors of the pass.
    """

    device: RealisedMesh
    fields: np.ndarray
    monitor: DetectorConfig = field(default_factory=DetectorConfig.ideal)


def same_device(first: RealisedMesh, second: RealisedMesh) -> bool:
    """Return whether two realised meshes have equal phases and static errors.

    ``Chip.pass_device`` returns one instance while the phases stay the same, and other
    chips or callers may build equal devices of their own. When two passes see the same
    device, one instance and its cached ``sweep`` can serve both.
    """
    if first is second:
        return True
    if (first.layout.n_modes, first.layout.topology) != (
        second.layout.n_modes,
        second.layout.topology,
    ):
        return False
    if (first.column_amplitude is None) != (second.column_amplitude is None):
        return False
    pairs = [
        (first.phases, second.phases),
        (first.coupler_angles, second.coupler_angles),
        (first.arm_amplitude, second.arm_amplitude),
    ]
    if first.column_amplitude is not None:
        pairs.append((first.column_amplitude, second.column_amplitude))
    return all(np.array_equal(a, b) for a, b in pairs)


def measured_batch_gradient(
    forward: OpticalPass,
    adjoint: OpticalPass,
    interference: OpticalPass,
    weights: np.ndarray,
    rng: np.random.Generator | None = None,
    power_factors: np.ndarray | None = None,
    dtype: type | np.dtype = np.complex128,
) -> np.ndarray:
    """Compute the measured gradient of one layer from batch sums of monitor readings.

    The result is Σ_b w_b·(P_sum − P_fwd − P_bwd)_b / 2, the sum that ``InSituStep``
    forms from per-sample readings, with w_b the weight that undoes the adjoint gain
    (``adjoint_gain``). With ``power_factors`` f from ``Chip.nominal_power_factors`` it
    is the loss-corrected Σ_b w_b·(P_sum − P_fwd − f²·P_bwd)_b / (2f).

    Monitor noise is drawn for the sums (``batch_monitor_readings``). The forward and the
    interference pass may have the same device (no phase noise) and monitors without an
    ADC. Then the difference P_sum − P_fwd is swept and drawn as one quantity, with the
    noise of both passes. The draws therefore differ from ``InSituStep``'s per-sample
    draws, but the result has the same distribution.

    Args:
        forward: the forward pass: the layer input as launched.
        adjoint: the adjoint pass: the source as launched, gain included.
        interference: the interference pass: x − i·conj(x_adj) as launched.
        weights: ``(batch,)`` per-sample weights.
        rng: source of the monitor noise; needed when a monitor is noisy.
        power_factors: ``(N²,)`` nominal power transmission to every shifter, or None.
        dtype: complex128 or complex64 for the sweeps.

    Returns:
        ``(N²,)`` measured gradient in phase-vector order, in 1/rad.

    Raises:
        ValueError: for passes on meshes of different sizes, fields or weights of the
            wrong shape, power factors that are not positive, a noisy monitor without
            ``rng``, or an unsupported dtype.
    """
    n = forward.device.layout.n_modes
    for name, optical_pass in (("adjoint", adjoint), ("interference", interference)):
        if optical_pass.device.layout.n_modes != n:
            raise ValueError(
                f"the {name} pass runs on a mesh of {optical_pass.device.layout.n_modes} "
                f"modes but the forward pass on {n}; all passes need the same mesh"
            )
    batch = _check_fields(forward.fields, n, "forward fields", finite=False).shape[0]
    for name, optical_pass in (("adjoint", adjoint), ("interference", interference)):
        samples = _check_fields(
            optical_pass.fields, n, f"{name} fields", finite=False
        ).shape[0]
        if samples != batch:
            raise ValueError(
                f"the {name} pass has {samples} samples but the forward pass {batch}; "
                "every pass needs the same batch"
            )
    weights = _check_weights(weights, batch)

    forward_variance = reading_variance(forward.monitor)
    interference_variance = reading_variance(interference.monitor)
    if (
        forward_variance is not None
        and interference_variance is not None
        and same_device(forward.device, interference.device)
    ):
        difference = _summed_difference(
            forward,
            interference,
            weights,
            forward_variance,
            interference_variance,
            rng,
            dtype,
        )
    else:
        difference = batch_monitor_readings(
            interference.device,
            interference.fields,
            "forward",
            interference.monitor,
            rng,
            weights,
            dtype,
            "interference fields",
        ) - batch_monitor_readings(
            forward.device,
            forward.fields,
            "forward",
            forward.monitor,
            rng,
            weights,
            dtype,
            "forward fields",
        )
    adjoint_device = adjoint.device
    if same_device(adjoint_device, forward.device):
        adjoint_device = forward.device
    backward = batch_monitor_readings(
        adjoint_device,
        adjoint.fields,
        "adjoint",
        adjoint.monitor,
        rng,
        weights,
        dtype,
        "adjoint fields",
    )
    if power_factors is None:
        return 0.5 * (difference - backward)
    factors = np.asarray(power_factors, dtype=float)
    if (
        factors.shape != difference.shape
        or not np.all(factors > 0)
        or not np.all(np.isfinite(factors))
    ):
        raise ValueError(
            f"power_factors must be {difference.shape[0]} positive finite numbers, one "
            f"per phase; got shape {factors.shape}"
        )
    return 0.5 * (difference - factors**2 * backward) / factors


def _summed_difference(
    forward: OpticalPass,
    interference: OpticalPass,
    weights: np.ndarray,
    forward_variance: tuple[float, float],
    interference_variance: tuple[float, float],
    rng: np.random.Generator | None,
    dtype: type | np.dtype,
) -> np.ndarray:
    """Draw Σ_b w_b·(r_sum − r_fwd)_b at once for two passes through the same device."""
    n = forward.device.layout.n_modes
    # Non-finite fields make the Gram matrix non-finite; combined_powers then names them.
    summed = _check_fields(interference.fields, n, "interference fields", finite=False)
    launched = _check_fields(forward.fields, n, "forward fields", finite=False)
    (c0_f, c1_f), (c0_i, c1_i) = forward_variance, interference_variance
    noisy = max(c0_f, c1_f, c0_i, c1_i) > 0
    sums = sweep_for(forward.device, dtype).combined_powers(
        [(summed, weights, c1_i * weights**2), (launched, -weights, c1_f * weights**2)]
        if noisy
        else [(summed, weights, None), (launched, -weights, None)],
        "forward",
        names=("interference fields", "forward fields"),
    )
    if not noisy:
        return sums[0]
    if rng is None:
        raise ValueError(
            "rng is missing; a noisy monitor needs a numpy Generator for its draws"
        )
    spread = (c0_f + c0_i) * np.sum(weights**2) + np.maximum(sums[1], 0.0)
    return sums[0] + np.sqrt(spread) * rng.standard_normal(sums.shape[1])
