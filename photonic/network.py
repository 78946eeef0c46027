"""A network of mesh layers with electronic activations between them.

Layer l maps its input x_{l−1} to z_l = U_l x_{l−1} optically; the output z_l is detected
coherently and the activation x_l = f(z_l) is applied digitally before the next mesh. The loss
acts on the fields of the last layer. The adjoint of a non-holomorphic activation with
z = r·e^{iφ} follows Hughes et al., Optica 5, 864 (2018): for f(z) = |z|,
δ = e^{−iφ}·Re(Γ), with the subgradient 0 at z = 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from photonic.hardware import Chip
from photonic.mesh import RealisedMesh


class Activation(Protocol):
    """An electronic activation and the adjoint source it passes back."""

    name: str

    def forward(self, z: np.ndarray) -> np.ndarray: ...

    def adjoint(self, z: np.ndarray, gamma: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class AbsActivation:
    """f(z) = |z|; adjoint δ = e^{−i·arg z}·Re(Γ), and 0 where z = 0."""

    name: str = "abs"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.abs(z).astype(np.complex128)

    def adjoint(self, z: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        magnitude = np.abs(z)
        unit = np.divide(
            np.conj(z), magnitude, out=np.zeros_like(z), where=magnitude > 0
        )
        return unit * np.real(gamma)


@dataclass(frozen=True)
class IdentityActivation:
    """f(z) = z (a linear network); adjoint δ = Γ."""

    name: str = "identity"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return z

    def adjoint(self, z: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        return gamma


ACTIVATIONS = {"abs": AbsActivation, "identity": IdentityActivation}


def activation_by_name(name: str) -> Activation:
    """Return the activation called ``name``.

    Raises:
        ValueError: for an unknown name.
    """
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"activation {name!r} is unknown; choose one of {', '.join(ACTIVATIONS)}"
        ) from None


class Loss(Protocol):
    """A loss on the last layer's output fields (see photonic.losses)."""

    def value_and_adjoint(
        self, y: np.ndarray, targets: np.ndarray
    ) -> tuple[float, np.ndarray]: ...


@dataclass
class ForwardTrace:
    """Inputs ``inputs[l]`` and outputs ``outputs[l]`` of every layer for one batch."""

    inputs: list[np.ndarray] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)


def propagate(
    devices: Sequence[RealisedMesh], activation: Activation, x: np.ndarray
) -> ForwardTrace:
    """Run a batch through realised layers, applying the activation between them."""
    trace = ForwardTrace()
    current = x
    for index, device in enumerate(devices):
        if index > 0:
            current = activation.forward(trace.outputs[-1])
        trace.inputs.append(current)
        out, _ = device.forward(current)
        trace.outputs.append(out)
    return trace


class PhotonicNetwork:
    """Mesh layers on chips, an activation between them, and a loss on the last layer.

    A layer is any chip with the interface of ``photonic.hardware.Chip``: ``n_inputs``,
    ``n_outputs``, ``n_phases``, ``phases``, ``device()``, ``pass_device()``, ``launch()``,
    ``measure_fields()`` and ``read_monitors()``.

    Args:
        chips: one chip per layer; each layer's outputs feed the next layer's inputs.
        activation: the electronic activation between layers.
        loss: the loss on the output fields.
    """

    def __init__(
        self, chips: Sequence[Chip], activation: Activation, loss: Loss
    ) -> None:
        if not chips:
            raise ValueError("a network needs at least one layer")
        for index in range(len(chips) - 1):
            if chips[index].n_outputs != chips[index + 1].n_inputs:
                raise ValueError(
                    f"layer {index} has {chips[index].n_outputs} outputs but layer "
                    f"{index + 1} has {chips[index + 1].n_inputs} inputs"
                )
        self.chips = list(chips)
        self.activation = activation
        self.loss = loss

    @property
    def n_modes(self) -> int:
        """Number of input ports of the first layer."""
        return self.chips[0].n_inputs

    @property
    def n_layers(self) -> int:
        return len(self.chips)

    @property
    def n_phases(self) -> int:
        """Number of programmable phases of all layers."""
        return sum(chip.n_phases for chip in self.chips)

    def trainable_masks(self) -> list[np.ndarray]:
        """Return, for every layer, which phases can change the loss.

        The output phases of a layer do nothing when its outputs only reach the loss through
        their magnitudes: before a |z| activation, or at the last layer under a loss on
        detected powers. Their exact gradient is 0; these phases are left out of training
        and of the gradient error. A chip without ``output_phase_indices`` keeps every
        phase.
        """
        masks = []
        for index, chip in enumerate(self.chips):
            mask = np.ones(chip.n_phases, dtype=bool)
            last = index == self.n_layers - 1
            magnitude_only = (
                getattr(self.loss, "detects_power", False)
                if last
                else self.activation.name == "abs"
            )
            indices = getattr(chip, "output_phase_indices", None)
            if magnitude_only and indices is not None:
                mask[indices] = False
            masks.append(mask)
        return masks

    def get_phases(self) -> list[np.ndarray]:
        """Return the programmed phases of every layer (copies)."""
        return [chip.phases.copy() for chip in self.chips]

    def set_phases(self, phases: Sequence[np.ndarray]) -> None:
        """Program new phases into every layer."""
        if len(phases) != self.n_layers:
            raise ValueError(
                f"got phases for {len(phases)} layers; the network has {self.n_layers}"
            )
        for chip, value in zip(self.chips, phases):
            chip.phases = value

    def devices(self) -> list[RealisedMesh]:
        """Return the realised devices without per-pass noise."""
        return [chip.device() for chip in self.chips]

    def infer(self, x: np.ndarray, noisy: bool = True) -> np.ndarray:
        """Return the detected output fields of the last layer for a batch.

        With ``noisy`` every layer is one forward pass on its chip: input modulator errors,
        per-pass phase noise and coherent-detection errors included. Otherwise the devices
        have static errors, programming and drift only, and detection is exact.
        """
        if not noisy:
            return propagate(self.devices(), self.activation, x).outputs[-1]
        current = np.asarray(x)
        for index, chip in enumerate(self.chips):
            if index > 0:
                current = self.activation.forward(current)
            launched = chip.launch(current, "forward")
            out, _ = chip.pass_device("forward").forward(launched)
            current = chip.measure_fields(out, "forward")
        return current
