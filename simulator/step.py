"""SimPy model of the time and energy of one in situ backpropagation training step.

The clock (``simpy.Environment.now``) is an integer count of picoseconds, starting at 0.

Resources, each a ``simpy.Resource`` of capacity 1:

- ``"mesh-1"`` ... ``"mesh-L"``: the MZI mesh of each layer,
- ``"phase-dac"``: the DAC that programs the phase shifters,
- ``"modulators"``: the input modulators, which also launch the adjoint field into
  the output ports,
- ``"detectors"``: coherent detection at the output ports and, for the adjoint
  output, at the input ports,
- ``"monitors"``: the phase-shifter tap monitors and their ADC,
- ``"controller"``: the digital controller.

One step, with layers l = 0..L-1 and the stages run one after another:

1. Forward, for l = 0..L-1: forward pass through mesh l (modulators and mesh busy for
   batch x symbol period + transit time), monitor readout, detection of the outputs
   (batch x detector integration time), activation on the controller.
2. Backward, for l = L-1..0: adjoint input on the controller (activation derivative
   times the adjoint output of layer l+1, or the loss gradient for the last layer),
   adjoint pass launched into the output ports, monitor readout, detection of the
   adjoint output at the input ports, interference input x - i conj(x_adj) on the
   controller, interference pass, monitor readout, gradient arithmetic on the
   controller.
3. Update: the optimizer step on the controller, then for l = 0..L-1 the phase DAC
   writes layer l and mesh l settles.

The forward pass of a step uses the phases programmed and settled at the end of the
previous step, or at start-up. So each step programs every layer once, at its end.
Its step time includes that settling, because the next step cannot start earlier.

Each stage is a generator method of ``StepModel`` that acquires its resources, holds
them for its duration and records a ``BusyInterval``. ``StepModel.training_step``
chains the stages sequentially. A pipelined schedule can start the same stage
processes concurrently (for example programming layer l while layer l-1 is still in
its backward pass). Stages acquire resources in the fixed order of
``resource_names`` so that concurrent stages cannot deadlock.

Order of simultaneous events, as implemented by simpy 4.1.2:

- The event queue is ordered by (time, priority, insertion count). Priority URGENT
  is processed before NORMAL at the same time, and events of equal time and
  priority in the order they were scheduled.
- Only process start-up, interrupts and the stop event of
  ``Environment.run(until=t)`` are URGENT. Timeouts, the granting of a
  resource request and a resource release are all NORMAL events.
- ``Resource.release`` frees the slot at once, inside the releasing process's step,
  and queued requests are granted first come, first served. So a stage waiting on
  a resource starts at exactly the picosecond at which the previous holder
  released it, with no gap.
- Where two processes request the same resource at the same time, the one whose
  request was created first is served first. In the sequential schedule no two
  stages ever compete, because each stage starts only after the previous one has
  ended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import numbers
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import simpy
from simpy.core import Infinity

from simulator.engine import BusyInterval
from simulator.timing import TimingConfig

__all__ = [
    "COHERENT_QUADRATURES",
    "PASS_KINDS",
    "BusyInterval",
    "PassCallback",
    "StepModel",
    "StepReport",
    "StepShape",
    "mesh_resource",
    "resource_names",
    "simulate_training_step",
]

logger = logging.getLogger(__name__)

PS_PER_S = 10**12

PASS_KINDS = ("forward", "adjoint", "interference")

# Coherent detection measures the in-phase and quadrature parts of each field,
# so one detected mode costs two ADC conversions.
COHERENT_QUADRATURES = 2

PHASE_DAC = "phase-dac"
MODULATORS = "modulators"
DETECTORS = "detectors"
MONITORS = "monitors"
CONTROLLER = "controller"

PassCallback = Callable[[str, int, int], None]
"""``on_pass(kind, layer, time_ps)``: kind in ``PASS_KINDS``, layer 0-based, time
in ps at which the pass starts."""

StageProcess = Generator[simpy.Event, Any, None]


def mesh_resource(layer: int) -> str:
    """Return the resource name of the mesh of 0-based ``layer``: ``"mesh-{layer+1}"``."""
    return f"mesh-{layer + 1}"


def resource_names(n_layers: int) -> tuple[str, ...]:
    """Return all resource names in the order in which stages acquire them."""
    meshes = tuple(mesh_resource(layer) for layer in range(n_layers))
    return (PHASE_DAC, MODULATORS, *meshes, MONITORS, DETECTORS, CONTROLLER)


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class StepShape:
    """Size of the network and batch that one training step processes.

    Raises:
        ValueError: if a field is not a positive integer. The message names the
            field and the value.
    """

    n_layers: int
    n_modes: int
    batch_size: int
    phases_per_layer: int

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = _check_positive_int(field.name, getattr(self, field.name))
            object.__setattr__(self, field.name, value)

    @property
    def n_phases(self) -> int:
        """Number of phase shifters in all layers."""
        return self.n_layers * self.phases_per_layer


@dataclass
class _Counts:
    """Operation counts of one step, from which the energies follow."""

    optical_passes: int = 0
    modulator_symbols: int = 0
    detector_conversions: int = 0
    monitor_conversions: int = 0
    programmed_shifters: int = 0
    digital_ops: int = 0


@dataclass(frozen=True)
class StepReport:
    """Time, energy and resource use of one simulated training step.

    ``energy_j`` is the sum of ``energy_by_component`` values in their order:
    laser, modulators, detector_adc, monitor_adc, phase_programming,
    heater_holding, controller. ``utilisation`` maps each resource to its busy
    time over ``step_time_ps``.
    """

    step_time_ps: int
    energy_j: float
    energy_by_component: dict[str, float]
    intervals: tuple[BusyInterval, ...]
    utilisation: dict[str, float]
    n_events: int
    optical_passes: int

    @property
    def step_time_s(self) -> float:
        """Step time, s."""
        return self.step_time_ps / PS_PER_S

    def busy_time_ps(self, resource: str) -> int:
        """Return the total time ``resource`` was held, ps."""
        return sum(
            interval.duration_ps
            for interval in self.intervals
            if interval.resource == resource
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a dict of JSON-ready values (times in ps and s)."""
        return {
            "step_time_ps": self.step_time_ps,
            "step_time_s": self.step_time_s,
            "energy_j": self.energy_j,
            "energy_by_component": dict(self.energy_by_component),
            "utilisation": dict(self.utilisation),
            "n_events": self.n_events,
            "optical_passes": self.optical_passes,
            "intervals": [dataclasses.asdict(interval) for interval in self.intervals],
        }


