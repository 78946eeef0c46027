"""Gradient error of each method, from the physics model of ``photonic``.

Every method is compared with the same reference: the exact gradient of the realised
chips (static errors, programming and drift included, no per-pass noise) with respect to
the programmed phases, which the optimizer updates (``photonic.reference``). Only the
phases that can change the loss are compared (``PhotonicNetwork.trainable_masks``). The
errors are the cosine distance 1 − ĝ·g of the unit-normalised gradients and the relative
L2 error.

- in situ: ``photonic.insitu`` measures the gradient with three passes per layer on the
  chips, each pass at its scheduled time when pass times are given (so drift follows
  the schedule);
- finite differences: central differences (L(p + h) − L(p − h)) / 2h of the loss
  measured with noisy forward passes on the chips (``Chip.pass_device`` and
  ``Chip.measure_fields``), the shifted phases written through the chip's DAC model.
  The input of the shifted layer comes from one nominal noisy forward pass, as in the
  schedule;
- hybrid: the exact gradient of the nominal devices, ideal meshes applying the
  programmed phases, as a digital model without the chip's static errors computes it.

NOTE: the finite-difference and hybrid gradients are evaluated with the drift frozen at
its current state; their passes are not run at their scheduled times. The four-pass in
situ variant with analog subtraction has no physics model in ``photonic`` yet, so its
error is not computed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from photonic.hardware import Chip, HardwareConfig
from photonic.insitu import InSituStep, pass_order, run_pass
from photonic.losses import PowerCrossEntropy
from photonic.mesh import MeshLayout, RealisedMesh
from photonic.network import AbsActivation, PhotonicNetwork
from photonic.reference import exact_gradient, gradient_error, programmed_gradients

__all__ = [
    "GradientError",
    "PhysicsProblem",
    "build_problem",
    "finite_difference_gradient_error",
    "hybrid_gradient_error",
    "in_situ_gradient_error",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GradientError:
    """Gradient error of one method against the exact gradient of the real chips.

    Attributes:
        method: the method.
        cosine_distance: 1 − ĝ·g of the unit-normalised gradients.
        relative_error: |ĝ − g| / |g|.
        n_compared: number of phases compared.
    """

    method: str
    cosine_distance: float
    relative_error: float
    n_compared: int


@dataclass
class PhysicsProblem:
    """A network on chips, one batch of inputs and its class labels."""

    network: PhotonicNetwork
    x: np.ndarray
    labels: np.ndarray


def build_problem(
    n_modes: int,
    n_layers: int,
    batch_size: int,
    hardware: HardwareConfig,
    seed: int,
) -> PhysicsProblem:
    """Build a classifier of ``n_layers`` rectangular meshes and a random batch.

    The activation between layers is |z|; the loss is a power cross-entropy over two
    classes, the first and second half of the output ports. The chips' seeds and the
    batch come from ``numpy.random.SeedSequence(seed)``; every input has unit power.

    Raises:
        ValueError: if ``n_modes`` < 2 or a size is not positive.
    """
    if n_modes < 2 or n_layers < 1 or batch_size < 1:
        raise ValueError(
            f"need n_modes >= 2, n_layers >= 1 and batch_size >= 1, got "
            f"{n_modes}, {n_layers} and {batch_size}"
        )
    chip_seed, data_seed = np.random.SeedSequence(seed).spawn(2)
    layout = MeshLayout.create(n_modes, "rectangular")
    chips = [
        Chip(layout, hardware, layer_seed) for layer_seed in chip_seed.spawn(n_layers)
    ]
    half = n_modes // 2
    groups = (tuple(range(half)), tuple(range(half, n_modes)))
    network = PhotonicNetwork(
        chips, AbsActivation(), PowerCrossEntropy(n_modes, groups)
    )

    rng = np.random.default_rng(data_seed)
    fields = rng.standard_normal((batch_size, n_modes)) + 1j * rng.standard_normal(
        (batch_size, n_modes)
    )
    x = fields / np.linalg.norm(fields, axis=1, keepdims=True)
    labels = rng.integers(0, 2, size=batch_size)
    return PhysicsProblem(network, x, labels)


def _reference(problem: PhysicsProblem) -> list[np.ndarray]:
    """Exact gradient of the real chips with respect to the programmed phases."""
    network = problem.network
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, problem.x, problem.labels
    )
    return programmed_gradients(network.chips, exact.gradients)


def _compare(
    method: str,
    problem: PhysicsProblem,
    gradients: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    selected: Sequence[np.ndarray] | None = None,
) -> GradientError:
    masks = problem.network.trainable_masks()
    if selected is not None:
        masks = [mask & chosen for mask, chosen in zip(masks, selected)]
    measured = np.concatenate([g[mask] for g, mask in zip(gradients, masks)])
    exact = np.concatenate([g[mask] for g, mask in zip(reference, masks)])
    cosine, relative = gradient_error(measured, exact)
    return GradientError(method, cosine, relative, int(measured.size))


def in_situ_gradient_error(
    problem: PhysicsProblem,
    pass_times_s: Sequence[tuple[str, int, float]] | None = None,
    loss_correction: bool = False,
    analog_subtraction: bool = False,
) -> GradientError:
    """Return the error of the gradient measured in situ with three passes per layer, or
    four with ``analog_subtraction``.

    ``pass_times_s`` lists (kind, layer, time in s) of every pass in the order the
    schedule starts them, as ``on_pass`` reports them, and the drift of every chip follows
    those times. None runs the passes in ``photonic.insitu.pass_order`` with the drift
    frozen. ``loss_correction`` is passed to ``photonic.insitu.InSituStep``.

    Raises:
        RuntimeError: if the pass order leaves a pass without its input.
    """
    network = problem.network
    step = InSituStep(
        network,
        problem.x,
        problem.labels,
        loss_correction,
        analog_subtraction=analog_subtraction,
    )
    if pass_times_s is None:
        pass_times_s = [
            (kind, layer, None)
            for kind, layer in pass_order(network.n_layers, analog_subtraction)
        ]
    for kind, layer, time_s in pass_times_s:
        run_pass(step, kind, layer, time_s)
    measured = step.result()
    label = "in-situ-4" if analog_subtraction else "in-situ"
    return _compare(label, problem, measured.gradients, _reference(problem))


def hybrid_gradient_error(problem: PhysicsProblem) -> GradientError:
    """Return the error of the gradient of the nominal devices, as a digital model
    without the chips' static errors computes it."""
    network = problem.network
    nominal = [RealisedMesh.ideal(chip.layout, chip.phases) for chip in network.chips]
    model = exact_gradient(
        nominal, network.activation, network.loss, problem.x, problem.labels
    )
    return _compare("hybrid", problem, model.gradients, _reference(problem))


