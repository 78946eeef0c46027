"""Digital reference: the exact gradient of a realised device, and a finite-difference check.

The exact gradient is backpropagation written out for the realised devices, static errors,
quantization and loss included and measurement noise excluded: one forward solve records the
field a just after every phase shifter, one adjoint solve (the source δ launched into the output
ports, seeing Uᵀ) records the adjoint field b at the same points, and ∂L/∂φ = −Im(a·b), summed
over the batch (Hughes et al., Optica 5, 864, 2018).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from photonic.mesh import RealisedMesh
from photonic.network import Activation, Loss
from photonic.sweep import (
    exact_batch_gradient,
    propagate,
    propagate_backward,
    sweep_pays_off,
)


@dataclass(frozen=True)
class GradientResult:
    """Loss value and the gradient of every layer's phases (θ, φ, ψ) in 1/rad."""

    loss: float
    gradients: list[np.ndarray]

    def flat(self) -> np.ndarray:
        """Return all layers' gradients as one vector."""
        return np.concatenate(self.gradients)


def exact_gradient(
    devices: Sequence[RealisedMesh],
    activation: Activation,
    loss: Loss,
    x: np.ndarray,
    targets: np.ndarray,
) -> GradientResult:
    """Exact gradient of the batch loss with respect to every applied phase of every layer.

    A layer on a ``RealisedMesh`` is summed over the batch by ``photonic.sweep``, without
    recording its fields, when the size makes that faster (``sweep_pays_off``). Other
    devices, such as an SVD layer, and small sizes record them.
    """
    inputs, outputs, forward_fields = [], [], []
    current = x
    for index, device in enumerate(devices):
        if index > 0:
            current = activation.forward(outputs[-1])
        inputs.append(current)
        if isinstance(device, RealisedMesh) and sweep_pays_off(
            device.layout.n_modes, len(current)
        ):
            outputs.append(propagate(device, current))
            forward_fields.append(None)
        else:
            out, recorded = device.forward(current, record=True)
            outputs.append(out)
            forward_fields.append(recorded.stacked())

    value, delta = loss.value_and_adjoint(outputs[-1], targets)
    gradients: list[np.ndarray] = [np.empty(0)] * len(devices)
    for index in range(len(devices) - 1, -1, -1):
        device = devices[index]
        if forward_fields[index] is None:
            gradients[index] = exact_batch_gradient(device, inputs[index], delta)
            adjoint_out = propagate_backward(device, delta)
        else:
            adjoint_out, recorded = device.backward(delta, record=True)
            gradients[index] = -np.imag(
                np.sum(forward_fields[index] * recorded.stacked(), axis=0)
            )
        if index > 0:
            gamma = adjoint_out[:, : inputs[index].shape[1]]
            delta = activation.adjoint(outputs[index - 1], gamma)
    return GradientResult(loss=value, gradients=gradients)


def programmed_gradients(
    chips: Sequence[object], applied_gradients: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Convert every layer's gradient from applied to programmed phases.

    A chip without ``programmed_gradient`` has programmed phases equal to applied ones up to
    constants, and its gradient is returned unchanged.
    """
    converted = []
    for chip, gradient in zip(chips, applied_gradients):
        convert = getattr(chip, "programmed_gradient", None)
        converted.append(gradient if convert is None else convert(gradient))
    return converted


def network_loss(
    devices: Sequence[RealisedMesh],
    activation: Activation,
    loss: Loss,
    x: np.ndarray,
    targets: np.ndarray,
) -> float:
    """Batch loss of realised devices (no per-pass noise)."""
    current = x
    for index, device in enumerate(devices):
        if index > 0:
            current = activation.forward(current)
        current, _ = device.forward(current)
    value, _ = loss.value_and_adjoint(current, targets)
    return value


def finite_difference_gradient(
    devices: Sequence[RealisedMesh],
    activation: Activation,
    loss: Loss,
    x: np.ndarray,
    targets: np.ndarray,
    step: float = 1e-5,
) -> list[np.ndarray]:
    """Central finite differences of the batch loss over every applied phase, step in rad.

    The error is O(step²) from truncation plus O(ε/step) from rounding; 1e-5 rad balances them
    for losses of order one in double precision.
    """
    if not step > 0:
        raise ValueError(
            f"finite-difference step {step!r} rad is invalid; it must be > 0"
        )
    devices = list(devices)
    gradients = []
    for index, device in enumerate(devices):
        grad = np.empty(device.phases.shape)
        for p in range(device.phases.size):
            values = []
            for sign in (1.0, -1.0):
                shifted = device.phases.copy()
                shifted[p] += sign * step
                trial = devices.copy()
                trial[index] = device.with_phases(shifted)
                values.append(network_loss(trial, activation, loss, x, targets))
            grad[p] = (values[0] - values[1]) / (2 * step)
        gradients.append(grad)
    return gradients


def gradient_error(measured: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    """Gradient error of a measured gradient against the exact one.

    Returns:
        The cosine distance ``1 − ĝ·g`` of the unit-normalised gradients (Pai et al., Science
        2023) and the relative L2 error ``|ĝ_raw − g_raw| / |g_raw|``. Both are NaN when the
        exact gradient is zero.
    """
    measured = np.ravel(measured)
    exact = np.ravel(exact)
    norm_exact = np.linalg.norm(exact)
    norm_measured = np.linalg.norm(measured)
    if norm_exact == 0:
        return float("nan"), float("nan")
    relative = float(np.linalg.norm(measured - exact) / norm_exact)
    if norm_measured == 0:
        return 1.0, relative
    cosine = float(1.0 - np.dot(measured, exact) / (norm_measured * norm_exact))
    return cosine, relative
