"""SVD layers: an arbitrary M×N weight matrix W = U Σ V† on two meshes and attenuators.

Light entering the N input ports passes a mesh programmed to V† (N modes), a stage of
attenuators, and a mesh programmed to U (M modes). The attenuators are passive, so they
apply Σ/σ_max with transmissions t_k = σ_k/σ_max ≤ 1. The scale σ_max is applied
digitally after detection and is stored as the layer's ``output_scale``.

Each attenuator is an MZI on (mode k, auxiliary guide k). Its bar port, from mode k to
mode k, carries the transmitted light, and its cross output is dumped. In the convention of
``photonic.mzi`` an MZI with ideal couplers has the bar amplitude

    T₀₀(θ, φ) = i·e^{iθ/2}·sin(θ/2)·e^{iφ},

so θ = 2·arcsin(t) sets |T₀₀| = t, and φ = −π/2 − θ/2 (wrapped into [0, 2π)) makes T₀₀ = t
real and positive. The realised main block is then U·diag(t)·V† = W/σ_max exactly.

Extended port space. The layer is one device on N + M input ports and M + N output ports:

- inputs: the N main inputs, then M auxiliary inputs, which are dark in the forward pass.
  Auxiliary input k < r = min(N, M) is the free input of attenuator k. When M > N, the
  auxiliary inputs r … M−1 feed the inputs r … M−1 of the U mesh directly.
- outputs: the M main outputs, then N dump outputs. Dump k < r is the cross output of
  attenuator k. When N > M, the dumps r … N−1 are the outputs r … N−1 of the V† mesh,
  which no attenuator uses.

So for N > M there are M auxiliary inputs (all on attenuators) and N dumps (M on attenuators
and N − M unused V† outputs). For N < M there are N auxiliary inputs on attenuators plus
M − N dark inputs of the U mesh, and N dumps. For N = M there are N of each. The extended
device is square, of size N + M, and unitary when every component is ideal. No smaller
device is possible for this hardware, because every attenuator needs its own free input and
its own dump, and every one of the |N − M| unmatched modes needs a port on the other side.
Auxiliary guides cross the V† mesh section, and dump guides cross the U mesh section. Each
has the waveguide loss per column of an idle mesh guide, so a chip whose only loss is
waveguide loss has the same loss on every path.

Phase order of a layer: the V† mesh phases (θ, φ, ψ; N² of them), then the attenuators
(θ_0 … θ_{r−1}, φ_0 … φ_{r−1}), then the U mesh phases (θ, φ, ψ; M²). Recorded fields,
monitor powers and gradients use the same order.

Digital scale. ``SVDDevice.forward`` returns ``output_scale`` times the fields at the main
outputs, and ``SVDDevice.backward`` launches ``output_scale`` times the adjoint source, which
is the adjoint of that digital gain. The fields recorded inside the device are the optical
fields. The exact gradient of a layer (``photonic.reference``) and the in situ measurement
(``photonic.insitu``) therefore both differentiate the loss of the scaled outputs and agree
on an ideal chip. On the chip, the forward outputs are detected as light and scaled after
detection (``SVDChip.measure_fields``), while in the adjoint pass the controller folds the
scale into the amplitude it launches, so the adjoint light is output_scale·δ.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace

import numpy as np

from photonic.attenuator import (
    AttenuatorChip,
    AttenuatorFields,
    AttenuatorLayout,
    AttenuatorStage,
    as_field_batch,
    attenuator_phases,
    check_port_count,
)
from photonic.decompose import decompose
from photonic.hardware import Chip, HardwareConfig
from photonic.mesh import MeshFields, MeshLayout, RealisedMesh

logger = logging.getLogger(__name__)

TWO_PI = 2 * np.pi


def _check_output_scale(value: object) -> float:
    try:
        scale = float(value)
    except (TypeError, ValueError):
        scale = math.nan
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(
            f"output_scale = {value!r} is invalid; it must be a finite number >= 0"
        )
    return scale


@dataclass(frozen=True)
class SVDFields:
    """Fields just after every phase shifter of an SVD layer: V† mesh, attenuators, U mesh.
    For light launched backward these are the adjoint fields at the same points."""

    v: MeshFields
    attenuators: AttenuatorFields
    u: MeshFields

    def stacked(self) -> np.ndarray:
        """Fields as one ``(batch, N² + 2r + M²)`` array in the layer's phase order."""
        return np.concatenate(
            [self.v.stacked(), self.attenuators.stacked(), self.u.stacked()], axis=-1
        )

    def powers(self) -> np.ndarray:
        """Optical powers |field|² in the layer's phase order."""
        return np.abs(self.stacked()) ** 2