def _noisy_forward_from(
    network: PhotonicNetwork, layer: int, inputs: np.ndarray
) -> np.ndarray:
    """Detected outputs of the last layer for ``inputs`` launched into ``layer``."""
    current = inputs
    for index in range(layer, network.n_layers):
        if index > layer:
            current = network.activation.forward(current)
        chip = network.chips[index]
        launched = chip.launch(current, "forward")
        out, _ = chip.pass_device("forward").forward(launched)
        current = chip.measure_fields(out, "forward")
    return current


def finite_difference_gradient_error(
    problem: PhysicsProblem,
    step_rad: float,
    n_parameters: int | None = None,
    seed: int = 0,
) -> GradientError:
    """Return the error of central finite differences measured on the chips.

    Args:
        problem: the network, batch and labels; its programmed phases are restored
            afterwards.
        step_rad: the step h, rad.
        n_parameters: compare only this many trainable phases, drawn without replacement
            with ``numpy.random.default_rng(seed)``; None measures every trainable
            phase. Each measured phase costs two noisy forward evaluations.
        seed: seed of the choice of phases.

    Raises:
        ValueError: if ``step_rad`` is not positive or ``n_parameters`` < 1.
    """
    if not step_rad > 0:
        raise ValueError(f"step_rad must be > 0, got {step_rad!r}")
    network = problem.network
    masks = network.trainable_masks()
    selected = [mask.copy() for mask in masks]
    total = int(sum(mask.sum() for mask in masks))
    if n_parameters is not None:
        if n_parameters < 1:
            raise ValueError(f"n_parameters must be >= 1, got {n_parameters!r}")
        if n_parameters < total:
            flat = np.flatnonzero(np.concatenate(masks))
            chosen = np.random.default_rng(seed).choice(
                flat, n_parameters, replace=False
            )
            keep = np.zeros(sum(mask.size for mask in masks), dtype=bool)
            keep[chosen] = True
            offsets = np.cumsum([0] + [mask.size for mask in masks])
            selected = [keep[offsets[i] : offsets[i + 1]] for i in range(len(masks))]
    reference = _reference(problem)

    # One nominal noisy forward pass gives the input of every layer.
    inputs = _layer_inputs(network, problem.x)

    gradients = [np.zeros(chip.n_phases) for chip in network.chips]
    for layer, chip in enumerate(network.chips):
        programmed = chip.phases.copy()
        try:
            for index in np.flatnonzero(selected[layer]):
                losses = []
                for sign in (1.0, -1.0):
                    shifted = programmed.copy()
                    shifted[index] += sign * step_rad
                    chip.phases = shifted
                    outputs = _noisy_forward_from(network, layer, inputs[layer])
                    value, _ = network.loss.value_and_adjoint(outputs, problem.labels)
                    losses.append(value)
                gradients[layer][index] = (losses[0] - losses[1]) / (2 * step_rad)
        finally:
            chip.phases = programmed
    return _compare("finite-difference", problem, gradients, reference, selected)


def _layer_inputs(network: PhotonicNetwork, x: np.ndarray) -> list[np.ndarray]:
    """Inputs of every layer from one nominal noisy forward pass through the chips."""
    inputs = [np.asarray(x)]
    current = np.asarray(x)
    for index in range(network.n_layers - 1):
        chip = network.chips[index]
        launched = chip.launch(current, "forward")
        out, _ = chip.pass_device("forward").forward(launched)
        current = network.activation.forward(chip.measure_fields(out, "forward"))
        inputs.append(current)
    return inputs