class StepModel:
    """Resources and stage processes of one training step on one SimPy environment.

    Each stage method returns a generator to pass to ``env.process``. The stage
    acquires its resources, records its ``BusyInterval`` and updates the operation
    counts from which ``report`` computes the energy.
    """

    def __init__(
        self,
        env: simpy.Environment,
        timing: TimingConfig,
        shape: StepShape,
        on_pass: PassCallback | None = None,
    ) -> None:
        self.env = env
        self.timing = timing
        self.shape = shape
        self.on_pass = on_pass
        self._order = resource_names(shape.n_layers)
        self._resources = {
            name: simpy.Resource(env, capacity=1) for name in self._order
        }
        self._rank = {name: rank for rank, name in enumerate(self._order)}
        self._intervals: list[BusyInterval] = []
        self._counts = _Counts()
        self.end_ps: int | None = None

    @property
    def resources(self) -> Mapping[str, simpy.Resource]:
        """The SimPy resources by name, in acquisition order."""
        return MappingProxyType(self._resources)

    @property
    def intervals(self) -> tuple[BusyInterval, ...]:
        """Busy intervals recorded so far, in order of completion."""
        return tuple(self._intervals)

    def occupy(
        self,
        resources: Iterable[str],
        activity: str,
        layer: int | None,
        duration_ps: int,
        on_start: Callable[[int], None] | None = None,
    ) -> StageProcess:
        """Hold ``resources`` for ``duration_ps`` and record one interval for each.

        The resources are requested one at a time in acquisition order. The
        activity starts when all are held. ``on_start(time_ps)`` runs at that time,
        before the holding time elapses.
        """
        names = sorted(resources, key=self._rank.__getitem__)
        with contextlib.ExitStack() as held:
            for name in names:
                yield held.enter_context(self._resources[name].request())

            start_ps = self.env.now
            if on_start is not None:
                on_start(start_ps)
            yield self.env.timeout(duration_ps)

            end_ps = self.env.now
            for name in names:
                self._intervals.append(
                    BusyInterval(name, activity, layer, start_ps, end_ps)
                )

    def program_layer(self, layer: int) -> StageProcess:
        """Write layer ``layer``'s phases through the phase DAC, then let its mesh settle."""
        self._counts.programmed_shifters += self.shape.phases_per_layer
        yield from self.occupy(
            [PHASE_DAC], "program", layer, self.timing.phase_dac_write_ps
        )
        yield from self.occupy(
            [mesh_resource(layer)], "settle", layer, self.timing.settle_time_ps
        )

    def optical_pass(self, kind: str, layer: int) -> StageProcess:
        """Send one batch of ``kind`` light through mesh ``layer``.

        The modulators drive one symbol per sample, so the pass lasts
        batch x symbol period + transit time. ``on_pass`` runs at its start.
        """
        if kind not in PASS_KINDS:
            raise ValueError(f"pass kind must be one of {PASS_KINDS}, got {kind!r}")

        duration_ps = (
            self.shape.batch_size * self.timing.symbol_period_ps
            + self.timing.transit_time_ps
        )
        self._counts.optical_passes += 1
        self._counts.modulator_symbols += self.shape.batch_size * self.shape.n_modes

        def start_pass(time_ps: int) -> None:
            logger.debug("%s pass of layer %d starts at %d ps", kind, layer, time_ps)
            if self.on_pass is not None:
                self.on_pass(kind, layer, time_ps)

        yield from self.occupy(
            [MODULATORS, mesh_resource(layer)], kind, layer, duration_ps, start_pass
        )

    def read_monitors(self, layer: int) -> StageProcess:
        """Read the monitor power of every phase shifter of ``layer`` into the controller.

        NOTE: the readout time is ``monitor_readout_ps`` whatever the batch size,
        as for per-shifter ADCs that sample during the pass and are read out
        afterwards. The ADC energy counts one conversion per shifter and sample.
        """
        self._counts.monitor_conversions += (
            self.shape.batch_size * self.shape.phases_per_layer
        )
        yield from self.occupy(
            [MONITORS], "monitor-readout", layer, self.timing.monitor_readout_ps
        )

    def detect(self, activity: str, layer: int) -> StageProcess:
        """Detect the field of every mode and sample coherently (two ADC conversions)."""
        self._counts.detector_conversions += (
            self.shape.batch_size * self.shape.n_modes * COHERENT_QUADRATURES
        )
        duration_ps = self.shape.batch_size * self.timing.detector_integration_ps
        yield from self.occupy([DETECTORS], activity, layer, duration_ps)

    def compute(self, activity: str, layer: int | None, n_ops: int) -> StageProcess:
        """Run ``n_ops`` floating-point operations on the controller."""
        self._counts.digital_ops += n_ops
        duration_ps = n_ops * self.timing.digital_op_ps
        yield from self.occupy([CONTROLLER], activity, layer, duration_ps)

    def forward_layer(self, layer: int) -> StageProcess:
        """Run the forward pass of ``layer`` and apply the activation."""
        per_mode_ops = self.shape.batch_size * self.shape.n_modes

        yield from self.optical_pass("forward", layer)
        yield from self.read_monitors(layer)
        yield from self.detect("output-detection", layer)
        yield from self.compute(
            "activation", layer, per_mode_ops * self.timing.ops_per_activation
        )

    def backward_layer(self, layer: int) -> StageProcess:
        """Measure the phase gradient of ``layer`` with an adjoint and an interference pass."""
        per_mode_ops = self.shape.batch_size * self.shape.n_modes
        per_phase_ops = self.shape.batch_size * self.shape.phases_per_layer

        yield from self.compute(
            "adjoint-input", layer, per_mode_ops * self.timing.ops_per_activation
        )
        yield from self.optical_pass("adjoint", layer)
        yield from self.read_monitors(layer)
        yield from self.detect("adjoint-detection", layer)

        yield from self.compute(
            "interference-input",
            layer,
            per_mode_ops * self.timing.ops_per_interference_input,
        )
        yield from self.optical_pass("interference", layer)
        yield from self.read_monitors(layer)
        yield from self.compute(
            "gradient", layer, per_phase_ops * self.timing.ops_per_gradient_term
        )

    def update(self) -> StageProcess:
        """Compute the optimizer step, then program and settle every layer in turn."""
        yield from self.compute(
            "optimizer",
            None,
            self.shape.n_phases * self.timing.ops_per_phase_update,
        )
        for layer in range(self.shape.n_layers):
            yield from self.program_layer(layer)

    def training_step(self) -> StageProcess:
        """Run forward, backward and update one after another, then set ``end_ps``."""
        env = self.env
        for layer in range(self.shape.n_layers):
            yield env.process(self.forward_layer(layer))
        for layer in reversed(range(self.shape.n_layers)):
            yield env.process(self.backward_layer(layer))
        yield env.process(self.update())
        self.end_ps = env.now

    def energy_by_component(self, step_time_ps: int) -> dict[str, float]:
        """Return the energy of each component, J, for a step of ``step_time_ps``.

        Counted energies come from the operation counts so far. The heaters hold
        every shifter for the whole step.

        NOTE: the laser emits for the whole step, as a CW source kept on for
        wavelength stability. Gating it to the optical passes is not modelled.
        """
        timing = self.timing
        counts = self._counts
        step_time_s = step_time_ps / PS_PER_S
        return {
            "laser": timing.laser_electrical_power_w * step_time_s,
            "modulators": counts.modulator_symbols * timing.modulator_energy_j,
            "detector_adc": counts.detector_conversions * timing.adc_energy_j,
            "monitor_adc": counts.monitor_conversions * timing.adc_energy_j,
            "phase_programming": counts.programmed_shifters
            * timing.phase_program_energy_j,
            "heater_holding": timing.heater_power_w * self.shape.n_phases * step_time_s,
            "controller": counts.digital_ops * timing.digital_energy_per_op_j,
        }

    def report(self, n_events: int) -> StepReport:
        """Build the report of a finished ``training_step``.

        Raises:
            RuntimeError: if ``training_step`` has not finished.
        """
        if self.end_ps is None:
            raise RuntimeError(
                "training_step has not finished. Run the environment until it ends."
            )

        step_time_ps = self.end_ps
        energies = self.energy_by_component(step_time_ps)
        intervals = tuple(
            sorted(
                self._intervals,
                key=lambda interval: (interval.start_ps, self._rank[interval.resource]),
            )
        )

        utilisation = {}
        for name in self._order:
            busy_ps = sum(i.duration_ps for i in intervals if i.resource == name)
            utilisation[name] = busy_ps / step_time_ps

        return StepReport(
            step_time_ps=step_time_ps,
            energy_j=sum(energies.values()),
            energy_by_component=energies,
            intervals=intervals,
            utilisation=utilisation,
            n_events=n_events,
            optical_passes=self._counts.optical_passes,
        )