@dataclass(frozen=True)
class SVDDevice:
    """One realised SVD layer: V† mesh, attenuator stage, U mesh and the digital scale.

    See the module docstring for the extended port space and the phase order.

    Attributes:
        v: the realised mesh of V† (N modes).
        attenuators: the realised attenuator stage.
        u: the realised mesh of U (M modes).
        output_scale: digital gain applied to the detected main outputs (σ_max).
        aux_amplitude: amplitude transmission of every auxiliary guide across the V† mesh
            section.
        dump_amplitude: amplitude transmission of every dump guide across the U mesh
            section.
    """

    v: RealisedMesh
    attenuators: AttenuatorStage
    u: RealisedMesh
    output_scale: float = 1.0
    aux_amplitude: float = 1.0
    dump_amplitude: float = 1.0
    _sizes: tuple[int, int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        layout = self.attenuators.layout
        if (layout.n_inputs, layout.n_outputs) != (
            self.v.layout.n_modes,
            self.u.layout.n_modes,
        ):
            raise ValueError(
                f"attenuator stage joins {layout.n_inputs} to {layout.n_outputs} modes, "
                f"but the meshes have {self.v.layout.n_modes} and "
                f"{self.u.layout.n_modes} modes"
            )
        _check_output_scale(self.output_scale)
        for name in ("aux_amplitude", "dump_amplitude"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(
                    f"{name} = {value!r} is invalid; a passive guide has an amplitude "
                    "transmission in [0, 1]"
                )
        sizes = (
            self.v.layout.n_phases,
            layout.n_phases,
            self.u.layout.n_phases,
        )
        object.__setattr__(self, "_sizes", sizes)

    @property
    def n_inputs(self) -> int:
        """Number N of main inputs."""
        return self.v.layout.n_modes

    @property
    def n_outputs(self) -> int:
        """Number M of main outputs."""
        return self.u.layout.n_modes

    @property
    def n_ports(self) -> int:
        """Number N + M of input (and of output) ports of the extended device."""
        return self.n_inputs + self.n_outputs

    @property
    def phases(self) -> np.ndarray:
        """Applied phases in the layer's order (V† mesh, attenuators, U mesh), in rad."""
        return np.concatenate([self.v.phases, self.attenuators.phases, self.u.phases])

    def with_phases(self, phases: np.ndarray) -> SVDDevice:
        """Return the same device applying other phases (layer order).

        Raises:
            ValueError: if the vector has the wrong length.
        """
        phases = np.asarray(phases, dtype=float)
        n_v, n_a, n_u = self._sizes
        if phases.shape != (n_v + n_a + n_u,):
            raise ValueError(
                f"phase vector has shape {phases.shape}; this SVD layer needs "
                f"({n_v + n_a + n_u},): {n_v} V mesh, {n_a} attenuator, {n_u} U mesh"
            )
        return replace(
            self,
            v=self.v.with_phases(phases[:n_v]),
            attenuators=self.attenuators.with_phases(phases[n_v : n_v + n_a]),
            u=self.u.with_phases(phases[n_v + n_a :]),
        )

    def extended_forward(
        self, x: np.ndarray, record: bool = False
    ) -> tuple[np.ndarray, SVDFields | None]:
        """Propagate light launched into all N + M input ports to all M + N output ports.

        No digital scale is applied: this is the optical transfer of the extended device.

        Args:
            x: input fields ``(batch, N + M)`` or ``(N + M,)``: main inputs, then auxiliary
                inputs.
            record: also return the field just after every phase shifter.

        Returns:
            The output fields (main outputs, then dumps) and the recorded fields, or None.

        Raises:
            ValueError: for an input of the wrong shape or with NaN or infinity.
        """
        single = np.ndim(x) == 1
        x = as_field_batch(x, (self.n_ports,), "extended input")
        n = self.n_inputs

        v_out, v_fields = self.v.forward(x[:, :n], record)
        aux = x[:, n:] * self.aux_amplitude
        to_u, dump, attenuator_fields = self.attenuators.forward(v_out, aux, record)
        u_out, u_fields = self.u.forward(to_u, record)

        out = np.concatenate([u_out, dump * self.dump_amplitude], axis=1)
        recorded = SVDFields(v_fields, attenuator_fields, u_fields) if record else None
        return (out[0] if single else out), recorded

    def extended_backward(
        self, y: np.ndarray, record: bool = False
    ) -> tuple[np.ndarray, SVDFields | None]:
        """Propagate light launched into all M + N output ports back to the input ports.

        By reciprocity the extended device acts as the transpose of its forward matrix. No
        digital scale is applied.

        Args:
            y: fields ``(batch, M + N)`` or ``(M + N,)``: main outputs, then dumps.
            record: also return the backward field at the point just after every phase
                shifter (in the forward sense).

        Returns:
            The fields leaving all input ports (main, then auxiliary) and the recorded
            fields, or None.

        Raises:
            ValueError: for an input of the wrong shape or with NaN or infinity.
        """
        single = np.ndim(y) == 1
        y = as_field_batch(y, (self.n_ports,), "extended backward input")
        m = self.n_outputs

        u_back, u_fields = self.u.backward(y[:, :m], record)
        dump = y[:, m:] * self.dump_amplitude
        main, aux, attenuator_fields = self.attenuators.backward(u_back, dump, record)
        v_back, v_fields = self.v.backward(main, record)

        out = np.concatenate([v_back, aux * self.aux_amplitude], axis=1)
        recorded = SVDFields(v_fields, attenuator_fields, u_fields) if record else None
        return (out[0] if single else out), recorded

    def forward(
        self, x: np.ndarray, record: bool = False
    ) -> tuple[np.ndarray, SVDFields | None]:
        """Compute the layer output: output_scale times the fields at the M main outputs.

        Args:
            x: fields ``(batch, N)``, with the auxiliary inputs dark, or ``(batch, N + M)``
                for all input ports; a single vector of either width is accepted too.
            record: also return the optical field just after every phase shifter.

        Returns:
            The scaled main outputs ``(batch, M)`` (or ``(M,)``) and the recorded fields,
            or None.

        Raises:
            ValueError: for an input of another width or with NaN or infinity.
        """
        single = np.ndim(x) == 1
        x = as_field_batch(x, (self.n_inputs, self.n_ports), "layer input")
        if x.shape[1] == self.n_inputs:
            x = np.concatenate(
                [x, np.zeros((x.shape[0], self.n_outputs), np.complex128)], axis=1
            )
        out, recorded = self.extended_forward(x, record)
        out = self.output_scale * out[:, : self.n_outputs]
        return (out[0] if single else out), recorded

    def backward(
        self, y: np.ndarray, record: bool = False
    ) -> tuple[np.ndarray, SVDFields | None]:
        """Launch output_scale times the adjoint source ``y`` into the main outputs.

        The dumps stay dark, because the loss does not depend on them. The result is the
        transpose of ``forward`` applied to ``y``, so its first N entries are the adjoint
        Γ of the layer input.

        Args:
            y: adjoint source at the main outputs, ``(batch, M)`` or ``(M,)``.
            record: also return the optical adjoint field at every phase shifter.

        Returns:
            The fields leaving all N + M input ports (main, then auxiliary) and the recorded
            fields, or None.

        Raises:
            ValueError: for a source of another width or with NaN or infinity.
        """
        single = np.ndim(y) == 1
        y = as_field_batch(y, (self.n_outputs,), "adjoint source")
        launched = np.concatenate(
            [
                self.output_scale * y,
                np.zeros((y.shape[0], self.n_inputs), np.complex128),
            ],
            axis=1,
        )
        out, recorded = self.extended_backward(launched, record)
        return (out[0] if single else out), recorded

    def extended_matrix(self) -> np.ndarray:
        """Compute the (N + M)×(N + M) optical transfer matrix E of the extended device.

        Rows are the output ports (main, then dumps), columns the input ports (main, then
        auxiliary). ``E[:M, :N]`` is the realised W/σ_max.
        """
        out, _ = self.extended_forward(np.eye(self.n_ports))
        return out.T

    def matrix(self) -> np.ndarray:
        """Compute the M×N matrix the layer applies, output_scale · E[:M, :N] (W when
        ideal)."""
        out, _ = self.forward(np.eye(self.n_inputs))
        return out.T


class SVDChip:
    """A layer W = U Σ V† on a chip: a V† mesh, an attenuator stage and a U mesh.

    It has the interface of ``photonic.hardware.Chip`` that ``PhotonicNetwork`` and
    ``InSituStep`` use, with N inputs, M outputs and the phase order of the module
    docstring. The three parts are chips with seeds spawned from ``seed`` (V† mesh,
    attenuators, U mesh), so each draws its own static errors from the same
    ``hardware``. Input modulators and receivers at the input ports use the V† chip's
    error model and noise stream. Those at the output ports use the U chip's.

    Args:
        n_inputs: N, the width of the layer input.
        n_outputs: M, the width of the layer output.
        hardware: the error model.
        seed: seed of the layer.
        topology: "rectangular" or "triangular", for both meshes.
        phases: programmed phases in the layer order; None draws the mesh phases by
            ``initialization`` and programs every attenuator to full transmission.
        output_scale: digital gain applied to the detected main outputs, >= 0.
        initialization: "uniform" or "haar", for the meshes when ``phases`` is None.

    Raises:
        ValueError: if N or M is below 2, for an unknown topology, a phase vector of the
            wrong length or not finite, or a negative or non-finite output scale.
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        hardware: HardwareConfig,
        seed: int | np.random.SeedSequence,
        topology: str = "rectangular",
        phases: np.ndarray | None = None,
        output_scale: float = 1.0,
        initialization: str = "uniform",
    ) -> None:
        attenuator_layout = AttenuatorLayout.for_shape(n_inputs, n_outputs)
        v_layout = MeshLayout.create(attenuator_layout.n_inputs, topology)
        u_layout = MeshLayout.create(attenuator_layout.n_outputs, topology)
        self._output_scale = _check_output_scale(output_scale)
        self.hardware = hardware
        self.topology = topology
        self._sizes = (
            v_layout.n_phases,
            attenuator_layout.n_phases,
            u_layout.n_phases,
        )

        parts: list[np.ndarray | None] = [None, None, None]
        if phases is not None:
            parts = list(self._split(phases))
        sequence = (
            seed
            if isinstance(seed, np.random.SeedSequence)
            else np.random.SeedSequence(seed)
        )
        v_seed, attenuator_seed, u_seed = sequence.spawn(3)
        self.v_chip = Chip(v_layout, hardware, v_seed, parts[0], initialization)
        self.attenuator_chip = AttenuatorChip(
            attenuator_layout, hardware, attenuator_seed, parts[1]
        )
        self.u_chip = Chip(u_layout, hardware, u_seed, parts[2], initialization)

        # Auxiliary and dump guides cross the mesh sections like idle mesh guides.
        waveguide_db = hardware.static.waveguide_loss_db
        self.aux_amplitude = 10 ** (-waveguide_db * v_layout.depth / 20)
        self.dump_amplitude = 10 ** (-waveguide_db * u_layout.depth / 20)

    @classmethod
    def from_matrix(
        cls,
        matrix: np.ndarray,
        hardware: HardwareConfig,
        seed: int | np.random.SeedSequence,
        topology: str = "rectangular",
    ) -> SVDChip:
        """Program an SVD layer to the real or complex M×N weight matrix ``matrix``.

        W = U·diag(σ)·V† by ``numpy.linalg.svd``; the V† and U meshes are programmed by
        ``photonic.decompose`` and the attenuators to t_k = σ_k/σ_max, and the output scale
        is σ_max. On an ideal chip the layer applies W to rounding error. A zero matrix has
        σ_max = 0: the output scale is 0 and every attenuator is dark (t = 0).

        Raises:
            ValueError: if the matrix is not 2-D, has fewer than 2 rows or columns, or
                contains NaN or infinity, and for an unknown topology.
        """
        try:
            weights = np.array(matrix, dtype=np.complex128)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"weight matrix cannot be converted to a complex array: {error}"
            ) from error
        if weights.ndim != 2:
            raise ValueError(
                f"weight matrix has shape {weights.shape}; expected (M, N)"
            )
        n_outputs, n_inputs = weights.shape
        check_port_count("number of weight columns N", n_inputs)
        check_port_count("number of weight rows M", n_outputs)
        if not np.all(np.isfinite(weights)):
            raise ValueError("weight matrix contains NaN or infinity")

        left, singular, right_h = np.linalg.svd(weights)
        scale = float(singular[0])
        if scale > 0:
            transmission = np.clip(singular / scale, 0.0, 1.0)
        else:
            transmission = np.zeros_like(singular)
        phases = np.concatenate(
            [
                decompose(right_h, topology),
                attenuator_phases(transmission),
                decompose(left, topology),
            ]
        )
        logger.debug(
            "programmed a %dx%d SVD layer: sigma_max %.6g, transmissions %s",
            n_outputs,
            n_inputs,
            scale,
            np.array2string(transmission, precision=4),
        )
        return cls(
            n_inputs,
            n_outputs,
            hardware,
            seed,
            topology=topology,
            phases=phases,
            output_scale=scale,
        )

    def _split(self, phases: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        phases = np.array(phases, dtype=float)
        n_v, n_a, n_u = self._sizes
        if phases.shape != (self.n_phases,):
            raise ValueError(
                f"phase vector has shape {phases.shape}; this SVD layer needs "
                f"({self.n_phases},): {n_v} V mesh, {n_a} attenuator, {n_u} U mesh"
            )
        if not np.all(np.isfinite(phases)):
            raise ValueError("programmed phases contain NaN or infinity")
        return phases[:n_v], phases[n_v : n_v + n_a], phases[n_v + n_a :]

    @property
    def chips(self) -> tuple[Chip, AttenuatorChip, Chip]:
        """The three parts in phase order: V† mesh, attenuators, U mesh."""
        return self.v_chip, self.attenuator_chip, self.u_chip

    @property
    def n_inputs(self) -> int:
        """Number N of main input ports (the layer input width)."""
        return self.v_chip.layout.n_modes

    @property
    def n_outputs(self) -> int:
        """Number M of main output ports (the layer output width)."""
        return self.u_chip.layout.n_modes

    @property
    def n_ports(self) -> int:
        """Number N + M of input (and of output) ports of the extended device."""
        return self.n_inputs + self.n_outputs

    @property
    def n_phases(self) -> int:
        """Number N² + 2·min(N, M) + M² of programmable phases."""
        return sum(self._sizes)

    def phase_slices(self) -> tuple[slice, slice, slice]:
        """Slices of the phase vector for the V† mesh, the attenuators and the U mesh."""
        n_v, n_a, n_u = self._sizes
        return slice(0, n_v), slice(n_v, n_v + n_a), slice(n_v + n_a, n_v + n_a + n_u)

    @property
    def output_phase_indices(self) -> np.ndarray:
        """Indices of the U mesh's output phases ψ in the phase vector."""
        start = self.phase_slices()[2].start
        return start + self.u_chip.output_phase_indices

    @property
    def output_scale(self) -> float:
        """Digital gain applied to the detected main outputs (σ_max for ``from_matrix``)."""
        return self._output_scale

    @property
    def phases(self) -> np.ndarray:
        """Programmed phases in the layer order (V† mesh, attenuators, U mesh), in rad."""
        return np.concatenate([chip.phases for chip in self.chips])

    @phases.setter
    def phases(self, value: np.ndarray) -> None:
        parts = self._split(value)
        for chip, part in zip(self.chips, parts):
            chip.phases = part

    def _realise(
        self, v: RealisedMesh, attenuators: AttenuatorStage, u: RealisedMesh
    ) -> SVDDevice:
        return SVDDevice(
            v,
            attenuators,
            u,
            output_scale=self._output_scale,
            aux_amplitude=self.aux_amplitude,
            dump_amplitude=self.dump_amplitude,
        )

    def device(self) -> SVDDevice:
        """Return the realised layer now, with static errors, programming and drift, and
        without per-pass noise."""
        return self._realise(*(chip.device() for chip in self.chips))

    def pass_device(
        self, pass_name: str = "forward", time_s: float | None = None
    ) -> SVDDevice:
        """Return the layer for one optical pass. Every part draws its phase noise afresh
        and advances its drift to ``time_s`` in s, or keeps it for None."""
        return self._realise(
            *(chip.pass_device(pass_name, time_s) for chip in self.chips)
        )

    def launch(self, vectors: np.ndarray, pass_name: str) -> np.ndarray:
        """Fields the modulators actually launch when asked for ``vectors``: at the input
        ports (V† chip's model) in the forward and interference passes, at the main outputs
        (U chip's model) in the adjoint pass."""
        side = self.u_chip if pass_name == "adjoint" else self.v_chip
        return side.launch(vectors, pass_name)

    def measure_fields(self, fields: np.ndarray, pass_name: str) -> np.ndarray:
        """Coherent detection of fields returned by this layer's devices.

        In the adjoint pass the fields are the light leaving the input ports, detected with
        the V† chip's receiver errors. Otherwise they are the scaled main outputs
        output_scale·y: the light y is detected with the U chip's receiver errors and the
        reading is multiplied by output_scale, which gives 0 when the scale is 0.
        """
        self.hardware.pass_errors(pass_name)
        if pass_name == "adjoint":
            return self.v_chip.measure_fields(fields, pass_name)
        if self._output_scale == 0:
            return np.zeros(np.shape(fields), dtype=np.complex128)
        light = np.asarray(fields) / self._output_scale
        return self._output_scale * self.u_chip.measure_fields(light, pass_name)

    def read_monitors(
        self, power: np.ndarray, pass_name: str = "forward"
    ) -> np.ndarray:
        """Monitor readings of the true powers ``power`` (layer phase order) in a pass;
        each part reads its own monitors.

        Raises:
            ValueError: if the last axis is not the number of phases, or for an unknown
                pass.
        """
        power = np.asarray(power, dtype=float)
        if power.shape[-1] != self.n_phases:
            raise ValueError(
                f"monitor powers have {power.shape[-1]} entries per sample; this SVD "
                f"layer has {self.n_phases} phase shifters"
            )
        readings = [
            chip.read_monitors(power[..., part], pass_name)
            for chip, part in zip(self.chips, self.phase_slices())
        ]
        return np.concatenate(readings, axis=-1)

    def nominal_power_factors(self) -> np.ndarray:
        """Nominal power transmission from the input ports to every phase shifter.

        As in ``Chip.nominal_power_factors``, every waveguide of every column is taken to
        have the configured mean MZI loss plus the waveguide loss. The attenuator column
        counts as one column after the V† mesh, and the U mesh follows it.
        """
        static = self.hardware.static
        column_db = static.mzi_loss_db + static.waveguide_loss_db
        v_db = self.v_chip.layout.depth * column_db
        return np.concatenate(
            [
                self.v_chip.nominal_power_factors(),
                self.attenuator_chip.nominal_power_factors() * 10 ** (-v_db / 10),
                self.u_chip.nominal_power_factors() * 10 ** (-(v_db + column_db) / 10),
            ]
        )
