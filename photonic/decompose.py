"""Programming a mesh from a unitary matrix: the Clements and Reck decompositions.

Both decompositions return the phase vector (θ of every MZI, φ of every MZI, output
phases ψ) of the layout ``MeshLayout.create(N, topology)``, in rad, so that
``RealisedMesh.ideal(layout, phases).matrix()`` reproduces the input unitary U.

The MZI convention is the one of ``photonic.mzi``. Written out, with s = sin(θ/2) and
c = cos(θ/2),

    T(θ, φ) = i·e^{iθ/2} · [[s·e^{iφ}, c], [c·e^{iφ}, −s]],

so θ alone sets the splitting magnitudes, and the angle that nulls one of a pair of
amplitudes (a, b) is a two-argument arctangent of |a| and |b|. Every MZI gets θ in
[0, π]. When both amplitudes of a nulling are exactly zero, any θ works, and the
decomposition picks the bar state θ = π, φ = 0 so that modes carrying no light stay
uncoupled. With that choice the identity (or any diagonal unitary) programs every MZI to
the bar state in both topologies. The reversal permutation programs every MZI to the
cross state in both topologies without needing a tie-break.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from photonic.mesh import TOPOLOGIES, MeshLayout

logger = logging.getLogger(__name__)

UNITARITY_TOLERANCE = 1e-8
"""Default maximum of |U†U − I| that ``check_unitary`` and the decompositions accept.

