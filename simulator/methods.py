"""Ways to get a gradient, each written as the program of tasks of one training step.

A program is a list of ``Task`` objects in program order: optical passes, monitor
readouts, digital computations, shifter writes for perturbations, and phase updates, each
with the tasks it depends on. The architecture (``simulator.architecture``) maps the
program onto meshes and other resources; the tasks that use one mesh run in program order.

Methods:

- ``"in-situ"``: in situ backpropagation with three passes per layer (Hughes et al.,
  Optica 5, 864, 2018): forward, adjoint and interference pass, each followed by a
  monitor readout; ∂L/∂φ = (P_sum − P_fwd − P_bwd) / 2.
- ``"in-situ-4"``: four passes per layer with analog subtraction: forward and adjoint
  pass without monitors, then the interference pass with input x − i·conj(x_adj) and its
  conjugate partner with x + i·conj(x_adj). The difference of their monitor powers is
  4·Re(a·conj(c)), so ∂L/∂φ = (P₊ − P₋) / 4 needs neither P_fwd nor P_bwd. Tap monitors
  integrate P₊ − P₋ in analog and are read once per layer; a camera takes frames in both
  interference passes.
- ``"finite-difference"``: forward-only training. One nominal forward pass gives the
  input of every layer; then every phase is shifted by +h and by −h, and the loss is
  measured each time with a forward pass from the shifted layer to the output, two
  network evaluations per phase. The evaluations of one layer run first, their outputs
  are stored, and only then do they pass the next layer, so a time-multiplexed mesh is
  reloaded once per layer and not once per evaluation.
- ``"hybrid"``: the forward pass runs on the chip; the controller computes the gradient
  by backpropagation through a digital model of each mesh (forward and adjoint
  propagation, 2 × MZIs × ``mzi_propagation`` operations per sample, plus −Im(a·b) per
  phase).

All methods end a step with one optimizer step and one phase update per layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.components import SystemConfig

__all__ = [
    "METHODS",
    "PassCount",
    "ScheduleShape",
    "Task",
    "build_step_program",
    "pass_count",
]

METHODS = ("in-situ", "in-situ-4", "finite-difference", "hybrid")

TASK_KINDS = ("pass", "readout", "compute", "perturb", "update")


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True)
class ScheduleShape:
    """Size of the network and batch of one training step.

    Every layer is an N-mode mesh with N(N−1)/2 MZIs and N² phases (θ and φ of every MZI
    and one output phase per mode).

    Raises:
        ValueError: if ``n_layers`` or ``batch_size`` is not a positive integer or
            ``n_modes`` is not an integer >= 2.
    """

    n_modes: int
    n_layers: int
    batch_size: int

    def __post_init__(self) -> None:
        _check_positive_int("n_layers", self.n_layers)
        _check_positive_int("batch_size", self.batch_size)
        if _check_positive_int("n_modes", self.n_modes) < 2:
            raise ValueError(f"n_modes must be an integer >= 2, got {self.n_modes!r}")

    @property
    def n_mzis(self) -> int:
        """MZIs per layer."""
        return self.n_modes * (self.n_modes - 1) // 2

    @property
    def phases_per_layer(self) -> int:
        """Phases per layer, N²."""
        return self.n_modes**2

    @property
    def n_phases(self) -> int:
        """Phases of all layers."""
        return self.n_layers * self.phases_per_layer


@dataclass(frozen=True)
class Task:
    """One task of a step program.

    Attributes:
        id: unique id, increasing in program order.
        kind: "pass" (an optical burst through a mesh), "readout" (the monitors of the
            pass it depends on), "compute" (operations on the controller), "perturb" (a
            write of a few shifters for a finite difference) or "update" (the write of
            a layer's new phases after the optimizer step).
        name: activity name shown in traces ("forward", "gradient", ...).
        phase: part of the step ("forward", "backward", "perturbation", "model",
            "update").
        layer: 0-based layer, or None.
        step: 0-based training step.
        deps: ids of tasks that must end before this one starts.
        feed: for a pass, the id of the pass whose output, after element-wise
            operations in the line-rate front end, is this pass's input; it streams in,
            so this pass may start before the feed ends.
        feed_ops: element-wise operations per element (mode and sample) on the feed.
        output_ops: element-wise operations per element on this pass's output that no
            later pass consumes (the loss terms of a finite-difference evaluation).
        detects: whether the pass detects the fields leaving the mesh.
        monitors: whether the monitors capture power during the pass.
        ops: operations of a compute task.
        shifters: shifters written by a perturb or update task.
        change_rad: largest phase change of the write, rad; None for an update, whose
            change the schedule settings give.
    """

    id: int
    kind: str
    name: str
    phase: str
    layer: int | None
    step: int
    deps: tuple[int, ...] = ()
    feed: int | None = None
    feed_ops: int = 0
    output_ops: int = 0
    detects: bool = False
    monitors: bool = False
    ops: int = 0
    shifters: int = 0
    change_rad: float | None = 0.0


@dataclass(frozen=True)
class PassCount:
    """Optical passes that one gradient needs.

    Attributes:
        optical_passes: passes in the usual count of each method: 3L (in situ), 4L
            (in situ with analog subtraction), 2P network evaluations (finite
            differences over P phases) and L (hybrid).
        mesh_passes: bursts through a mesh, the unit that costs time and energy. A
            finite-difference evaluation of layer l passes L − l meshes, and the nominal
            forward pass L − 1.
    """

    optical_passes: int
    mesh_passes: int


def pass_count(method: str, shape: ScheduleShape) -> PassCount:
    """Return the optical passes of one gradient by ``method`` for ``shape``.

    Raises:
        ValueError: for an unknown method.
    """
    _check_method(method)
    n_layers = shape.n_layers
    if method == "in-situ":
        return PassCount(3 * n_layers, 3 * n_layers)
    if method == "in-situ-4":
        return PassCount(4 * n_layers, 4 * n_layers)
    if method == "hybrid":
        return PassCount(n_layers, n_layers)
    per_layer = shape.phases_per_layer
    evaluations = sum(2 * per_layer * (n_layers - layer) for layer in range(n_layers))
    return PassCount(2 * shape.n_phases, (n_layers - 1) + evaluations)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


class _ProgramBuilder:
    """Appends tasks with increasing ids and resolves how a pass gets its input."""

    def __init__(self, system: SystemConfig, shape: ScheduleShape, first_id: int):
        self.system = system
        self.shape = shape
        self.tasks: list[Task] = []
        self._next_id = first_id
        self.stream = system.controller.stream_elementwise

    def add(
        self, kind: str, name: str, phase: str, layer: int | None, step: int, **fields
    ) -> Task:
        task = Task(self._next_id, kind, name, phase, layer, step, **fields)
        self._next_id += 1
        self.tasks.append(task)
        return task

    def optical_pass(
        self,
        name: str,
        phase: str,
        layer: int,
        step: int,
        feed: Task | None,
        feed_ops: int,
        detects: bool,
        monitors: bool,
        deps: tuple[int, ...] = (),
        output_ops: int = 0,
    ) -> Task:
        """Add a pass fed by ``feed``: streamed in the front end, or after a compute task
        on the controller when the controller runs the element-wise operations."""
        if feed is not None and not self.stream and feed_ops > 0:
            elements = self.shape.batch_size * self.shape.n_modes
            prepare = self.add(
                "compute",
                _input_name(name),
                phase,
                layer,
                step,
                deps=(feed.id,),
                ops=elements * feed_ops,
            )
            deps = (*deps, prepare.id)
            feed, feed_ops = None, 0
        elif feed is not None and not self.stream:
            deps = (*deps, feed.id)
            feed = None
        return self.add(
            "pass",
            name,
            phase,
            layer,
            step,
            deps=deps,
            feed=None if feed is None else feed.id,
            feed_ops=feed_ops,
            output_ops=output_ops if self.stream else 0,
            detects=detects,
            monitors=monitors,
        )

    def readout(
        self, name: str, phase: str, layer: int, step: int, source: Task
    ) -> Task:
        return self.add("readout", name, phase, layer, step, deps=(source.id,))

    def compute(
        self,
        name: str,
        phase: str,
        layer: int | None,
        step: int,
        deps: tuple[int, ...],
        ops: int,
    ) -> Task:
        return self.add("compute", name, phase, layer, step, deps=deps, ops=ops)

    def optimizer_and_update(self, layer: int, step: int, gradient: Task) -> None:
        optimizer = self.compute(
            "optimizer",
            "update",
            layer,
            step,
            (gradient.id,),
            self.shape.phases_per_layer * self.system.operations.phase_update,
        )
        self.add(
            "update",
            "update-write",
            "update",
            layer,
            step,
            deps=(optimizer.id,),
            shifters=self.shape.phases_per_layer,
            change_rad=None,
        )

    @property
    def readings_per_shifter(self) -> int:
        """Monitor readings per shifter and monitored pass that the gradient sums."""
        monitors = self.system.monitors
        per_sample = getattr(monitors, "frame_per_sample", False)
        return self.shape.batch_size if per_sample else 1


def _input_name(pass_name: str) -> str:
    return {
        "forward": "activation",
        "adjoint": "adjoint-source",
        "interference": "interference-input",
        "interference-conjugate": "interference-input",
        "perturbed-forward": "activation",
    }[pass_name]


def build_step_program(
    method: str,
    system: SystemConfig,
    shape: ScheduleShape,
    step: int,
    first_id: int,
    fd_step_rad: float,
) -> list[Task]:
    """Return the tasks of training step ``step`` by ``method``, ids from ``first_id``.

    ``fd_step_rad`` is the finite-difference step h, rad; other methods ignore it.

    Raises:
        ValueError: for an unknown method or a non-positive ``fd_step_rad``.
    """
    _check_method(method)
    if not (math.isfinite(fd_step_rad) and fd_step_rad > 0):
        raise ValueError(f"fd_step_rad must be a positive number, got {fd_step_rad!r}")
    builder = _ProgramBuilder(system, shape, first_id)
    if method == "in-situ":
        _in_situ(builder, step, analog_subtraction=False)
    elif method == "in-situ-4":
        _in_situ(builder, step, analog_subtraction=True)
    elif method == "finite-difference":
        _finite_difference(builder, step, fd_step_rad)
    else:
        _hybrid(builder, step)
    return builder.tasks


def _forward_chain(
    builder: _ProgramBuilder, step: int, n_layers: int, name: str, monitors: bool
) -> list[Task]:
    """Add forward passes of layers 0..n_layers−1, each fed by the activation of the last."""
    ops = builder.system.operations
    passes: list[Task] = []
    for layer in range(n_layers):
        feed = passes[-1] if passes else None
        passes.append(
            builder.optical_pass(
                name,
                "forward",
                layer,
                step,
                feed,
                ops.activation if feed is not None else 0,
                detects=True,
                monitors=monitors,
            )
        )
    return passes


def _in_situ(builder: _ProgramBuilder, step: int, analog_subtraction: bool) -> None:
    shape, ops = builder.shape, builder.system.operations
    n_layers, phases = shape.n_layers, shape.phases_per_layer
    camera = builder.system.monitor_kind == "camera"

    forward = _forward_chain(builder, step, n_layers, "forward", not analog_subtraction)
    forward_readouts = []
    if not analog_subtraction:
        forward_readouts = [
            builder.readout("monitor-readout", "forward", layer, step, forward[layer])
            for layer in range(n_layers)
        ]

    adjoint_feed = forward[-1]
    adjoint_feed_ops = ops.loss_term
    for layer in reversed(range(n_layers)):
        adjoint = builder.optical_pass(
            "adjoint",
            "backward",
            layer,
            step,
            adjoint_feed,
            adjoint_feed_ops,
            detects=True,
            monitors=not analog_subtraction,
        )
        adjoint_feed, adjoint_feed_ops = adjoint, ops.activation

        readouts = []
        if not analog_subtraction:
            readouts.append(forward_readouts[layer])
            readouts.append(
                builder.readout("monitor-readout", "backward", layer, step, adjoint)
            )
        interference = builder.optical_pass(
            "interference",
            "backward",
            layer,
            step,
            adjoint,
            ops.interference_input,
            detects=False,
            monitors=True,
        )
        if analog_subtraction:
            if camera:
                readouts.append(
                    builder.readout(
                        "monitor-readout", "backward", layer, step, interference
                    )
                )
            conjugate = builder.optical_pass(
                "interference-conjugate",
                "backward",
                layer,
                step,
                adjoint,
                ops.interference_input,
                detects=False,
                monitors=True,
            )
            readouts.append(
                builder.readout("monitor-readout", "backward", layer, step, conjugate)
            )
        else:
            readouts.append(
                builder.readout(
                    "monitor-readout", "backward", layer, step, interference
                )
            )

        readings = len(readouts) * builder.readings_per_shifter
        gradient = builder.compute(
            "gradient",
            "backward",
            layer,
            step,
            tuple(task.id for task in readouts),
            phases * readings * ops.gradient_term,
        )
        builder.optimizer_and_update(layer, step, gradient)


def _finite_difference(builder: _ProgramBuilder, step: int, fd_step_rad: float) -> None:
    shape, ops = builder.shape, builder.system.operations
    n_layers, phases = shape.n_layers, shape.phases_per_layer
    elements = shape.batch_size * shape.n_modes

    # The nominal forward pass leaves the input of every layer in memory: stored[l] lists
    # the tasks after which the input of layer l is there.
    stored: list[tuple[int, ...]] = [()]
    nominal: list[Task] = []
    for layer in range(n_layers - 1):
        last = layer == n_layers - 2
        if builder.stream:
            feed = nominal[-1] if nominal else None
            nominal.append(
                builder.optical_pass(
                    "forward",
                    "forward",
                    layer,
                    step,
                    feed,
                    ops.activation if feed is not None else 0,
                    detects=True,
                    monitors=False,
                    output_ops=ops.activation if last else 0,
                )
            )
            stored.append((nominal[-1].id,))
        else:
            nominal.append(
                builder.optical_pass(
                    "forward",
                    "forward",
                    layer,
                    step,
                    None,
                    0,
                    detects=True,
                    monitors=False,
                    deps=stored[-1],
                )
            )
            activation = builder.compute(
                "activation",
                "forward",
                layer,
                step,
                (nominal[-1].id,),
                elements * ops.activation,
            )
            stored.append((activation.id,))

    for layer in range(n_layers):
        # Evaluations of this layer's shifts, in order +h, −h for every phase. Writing
        # +h of a phase also restores the previous phase, so it writes two shifters.
        outputs: list[Task] = []
        for phase_index in range(phases):
            for sign in (1, -1):
                restores_previous = sign == 1 and phase_index > 0
                builder.add(
                    "perturb",
                    "perturb-write",
                    "perturbation",
                    layer,
                    step,
                    shifters=2 if restores_previous else 1,
                    change_rad=fd_step_rad if sign == 1 else 2 * fd_step_rad,
                )
                outputs.append(
                    builder.optical_pass(
                        "perturbed-forward",
                        "perturbation",
                        layer,
                        step,
                        None,
                        0,
                        detects=True,
                        monitors=False,
                        deps=stored[layer],
                        output_ops=ops.loss_term if layer == n_layers - 1 else 0,
                    )
                )
        builder.add(
            "perturb",
            "perturb-write",
            "perturbation",
            layer,
            step,
            shifters=1,
            change_rad=fd_step_rad,
        )

        # The stored outputs then pass every later layer, one burst per evaluation.
        for later in range(layer + 1, n_layers):
            outputs = [
                builder.optical_pass(
                    "perturbed-forward",
                    "perturbation",
                    later,
                    step,
                    upstream,
                    ops.activation,
                    detects=True,
                    monitors=False,
                    output_ops=ops.loss_term if later == n_layers - 1 else 0,
                )
                for upstream in outputs
            ]

        gradient_ops = phases * ops.difference_quotient
        if not builder.stream:
            gradient_ops += len(outputs) * elements * ops.loss_term
        gradient = builder.compute(
            "fd-gradient",
            "perturbation",
            layer,
            step,
            (outputs[-1].id,),
            gradient_ops,
        )
        builder.optimizer_and_update(layer, step, gradient)


def _hybrid(builder: _ProgramBuilder, step: int) -> None:
    shape, ops = builder.shape, builder.system.operations
    n_layers, phases = shape.n_layers, shape.phases_per_layer
    batch, modes = shape.batch_size, shape.n_modes

    forward = _forward_chain(builder, step, n_layers, "forward", monitors=False)
    model_forward = [
        builder.compute(
            "model-forward",
            "model",
            layer,
            step,
            (forward[layer].id,),
            batch * shape.n_mzis * ops.mzi_propagation,
        )
        for layer in range(n_layers)
    ]

    upstream: Task | None = None
    for layer in reversed(range(n_layers)):
        source_ops = ops.loss_term if layer == n_layers - 1 else ops.activation
        deps = [model_forward[layer].id, forward[-1].id]
        if upstream is not None:
            deps.append(upstream.id)
        upstream = builder.compute(
            "model-adjoint",
            "model",
            layer,
            step,
            tuple(deps),
            batch
            * (
                shape.n_mzis * ops.mzi_propagation
                + phases * ops.model_gradient_term
                + modes * source_ops
            ),
        )
        builder.optimizer_and_update(layer, step, upstream)
