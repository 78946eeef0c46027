"""In situ backpropagation measured with light and power monitors.

Per layer, three optical passes (Hughes et al., Optica 5, 864, 2018):

1. forward pass: input x, monitor powers P_fwd = |a|², output z detected coherently;
2. adjoint pass: the adjoint source δ launched into the output ports, monitor powers
   P_bwd = |b|², and the adjoint output x_adj = Uᵀδ read at the input ports;
3. interference pass: input x − i·conj(x_adj), monitor powers P_sum;

then ∂L/∂φ = (P_sum − P_fwd − P_bwd)/2, summed over the batch. This is exact for a lossless
mesh; mode-dependent loss, noise and detection make it deviate.

The adjoint source of every sample is scaled to the power of that sample's forward input before
it is launched, and the measured gradient is scaled back. The gradient is linear in δ, so this
changes nothing in the noiseless case, and it keeps the adjoint light well above the monitor
noise.

Each pass draws its own per-pass noise. ``InSituStep`` exposes the passes one by one so a
scheduler can run each at its own simulated time; ``measure_gradient`` runs them in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photonic.network import PhotonicNetwork


@dataclass(frozen=True)
class InSituResult:
    """Outcome of one measured gradient.

    Attributes:
        loss: batch loss computed from the detected outputs of the forward passes.
        outputs: detected output fields of the last layer, ``(batch, modes)``.
        gradients: measured gradient of every layer's phases (θ, φ, ψ).
        optical_passes: number of optical passes used (3 per layer).
    """

    loss: float
    outputs: np.ndarray
    gradients: list[np.ndarray]
    optical_passes: int

    def flat(self) -> np.ndarray:
        """Return all layers' gradients as one vector."""
        return np.concatenate(self.gradients)


class InSituStep:
    """The passes of one measured gradient, run one at a time in the hardware order.

    The order is: ``forward_pass(l)`` for l = 0 … L−1, then ``adjoint_pass(l)`` and
    ``interference_pass(l)`` for l = L−1 … 0. A pass called out of order raises RuntimeError.
    """

    def __init__(
        self, network: PhotonicNetwork, x: np.ndarray, targets: np.ndarray
    ) -> None:
        x = np.asarray(x)
        if not np.all(np.isfinite(x)):
            raise ValueError("network input contains NaN or infinity")
        self.network = network
        self.targets = targets
        n = network.n_layers
        self._inputs: list[np.ndarray | None] = [np.asarray(x, dtype=np.complex128)] + [
            None
        ] * (n - 1)
        self._outputs: list[np.ndarray | None] = [None] * n
        self._p_forward: list[np.ndarray | None] = [None] * n
        self._p_adjoint: list[np.ndarray | None] = [None] * n
        self._adjoint_out: list[np.ndarray | None] = [None] * n
        self._scale: list[np.ndarray | None] = [None] * n
        self._delta: list[np.ndarray | None] = [None] * n
        self.gradients: list[np.ndarray | None] = [None] * n
        self.loss: float | None = None
        self.passes = 0

    def _require(self, condition: bool, message: str) -> None:
        if not condition:
            raise RuntimeError(f"in situ passes out of order: {message}")

    def forward_pass(self, layer: int) -> None:
        """Forward pass of ``layer``: monitor powers, detected output, next layer's input."""
        x = self._inputs[layer]
        self._require(
            x is not None, f"forward pass of layer {layer} before its input exists"
        )
        chip = self.network.chips[layer]
        out, fields = chip.pass_device().forward(x, record=True)
        self.passes += 1
        self._p_forward[layer] = chip.read_monitors(fields.powers())
        self._outputs[layer] = out
        if layer + 1 < self.network.n_layers:
            self._inputs[layer + 1] = self.network.activation.forward(out)
        else:
            self.loss, self._delta[layer] = self.network.loss.value_and_adjoint(
                out, self.targets
            )

    def adjoint_pass(self, layer: int) -> None:
        """Adjoint pass of ``layer``: launch δ backward, read monitors and the input ports."""
        delta = self._delta[layer]
        self._require(
            delta is not None, f"adjoint pass of layer {layer} before its source"
        )
        x = self._inputs[layer]
        input_power = np.sum(np.abs(x) ** 2, axis=1)
        source_power = np.sum(np.abs(delta) ** 2, axis=1)
        # Launch every sample's source at the power of its forward input. The gradient is
        # linear in the source, so the measured gradient is scaled back by the same factor.
        gain = np.sqrt(
            np.divide(
                input_power,
                source_power,
                out=np.zeros_like(input_power),
                where=source_power > 0,
            )
        )
        chip = self.network.chips[layer]
        adjoint_out, fields = chip.pass_device().backward(
            delta * gain[:, None], record=True
        )
        self.passes += 1
        self._p_adjoint[layer] = chip.read_monitors(fields.powers())
        self._adjoint_out[layer] = adjoint_out
        self._scale[layer] = np.divide(
            1.0, gain, out=np.zeros_like(gain), where=gain > 0
        )
        if layer > 0:
            gamma = adjoint_out * self._scale[layer][:, None]
            self._delta[layer - 1] = self.network.activation.adjoint(
                self._outputs[layer - 1], gamma
            )

    def interference_pass(self, layer: int) -> None:
        """Interference pass of ``layer`` with input x − i·conj(x_adj); completes its gradient."""
        adjoint_out = self._adjoint_out[layer]
        self._require(
            adjoint_out is not None,
            f"interference pass of layer {layer} before its adjoint pass",
        )
        chip = self.network.chips[layer]
        mixed = self._inputs[layer] - 1j * np.conj(adjoint_out)
        _, fields = chip.pass_device().forward(mixed, record=True)
        self.passes += 1
        p_sum = chip.read_monitors(fields.powers())
        per_sample = 0.5 * (p_sum - self._p_forward[layer] - self._p_adjoint[layer])
        self.gradients[layer] = self._scale[layer] @ per_sample

    def result(self) -> InSituResult:
        """Return the measured gradients once every pass has run."""
        self._require(
            all(g is not None for g in self.gradients),
            "not every layer has its interference pass",
        )
        return InSituResult(
            loss=float(self.loss),
            outputs=self._outputs[-1],
            gradients=[g for g in self.gradients],
            optical_passes=self.passes,
        )


def pass_order(n_layers: int) -> list[tuple[str, int]]:
    """Return the hardware order of the passes of one step, as (kind, layer) pairs."""
    order = [("forward", layer) for layer in range(n_layers)]
    for layer in range(n_layers - 1, -1, -1):
        order += [("adjoint", layer), ("interference", layer)]
    return order


def run_pass(step: InSituStep, kind: str, layer: int) -> None:
    """Run one pass of ``step`` by its kind: "forward", "adjoint" or "interference"."""
    methods = {
        "forward": step.forward_pass,
        "adjoint": step.adjoint_pass,
        "interference": step.interference_pass,
    }
    if kind not in methods:
        raise ValueError(
            f"pass kind {kind!r} is unknown; choose one of {', '.join(methods)}"
        )
    methods[kind](layer)


def measure_gradient(
    network: PhotonicNetwork, x: np.ndarray, targets: np.ndarray
) -> InSituResult:
    """Measure the gradient of the batch loss by the three-pass protocol, passes in order."""
    step = InSituStep(network, x, targets)
    for kind, layer in pass_order(network.n_layers):
        run_pass(step, kind, layer)
    return step.result()
