"""Analyses of a trace: utilisation, bottleneck, critical path and energy by phase.

The critical path runs back from the activity that ends last, from each activity to its
cause (the activity whose end, or for a streamed pass whose start, let it begin), until
an activity without a cause. It covers the whole makespan: the time an activity waited
after its cause ended is a "wait" segment. Its segments, summed by activity name, are the
latency breakdown of the schedule.

Energy by phase: counted energies (conversions, writes, operations) go to the phase of
the activity that spent them. Energies drawn as power over the whole makespan (laser,
heater holding, camera) go to each phase in proportion to that phase's time on the
critical path.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from simulator.engine import Activity, Trace

__all__ = [
    "PathSegment",
    "bottleneck",
    "critical_path",
    "energy_by_phase",
    "latency_breakdown",
    "utilisation",
    "write_energy_csv",
]

PS_PER_S = 10**12

WAIT = "wait"


@dataclass(frozen=True)
class PathSegment:
    """A span of the critical path: part of one activity, or a wait before one.

    ``activity`` is the index of the activity, or None for a wait. A wait carries the
    name "wait" and the phase of the activity that waited.
    """

    name: str
    phase: str
    layer: int | None
    start_ps: int
    end_ps: int
    activity: int | None

    @property
    def duration_ps(self) -> int:
        """Length of the segment, ps."""
        return self.end_ps - self.start_ps


def utilisation(trace: Trace) -> dict[str, float]:
    """Return every resource's busy time over capacity × makespan, in [0, 1].

    Resources are listed in acquisition order. An empty trace gives 0 for all.
    """
    result = {}
    for resource, capacity in trace.capacities.items():
        available_ps = capacity * trace.makespan_ps
        busy_ps = trace.busy_time_ps(resource)
        result[resource] = busy_ps / available_ps if available_ps else 0.0
    return result


def bottleneck(trace: Trace) -> tuple[str, float]:
    """Return the most utilised resource and its utilisation.

    Ties go to the resource that comes first in acquisition order.

    Raises:
        ValueError: if the trace has no resources.
    """
    loads = utilisation(trace)
    if not loads:
        raise ValueError("the trace has no resources")
    name = max(loads, key=lambda resource: loads[resource])
    return name, loads[name]


def critical_path(trace: Trace) -> list[PathSegment]:
    """Return the critical path of ``trace`` from time 0 to the makespan.

    The segments are in time order, contiguous, and their durations sum to the
    makespan. An empty trace gives an empty path.
    """
    if not trace.activities:
        return []
    by_index = {activity.index: activity for activity in trace.activities}
    node: Activity | None = max(
        trace.activities, key=lambda activity: (activity.end_ps, activity.index)
    )
    time_ps = node.end_ps
    waiter = node
    segments: list[PathSegment] = []
    while node is not None:
        end_ps = min(time_ps, node.end_ps)
        if time_ps > node.end_ps:
            segments.append(
                PathSegment(
                    WAIT, waiter.phase, waiter.layer, node.end_ps, time_ps, None
                )
            )
        segments.append(
            PathSegment(
                node.name, node.phase, node.layer, node.start_ps, end_ps, node.index
            )
        )
        time_ps = node.start_ps
        waiter = node
        node = by_index.get(node.cause) if node.cause is not None else None
    if time_ps > 0:
        segments.append(PathSegment(WAIT, waiter.phase, waiter.layer, 0, time_ps, None))
    segments.reverse()
    return segments


def latency_breakdown(trace: Trace) -> dict[str, int]:
    """Return the critical-path time of every activity name, ps, largest first.

    The values sum to the makespan.
    """
    totals: dict[str, int] = {}
    for segment in critical_path(trace):
        totals[segment.name] = totals.get(segment.name, 0) + segment.duration_ps
    return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))


def energy_by_phase(trace: Trace) -> dict[tuple[str, str], float]:
    """Return the energy of every (component, phase) pair, J, over the whole trace.

    Counted energies go to the phase of their activity; power drawn for the whole
    makespan goes to phases by their time on the critical path. The values sum to the
    energy of the trace.
    """
    table: dict[tuple[str, str], float] = {}
    for activity in trace.activities:
        for component, energy in activity.energy_j.items():
            key = (component, activity.phase)
            table[key] = table.get(key, 0.0) + energy

    phase_time_ps: dict[str, int] = {}
    for segment in critical_path(trace):
        phase_time_ps[segment.phase] = (
            phase_time_ps.get(segment.phase, 0) + segment.duration_ps
        )
    for component, power in trace.static_power_w.items():
        for phase, time_ps in phase_time_ps.items():
            key = (component, phase)
            table[key] = table.get(key, 0.0) + power * time_ps / PS_PER_S
    return table


def write_energy_csv(
    tables: Mapping[str, Mapping[tuple[str, str], float]],
    path: str | PathLike[str],
    n_steps: Mapping[str, int] | None = None,
) -> Path:
    """Write energy tables as CSV rows (label, component, phase, energy_j) and return
    the path.

    ``tables`` maps a label (e.g. "in-situ/pipelined") to the output of
    ``energy_by_phase``. With ``n_steps`` the energies are divided by the steps of each
    label, so every row is per training step.
    """
    output = Path(path)
    with output.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "component", "phase", "energy_per_step_j"])
        for label, table in tables.items():
            steps = 1 if n_steps is None else n_steps[label]
            for (component, phase), energy in sorted(table.items()):
                writer.writerow([label, component, phase, repr(energy / steps)])
    return output
