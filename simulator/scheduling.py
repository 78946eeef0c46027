"""Simulate training steps of one method on one architecture, and sweep the batch size.

``simulate_schedule`` builds the step programs of ``n_steps`` consecutive training steps
(``simulator.methods``), runs them on the machine of the architecture
(``simulator.architecture``) and returns a ``ScheduleResult``: the trace of every busy
interval, the time and energy per step, the throughput and the energy per sample.

All steps of a run are alike: the time-multiplexed mesh starts out holding the phases that
a step leaves it with, and the pipelined meshes start out programmed and settled. So the
step time is the makespan over ``n_steps``; more steps show how consecutive steps overlap
in the timeline without changing the step time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy

from simulator.architecture import Machine, ScheduleSettings
from simulator.components import SystemConfig
from simulator.engine import Trace, run_counting_events
from simulator.methods import (
    PassCount,
    ScheduleShape,
    Task,
    build_step_program,
    pass_count,
)

__all__ = ["ScheduleResult", "simulate_schedule", "sweep_batch_sizes"]

logger = logging.getLogger(__name__)

PS_PER_S = 10**12

PassCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ScheduleResult:
    """Time and energy of ``n_steps`` training steps of one method on one architecture.

    Attributes:
        method: gradient method.
        architecture: hardware architecture.
        system: name of the system config.
        shape: network and batch size.
        n_steps: steps simulated.
        trace: every activity, pass and resource capacity.
        counts: optical passes of one gradient.
        energy_by_component_j: energy of all steps, J, by component; time-based
            components (laser, heater holding, camera) are power × makespan.
    """

    method: str
    architecture: str
    system: str
    shape: ScheduleShape
    n_steps: int
    trace: Trace = field(repr=False)
    counts: PassCount
    energy_by_component_j: dict[str, float]

    @property
    def step_time_s(self) -> float:
        """Time per training step, s: the makespan over the number of steps."""
        return self.trace.makespan_ps / self.n_steps / PS_PER_S

    @property
    def energy_per_step_j(self) -> float:
        """Energy per training step, J."""
        return sum(self.energy_by_component_j.values()) / self.n_steps

    @property
    def throughput_samples_per_s(self) -> float:
        """Training samples per second: batch size over step time."""
        return self.shape.batch_size / self.step_time_s

    @property
    def energy_per_sample_j(self) -> float:
        """Energy per training sample, J."""
        return self.energy_per_step_j / self.shape.batch_size

    @property
    def mesh_passes_per_step(self) -> int:
        """Bursts through a mesh per step, counted in the trace."""
        return len(self.trace.passes) // self.n_steps

    def summary(self) -> dict[str, Any]:
        """Return the headline figures as JSON-ready values."""
        return {
            "method": self.method,
            "architecture": self.architecture,
            "system": self.system,
            "n_modes": self.shape.n_modes,
            "n_layers": self.shape.n_layers,
            "batch_size": self.shape.batch_size,
            "n_steps": self.n_steps,
            "optical_passes_per_gradient": self.counts.optical_passes,
            "mesh_passes_per_step": self.mesh_passes_per_step,
            "step_time_s": self.step_time_s,
            "energy_per_step_j": self.energy_per_step_j,
            "throughput_samples_per_s": self.throughput_samples_per_s,
            "energy_per_sample_j": self.energy_per_sample_j,
            "energy_by_component_j": {
                name: energy / self.n_steps
                for name, energy in self.energy_by_component_j.items()
            },
            "n_events": self.trace.n_events,
            "trace_sha256": self.trace.digest(),
        }


def step_programs(
    method: str,
    system: SystemConfig,
    shape: ScheduleShape,
    settings: ScheduleSettings,
    n_steps: int,
) -> list[Task]:
    """Return the tasks of ``n_steps`` consecutive steps in program order."""
    tasks: list[Task] = []
    for step in range(n_steps):
        tasks += build_step_program(
            method, system, shape, step, len(tasks), settings.fd_step_rad
        )
    return tasks


def simulate_schedule(
    system: SystemConfig,
    architecture: str,
    method: str,
    shape: ScheduleShape,
    settings: ScheduleSettings | None = None,
    n_steps: int = 1,
    on_pass: PassCallback | None = None,
) -> ScheduleResult:
    """Simulate ``n_steps`` training steps and return their trace, time and energy.

    ``on_pass(kind, layer, time_ps)`` is called at the start of every optical pass; see
    ``simulator.architecture`` for the order of the calls. An exception it raises stops
    the simulation and propagates.

    Raises:
        TypeError: if ``system`` is not a ``SystemConfig``.
        ValueError: for an unknown architecture or method, or ``n_steps`` < 1.
    """
    if not isinstance(system, SystemConfig):
        raise TypeError(f"system must be a SystemConfig, got {type(system).__name__}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    settings = ScheduleSettings() if settings is None else settings

    env = simpy.Environment(initial_time=0)
    machine = Machine(env, system, architecture, shape, settings, on_pass)
    counts = pass_count(method, shape)
    machine.start(step_programs(method, system, shape, settings, n_steps))
    n_events = run_counting_events(env)

    activities = machine.scheduler.activities
    makespan_ps = max((activity.end_ps for activity in activities), default=0)
    static_power = machine.static_power_w()
    trace = Trace(
        activities=activities,
        capacities=dict(machine.scheduler.capacities),
        passes=tuple(sorted(machine.passes, key=lambda record: record.start_ps)),
        cancelled=machine.scheduler.cancelled,
        makespan_ps=makespan_ps,
        n_events=n_events,
        static_power_w=static_power,
    )
    energy = _energy_by_component(trace)
    result = ScheduleResult(
        method=method,
        architecture=architecture,
        system=system.name,
        shape=shape,
        n_steps=n_steps,
        trace=trace,
        counts=counts,
        energy_by_component_j=energy,
    )
    logger.debug(
        "%s on %s: %.3e s and %.3e J per step, %d events",
        method,
        architecture,
        result.step_time_s,
        result.energy_per_step_j,
        n_events,
    )
    return result


ENERGY_COMPONENTS = (
    "laser",
    "modulators",
    "input_dacs",
    "detector_adcs",
    "monitor_readout",
    "phase_programming",
    "heater_holding",
    "controller",
)


def _energy_by_component(trace: Trace) -> dict[str, float]:
    energy = dict.fromkeys(ENERGY_COMPONENTS, 0.0)
    for activity in trace.activities:
        for component, value in activity.energy_j.items():
            energy[component] += value
    makespan_s = trace.makespan_ps / PS_PER_S
    for component, power in trace.static_power_w.items():
        energy[component] += power * makespan_s
    return energy


def sweep_batch_sizes(
    system: SystemConfig,
    architecture: str,
    method: str,
    n_modes: int,
    n_layers: int,
    batch_sizes: Sequence[int],
    settings: ScheduleSettings | None = None,
) -> list[ScheduleResult]:
    """Simulate one step at every batch size and return the results in that order.

    Raises:
        ValueError: as ``simulate_schedule``, or for an invalid batch size.
    """
    return [
        simulate_schedule(
            system,
            architecture,
            method,
            ScheduleShape(n_modes=n_modes, n_layers=n_layers, batch_size=batch),
            settings,
        )
        for batch in batch_sizes
    ]
