"""SimPy timing and energy model of photonic hardware training a network in situ.

Two layers of API:

- ``simulate_training_step`` runs one sequential in situ training step with the flat
  ``TimingConfig`` and returns a ``StepReport``; the trainer in ``experiments.train``
  uses it.
- ``simulate_schedule`` runs training steps of any gradient method (``METHODS``) on
  either architecture (``ARCHITECTURES``) with components from ``SystemConfig`` (named
  presets in ``SYSTEM_PRESETS``) and returns a ``ScheduleResult`` whose ``Trace``
  ``simulator.analysis`` and ``simulator.plot`` turn into utilisation, the bottleneck,
  the critical path, energy by phase and plots. ``simulator.fidelity`` gives the
  gradient error of each method from the physics model, and ``settling_residual`` the
  phase error of a shifter that has not settled.

The clock is an integer count of picoseconds in both.
"""

from simulator.analysis import (
    bottleneck,
    critical_path,
    energy_by_phase,
    latency_breakdown,
    utilisation,
)
from simulator.architecture import ARCHITECTURES, ScheduleSettings
from simulator.components import SYSTEM_PRESETS, SystemConfig, system_preset
from simulator.engine import Activity, PassRecord, Scheduler, Trace
from simulator.methods import METHODS, ScheduleShape, pass_count
from simulator.plot import (
    plot_batch_sweep,
    plot_energy_breakdown,
    plot_energy_by_phase,
    plot_timeline,
    plot_trace_timeline,
)
from simulator.scheduling import ScheduleResult, simulate_schedule, sweep_batch_sizes
from simulator.settling import settle_time_ps, settling_residual
from simulator.step import (
    COHERENT_QUADRATURES,
    PASS_KINDS,
    BusyInterval,
    PassCallback,
    StepModel,
    StepReport,
    StepShape,
    mesh_resource,
    resource_names,
    simulate_training_step,
)
from simulator.timing import TIMING_PRESETS, TimingConfig, timing_preset

__all__ = [
    "ARCHITECTURES",
    "COHERENT_QUADRATURES",
    "METHODS",
    "PASS_KINDS",
    "SYSTEM_PRESETS",
    "TIMING_PRESETS",
    "Activity",
    "BusyInterval",
    "PassCallback",
    "PassRecord",
    "ScheduleResult",
    "ScheduleSettings",
    "ScheduleShape",
    "Scheduler",
    "StepModel",
    "StepReport",
    "StepShape",
    "SystemConfig",
    "TimingConfig",
    "Trace",
    "bottleneck",
    "critical_path",
    "energy_by_phase",
    "latency_breakdown",
    "mesh_resource",
    "pass_count",
    "plot_batch_sweep",
    "plot_energy_breakdown",
    "plot_energy_by_phase",
    "plot_timeline",
    "plot_trace_timeline",
    "resource_names",
    "settle_time_ps",
    "settling_residual",
    "simulate_schedule",
    "simulate_training_step",
    "sweep_batch_sizes",
    "system_preset",
    "timing_preset",
    "utilisation",
]
