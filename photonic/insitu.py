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

from photonic.kernels import scale_rows
from photonic.mesh import RealisedMesh
from photonic.network import PhotonicNetwork
from photonic.sweep import (
    OpticalPass,
    adjoint_gain,
    interference_input,
    measured_batch_gradient,
    propagate,
    propagate_backward,
    same_device,
    sweep_pays_off,
)


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
    Each pass takes the simulated time at which it runs, in s, which advances the drift of
    its chip; None leaves the drift where it is.

    Args:
        network: the network on its chips.
        x: input fields of the batch, ``(batch, inputs)``.
        targets: targets of the loss.
        loss_correction: rescale every gradient by the nominal power transmission from the
            inputs to its shifter, which makes the measurement exact for a mesh whose every
            waveguide of every column has the same loss (see ``Chip.nominal_power_factors``).
        summed_monitors: read the monitors of a layer on a ``RealisedMesh`` as batch sums
            (``photonic.sweep.measured_batch_gradient``) without recording its fields. The
            result has the same distribution as per-sample readings, but the noise draws
            differ, so seeded results differ between the two settings. Detectors with an
            ADC are always read per sample, and so are small meshes and batches, where
            recording the fields is faster (``photonic.sweep.sweep_pays_off``).
        analog_subtraction: measure with two interference passes per layer, inputs
            x − i·conj(x_adj) and x + i·conj(x_adj), and take (P_sum − P_alt)/4, which needs
            no stored forward or adjoint powers (Pai et al., Science 2023). The second
            pass is ``interference_conjugate_pass``.
    """

    def __init__(
        self,
        network: PhotonicNetwork,
        x: np.ndarray,
        targets: np.ndarray,
        loss_correction: bool = False,
        summed_monitors: bool = True,
        analog_subtraction: bool = False,
    ) -> None:
        x = np.asarray(x)
        if not np.all(np.isfinite(x)):
            raise ValueError("network input contains NaN or infinity")
        self.network = network
        self.targets = targets
        self.loss_correction = loss_correction
        self.summed_monitors = summed_monitors
        self.analog_subtraction = analog_subtraction
        self._p_interference: list[np.ndarray | None] = [None] * network.n_layers
        n = network.n_layers
        self._inputs: list[np.ndarray | None] = [np.asarray(x, dtype=np.complex128)]
        self._inputs += [None] * (n - 1)
        self._outputs: list[np.ndarray | None] = [None] * n
        self._p_forward: list[np.ndarray | None] = [None] * n
        self._p_adjoint: list[np.ndarray | None] = [None] * n
        self._adjoint_out: list[np.ndarray | None] = [None] * n
        self._scale: list[np.ndarray | None] = [None] * n
        self._delta: list[np.ndarray | None] = [None] * n
        # Passes kept for batch-summed monitor readings, by layer and pass name.
        self._passes: list[dict[str, OpticalPass]] = [{} for _ in range(n)]
        self.gradients: list[np.ndarray | None] = [None] * n
        self.loss: float | None = None
        self.passes = 0

    def _require(self, condition: bool, message: str) -> None:
        if not condition:
            raise RuntimeError(f"in situ passes out of order: {message}")

    def _sums_monitors(self, chip: object, device: object) -> bool:
        """Return whether the monitors of this pass are read as batch sums."""
        return (
            self.summed_monitors
            and not self.analog_subtraction
            and isinstance(device, RealisedMesh)
            and hasattr(chip, "hardware")
            and sweep_pays_off(device.layout.n_modes, len(self._inputs[0]))
        )

    def forward_pass(self, layer: int, time_s: float | None = None) -> None:
        """Forward pass of ``layer``: monitor powers, detected output, next layer's input."""
        x = self._inputs[layer]
        self._require(
            x is not None, f"forward pass of layer {layer} before its input exists"
        )
        chip = self.network.chips[layer]
        launched = chip.launch(x, "forward")
        device = chip.pass_device("forward", time_s)
        self.passes += 1
        if self._sums_monitors(chip, device):
            out = propagate(device, launched)
            self._passes[layer]["forward"] = OpticalPass(
                device, launched, chip.hardware.forward.monitor
            )
        else:
            out, fields = device.forward(launched, record=True)
            self._p_forward[layer] = chip.read_monitors(fields.powers(), "forward")
        measured = chip.measure_fields(out, "forward")
        self._outputs[layer] = measured
        if layer + 1 < self.network.n_layers:
            self._inputs[layer + 1] = self.network.activation.forward(measured)
        else:
            self.loss, self._delta[layer] = self.network.loss.value_and_adjoint(
                measured, self.targets
            )

    def adjoint_pass(self, layer: int, time_s: float | None = None) -> None:
        """Adjoint pass of ``layer``: launch δ backward, read monitors and the input ports."""
        delta = self._delta[layer]
        self._require(
            delta is not None, f"adjoint pass of layer {layer} before its source"
        )
        x = self._inputs[layer]
        chip = self.network.chips[layer]
        # A layer with a digital output gain (an SVD layer) folds it into the launched
        # source, so the light it launches is output_scale·δ. Every sample's source is
        # launched at the power of its forward input. The gradient is linear in the
        # source, so the measured gradient is scaled back by the same factor.
        gain, scale = adjoint_gain(x, delta, getattr(chip, "output_scale", 1.0))

        source = scale_rows(np.ascontiguousarray(delta, dtype=np.complex128), gain)
        launched = chip.launch(source, "adjoint")
        device = chip.pass_device("adjoint", time_s)
        self.passes += 1
        forward = self._passes[layer].get("forward")
        if forward is not None and self._sums_monitors(chip, device):
            # Without phase noise both passes see the same device: share its cached U.
            if same_device(device, forward.device):
                device = forward.device
            adjoint_out = propagate_backward(device, launched)
            self._passes[layer]["adjoint"] = OpticalPass(
                device, launched, chip.hardware.adjoint.monitor
            )
        else:
            adjoint_out, fields = device.backward(launched, record=True)
            self._p_adjoint[layer] = chip.read_monitors(fields.powers(), "adjoint")

        measured = chip.measure_fields(adjoint_out, "adjoint")
        self._adjoint_out[layer] = measured
        self._scale[layer] = scale
        if layer > 0:
            gamma = measured[:, : x.shape[1]] * self._scale[layer][:, None]
            self._delta[layer - 1] = self.network.activation.adjoint(
                self._outputs[layer - 1], gamma
            )

    def _padded_input(self, layer: int) -> np.ndarray:
        """Return the layer's input with zeros on the dark ports that the adjoint light leaves."""
        x = self._inputs[layer]
        if x.shape == self._adjoint_out[layer].shape:
            # No dark ports: the callers only read the input, so it needs no copy.
            return x
        padded = np.zeros_like(self._adjoint_out[layer])
        padded[:, : x.shape[1]] = x
        return padded

    def interference_pass(self, layer: int, time_s: float | None = None) -> None:
        """Interference pass of ``layer`` with input x − i·conj(x_adj); completes its gradient.

        A layer with more input ports than its inputs (dark ports) drives them with their
        share of −i·conj(x_adj) too.
        """
        adjoint_out = self._adjoint_out[layer]
        self._require(
            adjoint_out is not None,
            f"interference pass of layer {layer} before its adjoint pass",
        )
        chip = self.network.chips[layer]
        padded = self._padded_input(layer)
        launched = chip.launch(interference_input(padded, adjoint_out), "interference")
        device = chip.pass_device("interference", time_s)
        self.passes += 1
        passes = self._passes[layer]
        if "adjoint" in passes and self._sums_monitors(chip, device):
            if same_device(device, passes["forward"].device):
                device = passes["forward"].device
            self.gradients[layer] = measured_batch_gradient(
                passes["forward"],
                passes["adjoint"],
                OpticalPass(device, launched, chip.hardware.interference.monitor),
                self._scale[layer],
                chip.noise_rng,
                chip.nominal_power_factors() if self.loss_correction else None,
            )
            return
        _, fields = device.forward(launched, record=True)
        p_sum = chip.read_monitors(fields.powers(), "interference")
        if self.analog_subtraction:
            self._p_interference[layer] = p_sum
            return
        p_forward, p_adjoint = self._p_forward[layer], self._p_adjoint[layer]
        if self.loss_correction:
            factor = chip.nominal_power_factors()
            per_sample = 0.5 * (p_sum - p_forward - factor**2 * p_adjoint) / factor
        else:
            per_sample = 0.5 * (p_sum - p_forward - p_adjoint)
        self.gradients[layer] = self._scale[layer] @ per_sample

    def interference_conjugate_pass(
        self, layer: int, time_s: float | None = None
    ) -> None:
        """Second interference pass of ``layer``, input x + i·conj(x_adj); with analog
        subtraction it completes the gradient as (P_sum − P_alt)/4."""
        p_sum = self._p_interference[layer]
        self._require(
            self.analog_subtraction and p_sum is not None,
            f"conjugate interference pass of layer {layer} before its interference pass "
            "(it needs analog_subtraction=True)",
        )
        chip = self.network.chips[layer]
        adjoint_out = self._adjoint_out[layer]
        padded = self._padded_input(layer)
        launched = chip.launch(padded + 1j * np.conj(adjoint_out), "interference")
        _, fields = chip.pass_device("interference", time_s).forward(
            launched, record=True
        )
        self.passes += 1
        p_alt = chip.read_monitors(fields.powers(), "interference")
        per_sample = 0.25 * (p_sum - p_alt)
        if self.loss_correction:
            per_sample = per_sample / chip.nominal_power_factors()
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


