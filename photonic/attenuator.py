"""Attenuator stage of an SVD layer: one MZI per mode whose bar port sets a transmission.

Each attenuator is an MZI on (mode k, auxiliary guide k). Its bar port, from mode k to
mode k, carries the transmitted light, and its cross output is dumped. In the convention of
``photonic.mzi`` an MZI with ideal couplers has the bar amplitude

    T₀₀(θ, φ) = i·e^{iθ/2}·sin(θ/2)·e^{iφ},

so θ = 2·arcsin(t) sets |T₀₀| = t, and φ = −π/2 − θ/2 (wrapped into [0, 2π)) makes T₀₀ = t
real and positive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from photonic.hardware import Chip, HardwareConfig
from photonic.mesh import MeshLayout, RealisedMesh, check_passive_components

logger = logging.getLogger(__name__)

TWO_PI = 2 * np.pi
ATTENUATOR_TOPOLOGY = "attenuators"


def check_port_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
        raise ValueError(
            f"{name} = {value!r} is invalid; an SVD layer needs an integer >= 2, "
            "because each side is a mesh of at least 2 modes"
        )
    return int(value)


def as_field_batch(
    values: np.ndarray, widths: tuple[int, ...], name: str
) -> np.ndarray:
    """Return ``values`` as a complex (batch, width) copy, checking width and finiteness."""
    values = np.asarray(values)
    if values.ndim not in (1, 2) or values.shape[-1] not in widths:
        expected = " or ".join(str(width) for width in widths)
        raise ValueError(
            f"{name} has shape {values.shape}; expected (batch, width) or (width,) with "
            f"width {expected}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or infinity; every field must be finite")
    return np.array(np.atleast_2d(values), dtype=np.complex128, copy=True)


def attenuator_phases(transmission: np.ndarray) -> np.ndarray:
    """Compute the phases (θ_0 … θ_{r−1}, φ_0 … φ_{r−1}) of attenuators with ideal couplers.

    An attenuator is an MZI whose bar amplitude T₀₀ = i·e^{iθ/2}·sin(θ/2)·e^{iφ} (convention
    of ``photonic.mzi``) is set to the real transmission t: θ = 2·arcsin(t) in [0, π] rad and
    φ = −π/2 − θ/2 wrapped into [0, 2π) rad. t = 0 gives the cross state (dark) and t = 1
    the bar state.

    Args:
        transmission: amplitude transmissions t in [0, 1], one per attenuator.

    Raises:
        ValueError: if a transmission is outside [0, 1] or not finite.
    """
    transmission = np.atleast_1d(np.asarray(transmission, dtype=float))
    if transmission.ndim != 1:
        raise ValueError(
            f"attenuator transmissions have shape {transmission.shape}; expected (r,)"
        )
    if not np.all((transmission >= 0) & (transmission <= 1)):
        raise ValueError(
            f"attenuator transmissions {transmission!r} are invalid; each must be an "
            "amplitude in [0, 1], because the attenuators are passive"
        )
    theta = 2.0 * np.arcsin(transmission)
    phi = np.mod(-np.pi / 2 - theta / 2, TWO_PI)
    # np.mod returns exactly 2π for inputs a rounding error below a multiple of 2π.
    phi[phi >= TWO_PI] = 0.0
    return np.concatenate([theta, phi])


@dataclass(frozen=True)
class AttenuatorLayout(MeshLayout):
    """One column of r = min(N, M) attenuator MZIs between a V† mesh (N modes) and a U mesh
    (M modes).

    The stage is crossed by N + M guides. Guides 2k and 2k + 1 are main mode k and auxiliary
    guide k of attenuator k (its top and bottom input) for k < r. Guides 2r … N + M − 1 are
    the unpaired ones: main modes r … N − 1 when N > M, or auxiliary guides r … M − 1 when
    M > N. Unlike a mesh, the stage has no output phase shifters, so its phase vector is
    (θ_0 … θ_{r−1}, φ_0 … φ_{r−1}) of length 2r.

    Attributes:
        n_inputs: N, the modes of the V† mesh.
        n_outputs: M, the modes of the U mesh.
    """

    n_inputs: int
    n_outputs: int

    @classmethod
    def for_shape(cls, n_inputs: int, n_outputs: int) -> AttenuatorLayout:
        """Build the attenuator column of an SVD layer with N inputs and M outputs.

        Raises:
            ValueError: if N or M is not an integer >= 2.
        """
        n_inputs = check_port_count("n_inputs", n_inputs)
        n_outputs = check_port_count("n_outputs", n_outputs)
        tops = np.arange(0, 2 * min(n_inputs, n_outputs), 2, dtype=np.intp)
        tops.setflags(write=False)
        return cls(
            n_modes=n_inputs + n_outputs,
            topology=ATTENUATOR_TOPOLOGY,
            columns=(tops,),
            n_inputs=n_inputs,
            n_outputs=n_outputs,
        )

    @property
    def n_attenuators(self) -> int:
        """Number r = min(N, M) of attenuators."""
        return self.n_mzis

    @property
    def n_phases(self) -> int:
        """Length 2r of the phase vector (θ, φ); the stage has no output phases."""
        return 2 * self.n_mzis

    def split_phases(
        self, phases: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split a phase vector of length 2r into (θ, φ, ψ) views, ψ being empty.

        Raises:
            ValueError: if the vector has the wrong length.
        """
        phases = np.asarray(phases)
        if phases.shape[-1] != self.n_phases:
            raise ValueError(
                f"phase vector has length {phases.shape[-1]}; a stage of "
                f"{self.n_attenuators} attenuators needs {self.n_phases} (theta, phi)"
            )
        r = self.n_mzis
        return phases[..., :r], phases[..., r:], phases[..., 2 * r : 2 * r]

    def shifter_neighbours(self) -> np.ndarray:
        """Pairs (i, j), i < j, of side-by-side phase shifters: θ_k beside θ_{k+1} and φ_k
        beside φ_{k+1}, because the attenuators stand next to each other in one column."""
        r = self.n_mzis
        pairs = [(k, k + 1) for k in range(r - 1)]
        pairs += [(r + k, r + k + 1) for k in range(r - 1)]
        return np.array(pairs, dtype=np.intp).reshape(-1, 2)

    def output_guides(self) -> tuple[np.ndarray, np.ndarray]:
        """Guide index of every input of the U mesh (M) and of every dump (N)."""
        r = self.n_mzis
        to_u = np.concatenate([2 * np.arange(r), 2 * r + np.arange(self.n_outputs - r)])
        dump = np.concatenate(
            [2 * np.arange(r) + 1, 2 * r + np.arange(self.n_inputs - r)]
        )
        return to_u.astype(np.intp), dump.astype(np.intp)


