"""SimPy timing and energy model of in situ backpropagation on MZI-mesh hardware.

``simulate_training_step`` runs one training step on an integer picosecond clock
and returns a ``StepReport`` with the step time, energy per component, the busy
intervals of every resource and their utilisation. ``TimingConfig`` contains the
durations and energies, with named presets in ``TIMING_PRESETS``.
"""

from simulator.plot import plot_energy_breakdown, plot_timeline
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
    "COHERENT_QUADRATURES",
    "PASS_KINDS",
    "TIMING_PRESETS",
    "BusyInterval",
    "PassCallback",
    "StepModel",
    "StepReport",
    "StepShape",
    "TimingConfig",
    "mesh_resource",
    "plot_energy_breakdown",
    "plot_timeline",
    "resource_names",
    "simulate_training_step",
    "timing_preset",
]
