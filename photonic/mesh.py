"""Meshes of MZIs: their layout, and light propagating through a realised device.

A mesh on N modes is a sequence of columns of MZIs on adjacent mode pairs (k, k+1), followed by
one output phase shifter per mode. MZIs are numbered column by column, and by top mode within a
column. A mesh's phases form one vector of length N² in the order (θ of every MZI, φ of every
MZI, output phases ψ). Gradients and monitor powers use the same order.

A batch of inputs has shape ``(batch, modes)``; a mesh with transfer matrix U maps ``x`` to
``x @ U.T``. Light launched into the output ports passes the same components in reverse, so by
reciprocity it sees Uᵀ: ``backward(y)`` returns ``y @ U``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np

from photonic.mzi import QUARTER_PI

if TYPE_CHECKING:
    from photonic.sweep import MeshSweep

Topology = Literal["rectangular", "triangular"]
TOPOLOGIES: tuple[str, ...] = ("rectangular", "triangular")


def _check_n_modes(n_modes: int) -> None:
    if not isinstance(n_modes, (int, np.integer)) or isinstance(n_modes, bool):
        raise ValueError(f"n_modes {n_modes!r} is invalid; it must be an integer >= 2")
    if n_modes < 2:
        raise ValueError(f"n_modes {n_modes!r} is invalid; it must be an integer >= 2")


@dataclass(frozen=True)
class MeshLayout:
    """Positions of the MZIs of a mesh: the top mode of every MZI in every column.

    Rectangular (Clements et al., Optica 2016): N columns; column c contains the pairs whose top
    mode k has the parity of c. Triangular (Reck et al., PRL 1994): 2N−3 columns; pair k sits in
    columns k, k+2, …, 2N−4−k. Both hold N(N−1)/2 MZIs.
    """

    n_modes: int
    topology: str
    columns: tuple[np.ndarray, ...] = field(repr=False)

    @classmethod
    def create(cls, n_modes: int, topology: str = "rectangular") -> MeshLayout:
        """Build the layout of a rectangular or triangular mesh on ``n_modes`` modes.

        Raises:
            ValueError: for fewer than 2 modes or an unknown topology.
        """
        _check_n_modes(n_modes)
        n_modes = int(n_modes)
        if topology == "rectangular":
            columns = [np.arange(c % 2, n_modes - 1, 2) for c in range(n_modes)]
        elif topology == "triangular":
            depth = max(2 * n_modes - 3, 1)
            columns = [
                np.array(
                    [
                        k
                        for k in range(c % 2, n_modes - 1, 2)
                        if k <= c <= 2 * n_modes - 4 - k
                    ]
                    if n_modes > 2
                    else [0],
                    dtype=int,
                )
                for c in range(depth)
            ]
        else:
            raise ValueError(
                f"mesh topology {topology!r} is unknown; choose one of {', '.join(TOPOLOGIES)}"
            )
        frozen = tuple(np.asarray(col, dtype=np.intp) for col in columns)
        for col in frozen:
            col.setflags(write=False)
        return cls(n_modes=n_modes, topology=topology, columns=frozen)

    @property
    def depth(self) -> int:
        """Number of MZI columns."""
        return len(self.columns)

    # The layout is frozen, so its counts and index arrays are computed once. Every new
    # device checks its phase vector against them.
    @cached_property
    def n_mzis(self) -> int:
        """Number of MZIs, N(N−1)/2 for both topologies."""
        return int(sum(len(col) for col in self.columns))

    @cached_property
    def n_phases(self) -> int:
        """Length of the phase vector (θ, φ, ψ): 2·n_mzis + n_modes = N²."""
        return 2 * self.n_mzis + self.n_modes

    @cached_property
    def mzi_top_modes(self) -> np.ndarray:
        """Top mode k of every MZI, in MZI order (read-only)."""
        tops = np.concatenate(self.columns)
        tops.setflags(write=False)
        return tops

    @cached_property
    def mzi_columns(self) -> np.ndarray:
        """Column index of every MZI, in MZI order (read-only)."""
        columns = np.concatenate(
            [np.full(len(col), c) for c, col in enumerate(self.columns)]
        )
        columns.setflags(write=False)
        return columns

    def column_slices(self) -> list[slice]:
        """Slice of the MZI index range that belongs to each column."""
        bounds = np.cumsum([0] + [len(col) for col in self.columns])
        return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]

    def shifter_neighbours(self) -> np.ndarray:
        """Pairs (i, j), i < j, of phase-vector indices of side-by-side phase shifters.

        Shifters are side by side when they sit in the same column on adjacent MZIs (top
        modes k and k + 2), θ beside θ and φ beside φ, or when they are output phase
        shifters of adjacent modes. Thermal crosstalk acts between these pairs.
        """
        m = self.n_mzis
        pairs = []
        for top, cols in zip(self.columns, self.column_slices()):
            indices = np.arange(cols.start, cols.stop)
            adjacent = np.nonzero(np.diff(top) == 2)[0]
            for offset in (0, m):
                pairs += [
                    (offset + indices[a], offset + indices[a + 1]) for a in adjacent
                ]
        pairs += [(2 * m + k, 2 * m + k + 1) for k in range(self.n_modes - 1)]
        return np.array(pairs, dtype=np.intp).reshape(-1, 2)

    def split_phases(
        self, phases: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split a phase vector of length N² into (θ, φ, ψ) views.

        Raises:
            ValueError: if the vector has the wrong length.
        """
        phases = np.asarray(phases)
        if phases.shape[-1] != self.n_phases:
            raise ValueError(
                f"phase vector has length {phases.shape[-1]}; a {self.topology} mesh on "
                f"{self.n_modes} modes needs {self.n_phases} (theta, phi, output phases)"
            )
        m = self.n_mzis
        return phases[..., :m], phases[..., m : 2 * m], phases[..., 2 * m :]


