"""Two hardware architectures, and the machine that runs a step program on either.

- ``"time-multiplexed"``: one mesh serves every layer, as on the chip of Pai et al.,
  Science 380, 398 (2023). Before a pass of layer l the mesh is loaded with layer l's
  phases (DAC write, then settling) unless it already holds them. Loading another layer
  changes phases by up to 2π; reloading the same layer after an optimizer step changes
  them by the update change of ``ScheduleSettings``. The phase update itself writes
  nothing: the next load of the layer writes its new phases.
- ``"pipelined"``: one mesh per layer, each with its own modulators, phase DAC,
  detectors and monitors. A pass fed by a pass on another mesh streams: its first sample
  enters ``stream_lag_ps`` after the feed's first sample did, so passes of consecutive
  layers overlap and the samples of a batch are pipelined across the layers. Each mesh
  is written once per step, with its update, and a layer's update overlaps the backward
  passes of the layers below it.

Resources (capacity 1 unless stated), in acquisition order:

- time-multiplexed: ``phase-dac``, ``modulators``, ``mesh``, ``monitors``, ``detectors``,
  ``controller`` (capacity: controller cores);
- pipelined: ``phase-dac-l``, ``modulators-l``, ``mesh-l``, ``monitors-l``,
  ``detectors-l`` for l = 1..L, then ``controller``.

A pass holds the modulators, the mesh, the detectors if it detects, and a camera that
exposes during it, for batch × sample period + transit time. The sample period is the
slowest of the modulator symbol period, the detector sample period (if it detects) and
the camera frame readout (if the camera takes a frame per sample), plus the exposure for
such a camera. A write holds the phase DAC and the mesh, and the settling after it holds
the mesh.

Order of ``on_pass(kind, layer, time_ps)`` calls: at the start of every pass, in order of
start time; passes that start at the same picosecond are called in the order their
meshes' sequencer processes reach them. On the time-multiplexed architecture this is the
program order of the method. On the pipelined architecture the calls interleave layers:
for in situ backpropagation, forward 0..L−1, then adjoint L−1, adjoint L−2, ... as they
stream, with the interference pass of layer l after the adjoint pass of layer l but
possibly after the adjoint passes of lower layers too. Every pass is called after the
passes whose outputs it uses.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import simpy

from simulator.components import CameraMonitors, SystemConfig
from simulator.engine import Activity, PassRecord, Scheduler
from simulator.methods import ScheduleShape, Task
from simulator.settling import FULL_PHASE_RANGE_RAD, settle_time_ps

__all__ = [
    "ARCHITECTURES",
    "Machine",
    "ResourceLayout",
    "ScheduleSettings",
    "stream_lag_ps",
]

logger = logging.getLogger(__name__)

ARCHITECTURES = ("time-multiplexed", "pipelined")

PassCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ScheduleSettings:
    """Settings of a schedule that are not properties of a component.

    Raises:
        ValueError: if a value is not a positive finite number.
    """

    settle_tolerance_rad: float = 0.01
    """Residual phase error at which a shifter counts as settled, rad. Estimate: about
    half a step of an 8-bit phase DAC (2π/256 = 0.025 rad)."""

    update_change_rad: float = 0.1
    """Largest phase change of one optimizer update, rad, which sets the settling after
    an update write. Estimate for SGD with a learning rate of order 0.1."""

    fd_step_rad: float = 0.1
    """Finite-difference step h, rad. It must exceed the phase DAC step, or +h and −h
    round to the same setting."""

    def __post_init__(self) -> None:
        for name in ("settle_tolerance_rad", "update_change_rad", "fd_step_rad"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(
                    f"{name} must be a positive finite number, got {value!r}"
                )
            object.__setattr__(self, name, float(value))


class ResourceLayout:
    """Resource names of an architecture for a number of layers.

    Raises:
        ValueError: for an unknown architecture.
    """

    def __init__(self, architecture: str, n_layers: int, controller_cores: int) -> None:
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}, got {architecture!r}"
            )
        self.architecture = architecture
        self.n_layers = n_layers
        self.controller_cores = controller_cores

    @property
    def pipelined(self) -> bool:
        """Whether every layer has its own mesh."""
        return self.architecture == "pipelined"

    @property
    def n_meshes(self) -> int:
        """Meshes in the system."""
        return self.n_layers if self.pipelined else 1

    def _name(self, base: str, layer: int) -> str:
        return f"{base}-{layer + 1}" if self.pipelined else base

    def mesh(self, layer: int) -> str:
        """Return the mesh that applies ``layer``'s phases."""
        return self._name("mesh", layer)

    def phase_dac(self, layer: int) -> str:
        """Return the phase DAC that writes ``layer``'s mesh."""
        return self._name("phase-dac", layer)

    def modulators(self, layer: int) -> str:
        """Return the modulators of ``layer``'s mesh."""
        return self._name("modulators", layer)

    def detectors(self, layer: int) -> str:
        """Return the detectors of ``layer``'s mesh."""
        return self._name("detectors", layer)

    def monitors(self, layer: int) -> str:
        """Return the monitors of ``layer``'s mesh."""
        return self._name("monitors", layer)

    def capacities(self) -> dict[str, int]:
        """Return every resource with its capacity, in acquisition order."""
        layers = range(self.n_meshes)
        names: list[str] = []
        for base in ("phase-dac", "modulators", "mesh", "monitors", "detectors"):
            names += [self._name(base, layer) for layer in layers]
        capacities = {name: 1 for name in names}
        capacities["controller"] = self.controller_cores
        return capacities