def simulate_training_step(
    timing: TimingConfig,
    n_layers: int,
    n_modes: int,
    batch_size: int,
    phases_per_layer: int,
    on_pass: PassCallback | None = None,
) -> StepReport:
    """Simulate one sequential training step and return its time and energy.

    ``on_pass(kind, layer, time_ps)`` is called at the simulated start of each
    optical pass, in the order forward 0..L-1, then adjoint l and interference l
    for l = L-1..0. An exception raised by ``on_pass`` stops the simulation, and SimPy
    re-raises it as a new exception of the same type whose ``__cause__`` is the
    original.

    Raises:
        TypeError: if ``timing`` is not a ``TimingConfig`` or ``on_pass`` is not
            callable.
        ValueError: if ``n_layers``, ``n_modes``, ``batch_size`` or
            ``phases_per_layer`` is not a positive integer.
    """
    if not isinstance(timing, TimingConfig):
        raise TypeError(f"timing must be a TimingConfig, got {type(timing).__name__}")
    if on_pass is not None and not callable(on_pass):
        raise TypeError(f"on_pass must be callable or None, got {on_pass!r}")
    shape = StepShape(
        n_layers=n_layers,
        n_modes=n_modes,
        batch_size=batch_size,
        phases_per_layer=phases_per_layer,
    )

    env = simpy.Environment(initial_time=0)
    model = StepModel(env, timing, shape, on_pass)
    env.process(model.training_step())

    # Step the environment by hand to count the processed events.
    n_events = 0
    while env.peek() != Infinity:
        env.step()
        n_events += 1

    report = model.report(n_events)
    logger.debug(
        "training step: %d ps, %.3e J, %d events",
        report.step_time_ps,
        report.energy_j,
        report.n_events,
    )
    return report