@dataclass(frozen=True)
class MeshFields:
    """Fields just after every phase shifter, for a batch: θ and φ ``(batch, n_mzis)``, ψ
    ``(batch, n_modes)``. For light launched backward these are the adjoint fields at the same
    points."""

    theta: np.ndarray
    phi: np.ndarray
    psi: np.ndarray

    def stacked(self) -> np.ndarray:
        """Fields as one ``(batch, N²)`` array in phase-vector order (θ, φ, ψ)."""
        return np.concatenate([self.theta, self.phi, self.psi], axis=-1)

    def powers(self) -> np.ndarray:
        """Optical powers |field|² as one ``(batch, N²)`` array in phase-vector order."""
        return np.abs(self.stacked()) ** 2


def check_passive_components(
    n_elements: int,
    column_shape: tuple[int, int],
    coupler_angles: np.ndarray,
    arm_amplitude: np.ndarray,
    column_amplitude: np.ndarray | None,
) -> None:
    """Raise ValueError unless the component arrays have their shapes and no gain.

    ``coupler_angles`` and ``arm_amplitude`` are ``(2, n_elements)``; ``column_amplitude``,
    if given, is ``column_shape``. Amplitudes must lie in [0, 1].
    """
    expected = {
        "coupler_angles": (coupler_angles, (2, n_elements)),
        "arm_amplitude": (arm_amplitude, (2, n_elements)),
    }
    if column_amplitude is not None:
        expected["column_amplitude"] = (column_amplitude, column_shape)
    for name, (array, shape) in expected.items():
        if np.shape(array) != shape:
            raise ValueError(f"{name} has shape {np.shape(array)}; expected {shape}")
    for name, array in (
        ("arm_amplitude", arm_amplitude),
        ("column_amplitude", column_amplitude),
    ):
        if array is not None and (np.any(array > 1) or np.any(array < 0)):
            raise ValueError(
                f"{name} must lie in [0, 1] because a passive device cannot add power"
            )