def stream_lag_ps(system: SystemConfig) -> int:
    """Return the delay from a feed's first sample entering its mesh to the first sample
    of the pass it feeds, ps: transit, detection, front end and modulation latencies."""
    return (
        system.transit_time_ps
        + system.detectors.latency_ps
        + system.controller.stream_latency_ps
        + system.modulators.latency_ps
    )


@dataclass(frozen=True)
class _Load:
    """A write of all of a layer's phases that the time-multiplexed mapping inserts."""

    layer: int
    step: int
    phase: str
    change_rad: float
    deps: tuple[int, ...]


class Machine:
    """Runs step programs on one architecture and records what every resource did.

    Args:
        env: SimPy environment with the clock at 0.
        system: the components.
        architecture: "time-multiplexed" or "pipelined".
        shape: network and batch size.
        settings: settling tolerance, update change and finite-difference step.
        on_pass: called as ``on_pass(kind, layer, time_ps)`` at the start of every pass.
    """

    def __init__(
        self,
        env: simpy.Environment,
        system: SystemConfig,
        architecture: str,
        shape: ScheduleShape,
        settings: ScheduleSettings,
        on_pass: PassCallback | None = None,
    ) -> None:
        self.env = env
        self.system = system
        self.shape = shape
        self.settings = settings
        self.on_pass = on_pass
        self.layout = ResourceLayout(
            architecture, shape.n_layers, system.controller.cores
        )
        self.scheduler = Scheduler(env, self.layout.capacities())
        self.passes: list[PassRecord] = []
        self._done: dict[int, simpy.Event] = {}
        self._started: dict[int, simpy.Event] = {}
        self._activity: dict[int, Activity | None] = {}
        # Mesh name to (end of its last write, largest change of that write).
        self._last_write: dict[str, tuple[int, float]] = {}

    def static_power_w(self) -> dict[str, float]:
        """Return the power drawn for the whole schedule, W, by energy component."""
        meshes = self.layout.n_meshes
        power = {
            "laser": meshes * self.system.laser.electrical_power_w,
            "heater_holding": meshes
            * self.shape.phases_per_layer
            * self.system.phase_shifters.holding_power_w,
        }
        if isinstance(self.system.monitors, CameraMonitors):
            power["monitor_readout"] = meshes * self.system.monitors.power_w
        return power

    def start(self, tasks: Sequence[Task]) -> None:
        """Map ``tasks`` (program order, any number of steps) and start their processes.

        Raises:
            ValueError: if a task depends on a task that is not in ``tasks`` or comes
                after it.
        """
        known: set[int] = set()
        for task in tasks:
            missing = [
                dep
                for dep in (*task.deps, task.feed)
                if dep is not None and dep not in known
            ]
            if missing:
                raise ValueError(
                    f"task {task.id} ({task.name}) depends on task {missing[0]}, which "
                    "does not come before it"
                )
            known.add(task.id)
            self._done[task.id] = self.env.event()
            if task.kind == "pass":
                self._started[task.id] = self.env.event()

        sequences = self._mesh_sequences(tasks)
        for mesh in self.scheduler.capacities:
            if mesh in sequences:
                self.env.process(self._run_mesh(mesh, sequences[mesh]))
        for task in tasks:
            if task.kind in ("compute", "readout"):
                self.env.process(self._run_task(task))

    def _mesh_sequences(self, tasks: Sequence[Task]) -> dict[str, list[Task | _Load]]:
        sequences: dict[str, list[Task | _Load]] = {}
        if self.layout.pipelined:
            for task in tasks:
                if task.kind in ("pass", "perturb", "update"):
                    sequences.setdefault(self.layout.mesh(task.layer), []).append(task)
            return sequences

        # Time-multiplexed: one sequence, with a load wherever the mesh does not hold the
        # current phases of the layer a task needs. At time 0 the mesh holds the phases
        # that the last mesh task of a step leaves, from before the first update, so
        # every step of a run is alike.
        mesh_tasks = [task for task in tasks if task.kind in ("pass", "perturb")]
        sequence: list[Task | _Load] = []
        versions = [0] * self.shape.n_layers
        producers: list[tuple[int, ...]] = [()] * self.shape.n_layers
        first_step = tasks[0].step if tasks else 0
        last_of_step = [t for t in mesh_tasks if t.step == first_step][-1:]
        loaded = (last_of_step[0].layer, -1) if last_of_step else None
        for task in tasks:
            if task.kind == "update":
                versions[task.layer] += 1
                producers[task.layer] = task.deps
                continue
            if task.kind not in ("pass", "perturb"):
                continue
            needed = (task.layer, versions[task.layer])
            if loaded != needed:
                same_layer = loaded is not None and loaded[0] == task.layer
                sequence.append(
                    _Load(
                        layer=task.layer,
                        step=task.step,
                        phase="update" if same_layer else task.phase,
                        change_rad=(
                            self.settings.update_change_rad
                            if same_layer
                            else FULL_PHASE_RANGE_RAD
                        ),
                        deps=producers[task.layer],
                    )
                )
                loaded = needed
            sequence.append(task)
        return {self.layout.mesh(0): sequence}

    # Processes

    def _wait_for(
        self, ids: Sequence[int]
    ) -> Generator[simpy.Event, Any, list[Activity | None]]:
        pending = [self._done[i] for i in ids if not self._done[i].processed]
        if pending:
            yield simpy.AllOf(self.env, pending)
        return [self._activity[i] for i in ids]

    def _run_mesh(
        self, mesh: str, sequence: list[Task | _Load]
    ) -> Generator[simpy.Event, Any, None]:
        previous: Activity | None = None
        for item in sequence:
            if isinstance(item, _Load):
                after = yield from self._wait_for(item.deps)
                previous = yield from self._write(
                    item.layer,
                    item.step,
                    "load-write",
                    item.phase,
                    self.shape.phases_per_layer,
                    item.change_rad,
                    [*after, previous],
                )
                continue

            after = yield from self._wait_for(item.deps)
            if item.kind == "pass":
                activity = yield from self._pass(item, [*after, previous])
            else:
                change = item.change_rad
                if change is None:
                    change = self.settings.update_change_rad
                activity = yield from self._write(
                    item.layer,
                    item.step,
                    item.name,
                    item.phase,
                    item.shifters,
                    change,
                    [*after, previous],
                )
            previous = activity
            self._finish(item.id, activity)

    def _run_task(self, task: Task) -> Generator[simpy.Event, Any, None]:
        after = yield from self._wait_for(task.deps)
        latest = max(
            (a for a in after if a is not None),
            key=lambda a: (a.end_ps, a.index),
            default=None,
        )
        activity: Activity | None = latest
        controller = self.system.controller
        if task.kind == "compute" and task.ops > 0:
            activity = yield from self.scheduler.occupy(
                ["controller"],
                task.name,
                controller.compute_time_ps(task.ops),
                phase=task.phase,
                layer=task.layer,
                step=task.step,
                after=after,
                energy_j={"controller": task.ops * controller.energy_per_op_j},
            )
        elif task.kind == "readout":
            readout = yield from self._readout(task, after)
            if readout is not None:
                activity = readout
        self._finish(task.id, activity)

    def _finish(self, task_id: int, activity: Activity | None) -> None:
        self._activity[task_id] = activity
        self._done[task_id].succeed(activity)

    # Stages

    def _write(
        self,
        layer: int,
        step: int,
        name: str,
        phase: str,
        shifters: int,
        change_rad: float,
        after: list[Activity | None],
    ) -> Generator[simpy.Event, Any, Activity]:
        """Write ``shifters`` shifters of ``layer``'s mesh, then let the mesh settle."""
        shifter_config = self.system.phase_shifters
        mesh = self.layout.mesh(layer)
        write = yield from self.scheduler.occupy(
            [self.layout.phase_dac(layer), mesh],
            name,
            shifter_config.write_time_ps(shifters),
            phase=phase,
            layer=layer,
            step=step,
            after=after,
            energy_j={"phase_programming": shifters * shifter_config.program_energy_j},
        )
        self._last_write[mesh] = (write.end_ps, change_rad)

        wait_ps = settle_time_ps(
            shifter_config, change_rad, self.settings.settle_tolerance_rad
        )
        if wait_ps == 0:
            return write
        settle = yield from self.scheduler.occupy(
            [mesh],
            "settle",
            wait_ps,
            phase=phase,
            layer=layer,
            step=step,
            after=[write],
        )
        return settle

    def _burst_ps(self, task: Task) -> int:
        system = self.system
        per_sample = system.modulators.symbol_period_ps
        if task.detects:
            per_sample = max(per_sample, system.detectors.sample_period_ps)
        camera = (
            system.monitors if isinstance(system.monitors, CameraMonitors) else None
        )
        if camera is not None and task.monitors and camera.frame_per_sample:
            per_sample = max(per_sample, camera.frame_readout_ps) + camera.exposure_ps
        burst = self.shape.batch_size * per_sample
        if camera is not None and task.monitors and not camera.frame_per_sample:
            burst = max(burst, camera.exposure_ps)
        return burst + system.transit_time_ps

    def _pass(
        self, task: Task, after: list[Activity | None]
    ) -> Generator[simpy.Event, Any, Activity]:
        system, layout = self.system, self.layout
        layer = task.layer
        resources = [layout.modulators(layer), layout.mesh(layer)]
        if task.detects:
            resources.append(layout.detectors(layer))
        if isinstance(system.monitors, CameraMonitors) and task.monitors:
            resources.append(layout.monitors(layer))

        min_end_ps = None
        cause = None
        if task.feed is not None:
            # Stream from the feed: wait for its start, then for the lag of its first
            # sample through detection, the front end and modulation. Its last sample
            # leaves this mesh no earlier than the same lag after the feed's last.
            feed_index, feed_start, feed_end = yield self._started[task.feed]
            lag_ps = stream_lag_ps(system)
            wait_ps = feed_start + lag_ps - self.env.now
            if wait_ps > 0:
                yield self.env.timeout(wait_ps)
                cause = feed_index
            min_end_ps = feed_end + lag_ps

        elements = self.shape.batch_size * self.shape.n_modes
        energy = {
            "modulators": elements * system.modulators.modulator_energy_j,
            "input_dacs": elements * system.modulators.dac_energy_j,
        }
        if task.detects:
            energy["detector_adcs"] = (
                elements * system.detectors.quadratures * system.detectors.adc_energy_j
            )
        streamed_ops = (task.feed_ops + task.output_ops) * elements
        if streamed_ops:
            energy["controller"] = streamed_ops * system.controller.energy_per_op_j

        def on_start(index: int, start_ps: int, end_ps: int) -> None:
            self._record_pass(task, start_ps, end_ps)
            self._started[task.id].succeed((index, start_ps, end_ps))

        activity = yield from self.scheduler.occupy(
            resources,
            task.name,
            self._burst_ps(task),
            phase=task.phase,
            layer=layer,
            step=task.step,
            after=after,
            energy_j=energy,
            min_end_ps=min_end_ps,
            cause=cause,
            on_start=on_start,
        )
        return activity

    def _record_pass(self, task: Task, start_ps: int, end_ps: int) -> None:
        mesh = self.layout.mesh(task.layer)
        written = self._last_write.get(mesh)
        since_write_ps, change, residual = None, 0.0, 0.0
        if written is not None:
            since_write_ps = start_ps - written[0]
            change = written[1]
            tau_ps = self.system.phase_shifters.settle_time_constant_ps
            residual = change * math.exp(-since_write_ps / tau_ps)
        self.passes.append(
            PassRecord(
                kind=task.name,
                layer=task.layer,
                step=task.step,
                mesh=mesh,
                start_ps=start_ps,
                end_ps=end_ps,
                since_write_ps=since_write_ps,
                write_change_rad=change,
                residual_rad=residual,
            )
        )
        logger.debug(
            "%s pass of layer %d starts at %d ps", task.name, task.layer, start_ps
        )
        if self.on_pass is not None:
            self.on_pass(task.name, task.layer, start_ps)

    def _readout(
        self, task: Task, after: list[Activity | None]
    ) -> Generator[simpy.Event, Any, Activity | None]:
        monitors = self.system.monitors
        phases = self.shape.phases_per_layer
        if isinstance(monitors, CameraMonitors):
            if monitors.frame_per_sample:
                # Frames were read out during the pass, one per sample.
                return None
            duration_ps, energy = monitors.frame_readout_ps, {}
        else:
            duration_ps = monitors.readout_ps(phases)
            energy = {"monitor_readout": phases * monitors.adc_energy_j}
        activity = yield from self.scheduler.occupy(
            [self.layout.monitors(task.layer)],
            task.name,
            duration_ps,
            phase=task.phase,
            layer=task.layer,
            step=task.step,
            after=after,
            energy_j=energy,
        )
        return activity