@dataclass(frozen=True)
class AttenuatorFields:
    """Fields just after the θ and the φ shifter of every attenuator, ``(batch, r)`` each.
    For light launched backward these are the adjoint fields at the same points."""

    theta: np.ndarray
    phi: np.ndarray

    def stacked(self) -> np.ndarray:
        """Fields as one ``(batch, 2r)`` array in phase-vector order (θ, φ)."""
        return np.concatenate([self.theta, self.phi], axis=-1)

    def powers(self) -> np.ndarray:
        """Optical powers |field|² as one ``(batch, 2r)`` array in phase-vector order."""
        return np.abs(self.stacked()) ** 2


@dataclass(frozen=True)
class AttenuatorStage:
    """A realised attenuator column: applied phases and static imperfections.

    The light of main mode k passes φ_k, the first coupler, the internal arms (θ_k on the top
    arm) and the second coupler, exactly as in an MZI of a mesh. The auxiliary guide k is the
    bottom input. After the column every guide may have a waveguide loss.

    Attributes:
        layout: the attenuator column.
        phases: applied phases (θ, φ) in rad.
        coupler_angles: ``(2, r)`` coupling angles π/4 + ε of the two couplers, in rad.
        arm_amplitude: ``(2, r)`` amplitude transmission of the top and the bottom arm.
        column_amplitude: ``(1, N + M)`` amplitude transmission of every guide, in the guide
            order of ``AttenuatorLayout``, or None for lossless guides.
    """

    layout: AttenuatorLayout
    phases: np.ndarray
    coupler_angles: np.ndarray
    arm_amplitude: np.ndarray
    column_amplitude: np.ndarray | None = None

    def __post_init__(self) -> None:
        r = self.layout.n_attenuators
        self.layout.split_phases(self.phases)
        check_passive_components(
            r,
            (1, self.layout.n_modes),
            self.coupler_angles,
            self.arm_amplitude,
            self.column_amplitude,
        )

    @classmethod
    def from_mesh(cls, mesh: RealisedMesh) -> AttenuatorStage:
        """Build a stage from a ``RealisedMesh`` on an ``AttenuatorLayout`` (as realised
        by ``Chip``).

        Raises:
            TypeError: if the mesh's layout is not an ``AttenuatorLayout``.
        """
        if not isinstance(mesh.layout, AttenuatorLayout):
            raise TypeError(
                f"layout {type(mesh.layout).__name__} is not an AttenuatorLayout"
            )
        return cls(
            mesh.layout,
            np.asarray(mesh.phases, dtype=float),
            mesh.coupler_angles,
            mesh.arm_amplitude,
            mesh.column_amplitude,
        )

    def with_phases(self, phases: np.ndarray) -> AttenuatorStage:
        """Return the same stage applying other phases."""
        return replace(self, phases=np.asarray(phases, dtype=float))

    def _terms(self) -> tuple[np.ndarray, ...]:
        theta, phi, _ = self.layout.split_phases(self.phases)
        cos = np.cos(self.coupler_angles)
        isin = 1j * np.sin(self.coupler_angles)
        return np.exp(1j * theta), np.exp(1j * phi), cos[0], isin[0], cos[1], isin[1]

    def _guide_amplitudes(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.column_amplitude is None:
            return None
        to_u, dump = self.layout.output_guides()
        return self.column_amplitude[0, to_u], self.column_amplitude[0, dump]

    def forward(
        self, main: np.ndarray, aux: np.ndarray, record: bool = False
    ) -> tuple[np.ndarray, np.ndarray, AttenuatorFields | None]:
        """Propagate the V† mesh outputs and the auxiliary inputs through the stage.

        Args:
            main: fields of the N main modes, ``(batch, N)``.
            aux: fields of the M auxiliary guides, ``(batch, M)``.
            record: also return the field just after every phase shifter.

        Returns:
            The fields entering the U mesh ``(batch, M)``, the dumped fields
            ``(batch, N)`` and the recorded fields, or None.

        Raises:
            ValueError: for inputs of the wrong shape or with NaN or infinity.
        """
        n, m, r = self.layout.n_inputs, self.layout.n_outputs, self.layout.n_mzis
        main = as_field_batch(main, (n,), "main input")
        aux = as_field_batch(aux, (m,), "auxiliary input")
        if main.shape[0] != aux.shape[0]:
            raise ValueError(
                f"main and auxiliary inputs have batches {main.shape[0]} and "
                f"{aux.shape[0]}; they must match"
            )
        rot_theta, rot_phi, cos_in, sin_in, cos_out, sin_out = self._terms()
        arm_top, arm_bottom = self.arm_amplitude

        upper = main[:, :r] * rot_phi
        after_phi = upper if record else None
        lower = aux[:, :r]

        upper, lower = (
            cos_in * upper + sin_in * lower,
            sin_in * upper + cos_in * lower,
        )
        upper = upper * (arm_top * rot_theta)
        lower = lower * arm_bottom
        after_theta = upper if record else None

        bar = cos_out * upper + sin_out * lower
        cross = sin_out * upper + cos_out * lower
        to_u = np.concatenate([bar, aux[:, r:]], axis=1)
        dump = np.concatenate([cross, main[:, r:]], axis=1)

        amplitudes = self._guide_amplitudes()
        if amplitudes is not None:
            to_u *= amplitudes[0]
            dump *= amplitudes[1]
        recorded = AttenuatorFields(after_theta, after_phi) if record else None
        return to_u, dump, recorded

    def backward(
        self, to_u: np.ndarray, dump: np.ndarray, record: bool = False
    ) -> tuple[np.ndarray, np.ndarray, AttenuatorFields | None]:
        """Propagate light launched backward into the stage's outputs to its inputs.

        Every component is passed in reverse, so the stage acts as the transpose of its
        forward matrix (reciprocity), static errors and loss included.

        Args:
            to_u: fields arriving from the U mesh inputs, ``(batch, M)``.
            dump: fields launched into the dumps, ``(batch, N)``.
            record: also return the backward field at the point just after every phase
                shifter (in the forward sense), i.e. before the light passes that shifter.

        Returns:
            The fields leaving the main inputs ``(batch, N)``, those leaving the auxiliary
            inputs ``(batch, M)`` and the recorded fields, or None.

        Raises:
            ValueError: for inputs of the wrong shape or with NaN or infinity.
        """
        n, m, r = self.layout.n_inputs, self.layout.n_outputs, self.layout.n_mzis
        to_u = as_field_batch(to_u, (m,), "backward field at the U mesh side")
        dump = as_field_batch(dump, (n,), "backward field at the dumps")
        if to_u.shape[0] != dump.shape[0]:
            raise ValueError(
                f"backward fields have batches {to_u.shape[0]} and {dump.shape[0]}; "
                "they must match"
            )
        rot_theta, rot_phi, cos_in, sin_in, cos_out, sin_out = self._terms()
        arm_top, arm_bottom = self.arm_amplitude

        amplitudes = self._guide_amplitudes()
        if amplitudes is not None:
            to_u *= amplitudes[0]
            dump *= amplitudes[1]

        upper, lower = (
            cos_out * to_u[:, :r] + sin_out * dump[:, :r],
            sin_out * to_u[:, :r] + cos_out * dump[:, :r],
        )
        before_theta = upper if record else None
        upper = upper * (rot_theta * arm_top)
        lower = lower * arm_bottom

        upper, lower = (
            cos_in * upper + sin_in * lower,
            sin_in * upper + cos_in * lower,
        )
        before_phi = upper if record else None

        main = np.concatenate([upper * rot_phi, dump[:, r:]], axis=1)
        aux = np.concatenate([lower, to_u[:, r:]], axis=1)
        recorded = AttenuatorFields(before_theta, before_phi) if record else None
        return main, aux, recorded

    def bar_transmissions(self) -> np.ndarray:
        """Complex amplitude from main mode k to U mesh input k of every attenuator,
        waveguide loss included."""
        n, m = self.layout.n_inputs, self.layout.n_outputs
        to_u, _, _ = self.forward(np.eye(n), np.zeros((n, m)))
        r = self.layout.n_attenuators
        return to_u[np.arange(r), np.arange(r)]


class AttenuatorChip(Chip):
    """The attenuator column of an SVD layer on a chip, with the error model of ``Chip``.

    Static errors (couplers, phase offsets, insertion loss, heater gain), programming,
    crosstalk, drift and per-pass phase noise are drawn and applied as for a mesh. The
    realised devices are ``AttenuatorStage`` objects.

    Args:
        layout: the attenuator column.
        hardware: the error model.
        seed: seed of the stage.
        phases: programmed phases (θ, φ) in rad; None programs every attenuator to full
            transmission (θ = π, φ = π).
    """

    def __init__(
        self,
        layout: AttenuatorLayout,
        hardware: HardwareConfig,
        seed: int | np.random.SeedSequence,
        phases: np.ndarray | None = None,
    ) -> None:
        if phases is None:
            phases = attenuator_phases(np.ones(layout.n_attenuators))
        super().__init__(layout, hardware, seed, phases=phases)

    def device(self) -> AttenuatorStage:
        """Return the realised stage now, without per-pass noise."""
        return AttenuatorStage.from_mesh(super().device())

    def pass_device(
        self, pass_name: str = "forward", time_s: float | None = None
    ) -> AttenuatorStage:
        """Return the stage for one optical pass, with its phase noise drawn afresh."""
        return AttenuatorStage.from_mesh(super().pass_device(pass_name, time_s))

    def nominal_power_factors(self) -> np.ndarray:
        """Nominal power transmission from the stage's inputs to every phase shifter, from
        the configured mean MZI loss: θ lies after the lossy arms, φ before them."""
        r = self.layout.n_mzis
        theta = np.full(r, 10 ** (-self.hardware.static.mzi_loss_db / 10))
        return np.concatenate([theta, np.ones(r)])

    @property
    def output_phase_indices(self) -> np.ndarray:
        """Indices of output phases in the phase vector; the stage has none."""
        return np.arange(0)