It is far above the rounding error of a unitary built in double precision, which we
estimate at about 1e-15 · N. The decompositions treat the input as exactly unitary, so a
matrix accepted at tolerance t is reproduced only to about t.
"""

TWO_PI = 2 * np.pi


def _check_tolerance(tol: float) -> float:
    try:
        value = float(tol)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(
            f"tolerance {tol!r} is invalid; it must be a finite number >= 0"
        )
    return value


def check_unitary(matrix: np.ndarray, tol: float = UNITARITY_TOLERANCE) -> np.ndarray:
    """Validate a unitary matrix and return it as a new complex128 array.

    The matrix must be 2-D, square, at least 2×2 and finite, and its deviation from
    unitarity, max |U†U − I| over all entries, must not exceed ``tol``.

    Args:
        matrix: the candidate N×N unitary, any numeric array-like.
        tol: maximum accepted deviation from unitarity; defaults to
            ``UNITARITY_TOLERANCE``.

    Raises:
        ValueError: if the matrix is not numeric, not 2-D, not square, smaller than
            2×2 or not finite. Also raised if it deviates from unitarity by more than
            ``tol``, with the measured deviation in the message, and for a negative or
            non-finite ``tol``.
    """
    tol = _check_tolerance(tol)
    try:
        unitary = np.array(matrix, dtype=np.complex128, copy=True)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"matrix cannot be converted to a complex array: {error}"
        ) from error

    if unitary.ndim != 2:
        raise ValueError(
            f"matrix has shape {unitary.shape} ({unitary.ndim}-D); "
            "a unitary must be a 2-D square array"
        )
    rows, cols = unitary.shape
    if rows != cols:
        raise ValueError(
            f"matrix has shape {unitary.shape}; a unitary must be square (N, N)"
        )
    if rows < 2:
        raise ValueError(
            f"matrix has shape {unitary.shape}; a mesh needs at least 2 modes, "
            "so N >= 2"
        )

    finite = np.isfinite(unitary)
    if not np.all(finite):
        row, col = np.argwhere(~finite)[0]
        raise ValueError(
            f"matrix contains NaN or infinity ({unitary[row, col]} at row {row}, "
            f"column {col}); every entry of a unitary must be finite"
        )

    deviation = float(np.max(np.abs(unitary.conj().T @ unitary - np.eye(rows))))
    if not deviation <= tol:
        raise ValueError(
            f"matrix is not unitary: max |U^H U - I| = {deviation:.3e} exceeds the "
            f"tolerance {tol:.3e}; pass a unitary matrix or a larger tol"
        )
    return unitary


def _unit_phase(z: complex, magnitude: float) -> complex:
    """Return z/|z|, or 1 for z = 0, matching np.angle(0) = 0."""
    return z / magnitude if magnitude > 0 else 1.0 + 0.0j


def _wrap_phase(phases: np.ndarray) -> np.ndarray:
    """Wrap phases into [0, 2π) rad."""
    wrapped = np.mod(phases, TWO_PI)
    # np.mod returns exactly 2π for tiny negative inputs because 2π − 1e-17 rounds
    # to 2π.
    wrapped[wrapped >= TWO_PI] = 0.0
    return wrapped


def _null_with_column_mzi(
    unitary: np.ndarray, row: int, mode: int
) -> tuple[float, float]:
    """Null ``unitary[row, mode]`` by U ← U · T(θ, φ)⁻¹ on columns (mode, mode + 1).

    Row ``row`` becomes (a, b) · T⁻¹ on these columns, and its first entry is
    −i·e^{−iθ/2}·(a·s·e^{−iφ} + b·c). It vanishes for tan(θ/2) = |b|/|a| and
    φ = arg a − arg b − π. Returns (θ, φ) in rad, with φ not yet wrapped.
    """
    a = complex(unitary[row, mode])
    b = complex(unitary[row, mode + 1])
    abs_a, abs_b = abs(a), abs(b)
    radius = math.hypot(abs_a, abs_b)
    if radius > 0:
        sin_half, cos_half = abs_b / radius, abs_a / radius
    else:
        sin_half, cos_half = 1.0, 0.0

    unit_a, unit_b = _unit_phase(a, abs_a), _unit_phase(b, abs_b)
    rot_minus_phi = -unit_a.conjugate() * unit_b
    # T⁻¹ = T† = −i·e^{−iθ/2}·[[s·e^{−iφ}, c·e^{−iφ}], [c, −s]],
    # with −i·e^{−iθ/2} = −s − i·c.
    prefactor = complex(-sin_half, -cos_half)
    t00 = prefactor * sin_half * rot_minus_phi
    t01 = prefactor * cos_half * rot_minus_phi
    t10 = prefactor * cos_half
    t11 = -prefactor * sin_half

    left = unitary[:, mode].copy()
    right = unitary[:, mode + 1]
    unitary[:, mode] = left * t00 + right * t10
    unitary[:, mode + 1] = left * t01 + right * t11
    unitary[row, mode] = 0.0

    theta = 2.0 * math.atan2(sin_half, cos_half)
    phi = -math.atan2(rot_minus_phi.imag, rot_minus_phi.real)
    return theta, phi


def _null_with_row_mzi(unitary: np.ndarray, col: int, mode: int) -> tuple[float, float]:
    """Null ``unitary[mode + 1, col]`` by U ← T(θ, φ) · U on rows (mode, mode + 1).

    Column ``col`` becomes T · (a, b)ᵀ on these rows, and its second entry is
    i·e^{iθ/2}·(c·e^{iφ}·a − s·b). It vanishes for tan(θ/2) = |a|/|b| and
    φ = arg b − arg a. Returns (θ, φ) in rad, with φ not yet wrapped.
    """
    a = complex(unitary[mode, col])
    b = complex(unitary[mode + 1, col])
    abs_a, abs_b = abs(a), abs(b)
    radius = math.hypot(abs_a, abs_b)
    if radius > 0:
        sin_half, cos_half = abs_a / radius, abs_b / radius
    else:
        sin_half, cos_half = 1.0, 0.0

    unit_a, unit_b = _unit_phase(a, abs_a), _unit_phase(b, abs_b)
    rot_phi = unit_b * unit_a.conjugate()
    # T = i·e^{iθ/2}·[[s·e^{iφ}, c], [c·e^{iφ}, −s]], with i·e^{iθ/2} = −s + i·c.
    prefactor = complex(-sin_half, cos_half)
    t00 = prefactor * sin_half * rot_phi
    t01 = prefactor * cos_half
    t10 = prefactor * cos_half * rot_phi
    t11 = -prefactor * sin_half

    upper = unitary[mode, :].copy()
    lower = unitary[mode + 1, :]
    unitary[mode, :] = t00 * upper + t01 * lower
    unitary[mode + 1, :] = t10 * upper + t11 * lower
    unitary[mode + 1, col] = 0.0

    theta = 2.0 * math.atan2(sin_half, cos_half)
    phi = math.atan2(rot_phi.imag, rot_phi.real)
    return theta, phi


def _move_phases_through_mzi(
    theta: float, phi: float, alpha: float, beta: float
) -> tuple[float, float, float]:
    """Return the phases (φ', α', β') that move a diagonal phase through an MZI.

    They satisfy T(θ, φ)⁻¹ · diag(e^{iα}, e^{iβ}) = diag(e^{iα'}, e^{iβ'}) · T(θ, φ').

    Multiplying out the closed form of T gives φ' = α − β, α' = β − φ + π − θ and
    β' = β + π − θ, for every θ. All three are wrapped into [0, 2π) rad, which keeps
    their rounding error at about 1e-16 rad however many MZIs a phase passes.
    """
    phi_out = (alpha - beta) % TWO_PI
    alpha_out = (beta - phi + np.pi - theta) % TWO_PI
    beta_out = (beta + np.pi - theta) % TWO_PI
    return phi_out, alpha_out, beta_out


def _diagonal_phases(reduced: np.ndarray) -> np.ndarray:
    """Return the phases of the diagonal left after nulling.

    Also logs the max off-diagonal residue at DEBUG level.
    """
    off_diagonal = reduced - np.diag(np.diag(reduced))
    logger.debug(
        "nulled %d-mode unitary; max off-diagonal residue %.3e",
        reduced.shape[0],
        float(np.max(np.abs(off_diagonal))),
    )
    return np.angle(np.diag(reduced))


def _slot_index(layout: MeshLayout) -> dict[tuple[int, int], int]:
    """Map (column, top mode) of every MZI slot of the layout to its MZI index."""
    return {
        (int(column), int(top)): index
        for index, (column, top) in enumerate(
            zip(layout.mzi_columns, layout.mzi_top_modes)
        )
    }


def _assemble(
    layout: MeshLayout, theta: np.ndarray, phi: np.ndarray, psi: np.ndarray
) -> np.ndarray:
    phases = np.concatenate([theta, _wrap_phase(phi), _wrap_phase(psi)])
    layout.split_phases(phases)
    return phases


def decompose_clements(
    matrix: np.ndarray, tol: float = UNITARITY_TOLERANCE
) -> np.ndarray:
    """Compute the phases that program a rectangular mesh to the unitary ``matrix``.

    Clements et al., "Optimal design for universal multiport interferometers", Optica 3,
    1460 (2016). The lower triangle of U is nulled one anti-diagonal at a time,
    alternating between MZIs applied as T⁻¹ on pairs of columns (U ← U·T⁻¹, from the
    input side) and as T on pairs of rows (U ← T·U, from the output side), until
    T_Lp ⋯ T_L1 · U · T_R1⁻¹ ⋯ T_Rq⁻¹ = D is diagonal. The diagonal is then moved to
    the output side through every output-side MZI with the identity

        T(θ, φ)⁻¹ · diag(e^{iα}, e^{iβ})
            = diag(e^{i(β−φ+π−θ)}, e^{i(β+π−θ)}) · T(θ, α−β),

    which keeps θ and follows from multiplying out the closed form of T. The result is
    U = diag(e^{iψ}) · C_{N−1} ⋯ C_0 in the columns of the rectangular layout. The MZI
    nulled at step j of an input-side anti-diagonal sits in column j, and the one nulled
    at step j (counted from 1) of an output-side anti-diagonal sits in column N − j.

    Args:
        matrix: the N×N unitary U (output = U · input), N >= 2.
        tol: maximum accepted deviation max |U†U − I|.

    Returns:
        The phase vector (θ, φ, ψ) of length N² in rad: θ in [0, π], φ and ψ in [0, 2π).

    Raises:
        ValueError: if ``matrix`` fails ``check_unitary``.
    """
    unitary = check_unitary(matrix, tol)
    n = unitary.shape[0]
    layout = MeshLayout.create(n, "rectangular")
    slots = _slot_index(layout)
    theta = np.empty(layout.n_mzis)
    phi = np.empty(layout.n_mzis)

    # Output-side MZIs in nulling order, as (slot index, top mode, θ, φ).
    output_side: list[tuple[int, int, float, float]] = []
    for diagonal in range(n - 1):
        if diagonal % 2 == 0:
            for step in range(diagonal + 1):
                mode = diagonal - step
                t, p = _null_with_column_mzi(unitary, n - 1 - step, mode)
                index = slots[(step, mode)]
                theta[index], phi[index] = t, p
        else:
            for step in range(1, diagonal + 2):
                mode = n + step - diagonal - 3
                t, p = _null_with_row_mzi(unitary, step - 1, mode)
                output_side.append((slots[(n - step, mode)], mode, t, p))

    psi = _diagonal_phases(unitary)

    # U = T_L1⁻¹ ⋯ T_Lp⁻¹ · D · (input side), so D passes T_Lp⁻¹ first.
    for index, mode, t, p in reversed(output_side):
        theta[index] = t
        phi[index], psi[mode], psi[mode + 1] = _move_phases_through_mzi(
            t, p, psi[mode], psi[mode + 1]
        )

    return _assemble(layout, theta, phi, psi)


def decompose_reck(matrix: np.ndarray, tol: float = UNITARITY_TOLERANCE) -> np.ndarray:
    """Compute the phases that program a triangular mesh to the unitary ``matrix``.

    Reck et al., "Experimental realization of any discrete unitary operator", PRL 73, 58
    (1994), with every MZI applied as T⁻¹ on pairs of columns (U ← U·T⁻¹). Row N−1 is
    nulled from column 0 to N−2, which moves its weight into column N−1. Row N−2 follows
    from column 0 to N−3, and so on. Unitarity clears each finished column at the same
    time, so what remains is a diagonal D and U = D · T_M ⋯ T_1 with no phase to move.
    Pass p (the row N−1−p) puts its MZI on modes (k, k+1) in column 2p + k, which is the
    slot of ``MeshLayout.create(N, "triangular")``.

    Args:
        matrix: the N×N unitary U (output = U · input), N >= 2.
        tol: maximum accepted deviation max |U†U − I|.

    Returns:
        The phase vector (θ, φ, ψ) of length N² in rad: θ in [0, π], φ and ψ in [0, 2π).

    Raises:
        ValueError: if ``matrix`` fails ``check_unitary``.
    """
    unitary = check_unitary(matrix, tol)
    n = unitary.shape[0]
    layout = MeshLayout.create(n, "triangular")
    slots = _slot_index(layout)
    theta = np.empty(layout.n_mzis)
    phi = np.empty(layout.n_mzis)

    for sweep in range(n - 1):
        row = n - 1 - sweep
        for mode in range(row):
            t, p = _null_with_column_mzi(unitary, row, mode)
            index = slots[(2 * sweep + mode, mode)]
            theta[index], phi[index] = t, p

    psi = _diagonal_phases(unitary)
    return _assemble(layout, theta, phi, psi)


def decompose(
    matrix: np.ndarray,
    topology: str = "rectangular",
    tol: float = UNITARITY_TOLERANCE,
) -> np.ndarray:
    """Compute the phase vector that programs a mesh of ``topology`` to ``matrix``.

    Uses ``decompose_clements`` for "rectangular" and ``decompose_reck`` for
    "triangular". The result fits ``MeshLayout.create(N, topology)``.

    Raises:
        ValueError: for an unknown topology or a matrix that fails ``check_unitary``.
    """
    if topology == "rectangular":
        return decompose_clements(matrix, tol)
    if topology == "triangular":
        return decompose_reck(matrix, tol)
    raise ValueError(
        f"mesh topology {topology!r} is unknown; choose one of {', '.join(TOPOLOGIES)}"
    )


def program_mesh(
    matrix: np.ndarray,
    topology: str = "rectangular",
    tol: float = UNITARITY_TOLERANCE,
) -> tuple[MeshLayout, np.ndarray]:
    """Return the layout of a ``topology`` mesh and the phases that realise ``matrix``.

    Raises:
        ValueError: for an unknown topology or a matrix that fails ``check_unitary``.
    """
    phases = decompose(matrix, topology, tol)
    n_modes = math.isqrt(phases.size)
    return MeshLayout.create(n_modes, topology), phases