@dataclass(frozen=True)
class RealisedMesh:
    """One realised device: the phases it applies and its static imperfections.

    Inside an MZI the light passes φ, the first coupler, the two internal arms (each with its
    own amplitude transmission), θ on the top arm and the second coupler. After every column
    each waveguide, idle ones included, may have a propagation loss.

    Attributes:
        layout: positions of the MZIs.
        phases: applied phases (θ, φ, ψ) in rad, after quantization, offsets and any noise.
        coupler_angles: ``(2, n_mzis)`` coupling angles π/4 + ε of the first and the second
            coupler of every MZI, in rad.
        arm_amplitude: ``(2, n_mzis)`` amplitude transmission of the top and the bottom
            internal arm of every MZI; equal arms of 10^(−L/20) give an MZI of L dB
            insertion loss.
        column_amplitude: ``(depth, n_modes)`` amplitude transmission of every waveguide after
            every column, or None for lossless waveguides.
    """

    layout: MeshLayout
    phases: np.ndarray
    coupler_angles: np.ndarray
    arm_amplitude: np.ndarray
    column_amplitude: np.ndarray | None = None

    def __post_init__(self) -> None:
        m = self.layout.n_mzis
        self.layout.split_phases(self.phases)
        with np.errstate(over="ignore", invalid="ignore"):
            finite = bool(np.isfinite(np.sum(self.phases)))
        if not finite and not np.all(np.isfinite(self.phases)):
            bad = int(np.count_nonzero(~np.isfinite(self.phases)))
            raise ValueError(
                f"phases contain NaN or infinity ({bad} of {np.size(self.phases)}); "
                "every applied phase must be finite"
            )
        check_passive_components(
            m,
            (self.layout.depth, self.layout.n_modes),
            self.coupler_angles,
            self.arm_amplitude,
            self.column_amplitude,
        )

    @classmethod
    def ideal(cls, layout: MeshLayout, phases: np.ndarray) -> RealisedMesh:
        """Build a lossless device with perfect 50:50 couplers applying ``phases``."""
        m = layout.n_mzis
        return cls(
            layout=layout,
            phases=np.asarray(phases, dtype=float),
            coupler_angles=np.full((2, m), QUARTER_PI),
            arm_amplitude=np.ones((2, m)),
        )

    def with_phases(self, phases: np.ndarray) -> RealisedMesh:
        """Return the same device applying other phases."""
        return replace(self, phases=np.asarray(phases, dtype=float))

    def _rotations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        theta, phi, psi = self.layout.split_phases(self.phases)
        return np.exp(1j * theta), np.exp(1j * phi), np.exp(1j * psi)

    def _coupler_terms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """cos and i·sin of the coupling angles of the first and the second couplers."""
        cos = np.cos(self.coupler_angles)
        isin = 1j * np.sin(self.coupler_angles)
        return cos[0], isin[0], cos[1], isin[1]

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim not in (1, 2) or x.shape[-1] != self.layout.n_modes:
            raise ValueError(
                f"input has shape {x.shape}; expected (batch, {self.layout.n_modes}) "
                f"or ({self.layout.n_modes},)"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError(
                "input fields contain NaN or infinity; every amplitude must be finite"
            )
        return np.array(np.atleast_2d(x), dtype=np.complex128, copy=True)

    def forward(
        self, x: np.ndarray, record: bool = False
    ) -> tuple[np.ndarray, MeshFields | None]:
        """Propagate a batch launched into the input ports to the output ports.

        Args:
            x: input fields, ``(batch, N)`` or ``(N,)``.
            record: also return the field just after every phase shifter.

        Returns:
            The output fields ``x @ U.T`` (same leading shape as ``x``) and the recorded
            fields, or None.
        """
        single = np.asarray(x).ndim == 1
        fields = self._prepare(x)
        rot_theta, rot_phi, rot_psi = self._rotations()
        cos_in, sin_in, cos_out, sin_out = self._coupler_terms()
        arm_top, arm_bottom = self.arm_amplitude
        batch, m = fields.shape[0], self.layout.n_mzis
        after_theta = np.empty((batch, m), np.complex128) if record else None
        after_phi = np.empty((batch, m), np.complex128) if record else None

        for column, (top, cols) in enumerate(
            zip(self.layout.columns, self.layout.column_slices())
        ):
            upper = fields[:, top] * rot_phi[cols]
            lower = fields[:, top + 1]
            if record:
                after_phi[:, cols] = upper

            upper, lower = (
                cos_in[cols] * upper + sin_in[cols] * lower,
                sin_in[cols] * upper + cos_in[cols] * lower,
            )
            upper = upper * (arm_top[cols] * rot_theta[cols])
            lower = lower * arm_bottom[cols]
            if record:
                after_theta[:, cols] = upper

            fields[:, top] = cos_out[cols] * upper + sin_out[cols] * lower
            fields[:, top + 1] = sin_out[cols] * upper + cos_out[cols] * lower
            if self.column_amplitude is not None:
                fields *= self.column_amplitude[column]

        out = fields * rot_psi
        recorded = MeshFields(after_theta, after_phi, out.copy()) if record else None
        return (out[0] if single else out), recorded

    def backward(
        self, y: np.ndarray, record: bool = False
    ) -> tuple[np.ndarray, MeshFields | None]:
        """Propagate light launched into the output ports back to the input ports.

        Every component is passed in reverse. Couplers are symmetric and phase shifters and
        losses diagonal, so the device acts as Uᵀ (reciprocity), static errors and loss
        included.

        Args:
            y: fields launched into the output ports, ``(batch, N)`` or ``(N,)``.
            record: also return the backward field at the point just after every phase
                shifter (in the forward sense), i.e. before the light passes that shifter.

        Returns:
            The fields leaving the input ports, ``y @ U``, and the recorded fields, or None.
        """
        single = np.asarray(y).ndim == 1
        fields = self._prepare(y)
        rot_theta, rot_phi, rot_psi = self._rotations()
        cos_in, sin_in, cos_out, sin_out = self._coupler_terms()
        arm_top, arm_bottom = self.arm_amplitude
        batch, m = fields.shape[0], self.layout.n_mzis
        before_theta = np.empty((batch, m), np.complex128) if record else None
        before_phi = np.empty((batch, m), np.complex128) if record else None
        at_psi = fields.copy() if record else None

        fields *= rot_psi
        columns = list(zip(self.layout.columns, self.layout.column_slices()))
        for column in range(len(columns) - 1, -1, -1):
            top, cols = columns[column]
            if self.column_amplitude is not None:
                fields *= self.column_amplitude[column]
            upper, lower = fields[:, top], fields[:, top + 1]

            upper, lower = (
                cos_out[cols] * upper + sin_out[cols] * lower,
                sin_out[cols] * upper + cos_out[cols] * lower,
            )
            if record:
                before_theta[:, cols] = upper
            upper = upper * (rot_theta[cols] * arm_top[cols])
            lower = lower * arm_bottom[cols]

            upper, lower = (
                cos_in[cols] * upper + sin_in[cols] * lower,
                sin_in[cols] * upper + cos_in[cols] * lower,
            )
            if record:
                before_phi[:, cols] = upper
            fields[:, top] = upper * rot_phi[cols]
            fields[:, top + 1] = lower

        recorded = MeshFields(before_theta, before_phi, at_psi) if record else None
        return (fields[0] if single else fields), recorded

    def matrix(self) -> np.ndarray:
        """Compute the realised N×N transfer matrix U (output = U · input)."""
        out, _ = self.forward(np.eye(self.layout.n_modes))
        return out.T

    @cached_property
    def sweep(self) -> MeshSweep:
        """Batch sums over this device (``photonic.sweep.MeshSweep``), built on first use.

        Kept with the instance because the device is frozen. Writing into the arrays of
        the device afterwards leaves it stale.
        """
        # photonic.sweep imports this module, so import it when first needed.
        from photonic.sweep import MeshSweep

        return MeshSweep(self)

    @property
    def transfer_matrix(self) -> np.ndarray:
        """Realised transfer matrix U, composed once per instance and read-only.

        Equal to ``matrix()`` to rounding, and cheaper: one product per layer of cells.
        """
        return self.sweep.matrix()