def pass_order(
    n_layers: int, analog_subtraction: bool = False
) -> list[tuple[str, int]]:
    """Return the hardware order of the passes of one step, as (kind, layer) pairs."""
    order = [("forward", layer) for layer in range(n_layers)]
    for layer in range(n_layers - 1, -1, -1):
        order += [("adjoint", layer), ("interference", layer)]
        if analog_subtraction:
            order.append(("interference-conjugate", layer))
    return order


def run_pass(
    step: InSituStep, kind: str, layer: int, time_s: float | None = None
) -> None:
    """Run one pass of ``step`` by its kind ("forward", "adjoint" or "interference") at the
    simulated time ``time_s`` in s."""
    methods = {
        "forward": step.forward_pass,
        "adjoint": step.adjoint_pass,
        "interference": step.interference_pass,
        "interference-conjugate": step.interference_conjugate_pass,
    }
    if kind not in methods:
        raise ValueError(
            f"pass kind {kind!r} is unknown; choose one of {', '.join(methods)}"
        )
    methods[kind](layer, time_s)


def measure_gradient(
    network: PhotonicNetwork,
    x: np.ndarray,
    targets: np.ndarray,
    loss_correction: bool = False,
    summed_monitors: bool = True,
    analog_subtraction: bool = False,
) -> InSituResult:
    """Measure the gradient of the batch loss by the three-pass protocol, passes in order."""
    step = InSituStep(
        network, x, targets, loss_correction, summed_monitors, analog_subtraction
    )
    for kind, layer in pass_order(network.n_layers, analog_subtraction):
        run_pass(step, kind, layer)
    return step.result()
