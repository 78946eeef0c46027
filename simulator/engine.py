"""Discrete-event engine: resources on a SimPy clock, and a tracer of their busy intervals.

The clock (``simpy.Environment.now``) is an integer count of picoseconds from 0. Every
activity holds a set of resources for a duration and is recorded as an ``Activity`` with
the time it became ready, its start and end, the activity that let it start (its cause,
from which the critical path follows) and the energy it cost.

Order of simultaneous events, as implemented by simpy 4.1.2:

- The event queue is ordered by (time, priority, insertion count). Process start-up and
  interrupts are URGENT and run before the NORMAL events of the same picosecond;
  timeouts, resource grants and releases are NORMAL and run in the order they were
  scheduled.
- Resources are ``simpy.PriorityResource`` objects. A request is granted at once when a
  unit is free. Waiting requests are granted in order of (training step, request time,
  request order): a request of an earlier step goes first, and among requests of one
  step the earliest request goes first.
- A release frees the unit inside the releasing process's step, so the next waiting
  request starts at exactly the picosecond of the release, with no gap.
- A process interrupted while it waits for a resource withdraws its request (the ``with``
  block cancels it), so the next waiting request gets the unit when the holder releases
  it. The withdrawn request is recorded as a ``CancelledRequest``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy
from simpy.core import Infinity

__all__ = [
    "Activity",
    "BusyInterval",
    "CancelledRequest",
    "PassRecord",
    "Scheduler",
    "Trace",
    "run_counting_events",
]

logger = logging.getLogger(__name__)

PS_PER_S = 10**12


@dataclass(frozen=True)
class BusyInterval:
    """A time span during which one resource was held by one activity.

    ``layer`` is 0-based, or None for an activity that spans all layers.
    """

    resource: str
    activity: str
    layer: int | None
    start_ps: int
    end_ps: int

    @property
    def duration_ps(self) -> int:
        """Length of the interval, ps."""
        return self.end_ps - self.start_ps


@dataclass(frozen=True)
class Activity:
    """One busy span of a set of resources, as recorded by ``Scheduler.occupy``.

    Attributes:
        index: position in start order, 0-based.
        name: what the resources did ("forward", "settle", "gradient", ...).
        phase: the part of the training step it belongs to ("forward", "backward",
            "perturbation", "model", "update").
        layer: 0-based layer, or None for an activity of no single layer.
        step: 0-based training step.
        resources: names of the resources held, in acquisition order.
        ready_ps: time its dependencies were met and it requested its resources.
        start_ps: time it held every resource.
        end_ps: time it released them.
        cause: index of the activity whose end (or, for a streamed pass, whose start)
            let it start, or None for an activity that started at its ready time with
            no predecessor.
        energy_j: energy counted for the activity, J, by component.
        interrupted: True if the activity was interrupted while it held its resources;
            ``end_ps`` is then the time of the interrupt.
    """

    index: int
    name: str
    phase: str
    layer: int | None
    step: int
    resources: tuple[str, ...]
    ready_ps: int
    start_ps: int
    end_ps: int
    cause: int | None
    energy_j: Mapping[str, float] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def duration_ps(self) -> int:
        """Length of the activity, ps."""
        return self.end_ps - self.start_ps

    def to_dict(self) -> dict[str, Any]:
        """Return the activity as JSON-ready values."""
        values = dataclasses.asdict(self)
        values["resources"] = list(self.resources)
        values["energy_j"] = dict(self.energy_j)
        return values


@dataclass(frozen=True)
class CancelledRequest:
    """A request withdrawn because its process was interrupted while it waited."""

    name: str
    step: int
    layer: int | None
    resources: tuple[str, ...]
    ready_ps: int
    cancelled_ps: int


@dataclass(frozen=True)
class PassRecord:
    """One optical pass for the physics model: when it ran and how settled its mesh was.

    Attributes:
        kind: "forward", "adjoint", "interference", "interference-conjugate" or
            "perturbed-forward".
        layer: 0-based layer whose phases the mesh applied.
        step: 0-based training step.
        mesh: name of the mesh resource.
        start_ps: time the burst entered the mesh.
        end_ps: time the last sample left it.
        since_write_ps: time from the end of the mesh's last write to ``start_ps``, or
            None if the mesh has not been written since time 0 (settled at start-up).
        write_change_rad: largest phase change of that write, rad (0 if none).
        residual_rad: largest residual phase error at ``start_ps``,
            |Δφ|·e^{−t/τ} with τ the slower time constant, rad.
    """

    kind: str
    layer: int
    step: int
    mesh: str
    start_ps: int
    end_ps: int
    since_write_ps: int | None
    write_change_rad: float
    residual_rad: float


class Scheduler:
    """Named SimPy resources and the record of every activity that holds them.

    Args:
        env: the SimPy environment whose clock counts picoseconds.
        capacities: resource name to number of units, in the order in which
            activities acquire them (a fixed order prevents deadlock).

    Raises:
        ValueError: if a capacity is not a positive integer.
    """

    def __init__(self, env: simpy.Environment, capacities: Mapping[str, int]) -> None:
        self.env = env
        for name, capacity in capacities.items():
            if (
                isinstance(capacity, bool)
                or not isinstance(capacity, int)
                or capacity < 1
            ):
                raise ValueError(
                    f"capacity of resource {name!r} must be a positive integer, "
                    f"got {capacity!r}"
                )
        self.capacities = dict(capacities)
        self._resources = {
            name: simpy.PriorityResource(env, capacity=capacity)
            for name, capacity in capacities.items()
        }
        self._rank = {name: rank for rank, name in enumerate(capacities)}
        self._activities: dict[int, Activity] = {}
        self._next_index = 0
        self._cancelled: list[CancelledRequest] = []
        # Resource name to (release time, activity index) of its latest release.
        self._last_release: dict[str, tuple[int, int]] = {}

    @property
    def activities(self) -> tuple[Activity, ...]:
        """Activities that have ended, in start order."""
        return tuple(self._activities[index] for index in sorted(self._activities))

    @property
    def cancelled(self) -> tuple[CancelledRequest, ...]:
        """Requests withdrawn by interrupted processes, in order."""
        return tuple(self._cancelled)

    def resource(self, name: str) -> simpy.PriorityResource:
        """Return the SimPy resource called ``name``.

        Raises:
            KeyError: if there is no such resource.
        """
        return self._resources[name]

    def occupy(
        self,
        resources: Iterable[str],
        name: str,
        duration_ps: int,
        *,
        phase: str,
        layer: int | None = None,
        step: int = 0,
        after: Sequence[Activity | None] = (),
        energy_j: Mapping[str, float] | None = None,
        min_end_ps: int | None = None,
        cause: int | None = None,
        on_start: Callable[[int, int, int], None] | None = None,
    ) -> Generator[simpy.Event, Any, Activity]:
        """Hold ``resources`` for ``duration_ps`` and record the activity.

        A generator for ``yield from`` inside a SimPy process; it returns the recorded
        ``Activity``. The resources are requested one at a time in acquisition order,
        with the training step as priority. The activity ends at the later of
        start + ``duration_ps`` and ``min_end_ps``. ``on_start(index, start_ps, end_ps)``
        runs when the activity starts. If the activity waited for a resource, its cause
        is the activity that released that resource last. Otherwise the cause is
        ``cause`` if given, else the latest-ending activity of ``after``.

        Raises:
            ValueError: if ``duration_ps`` is not a non-negative integer.
            KeyError: for an unknown resource name.
            simpy.Interrupt: re-raised after a withdrawn request is recorded.
        """
        if isinstance(duration_ps, bool) or not isinstance(duration_ps, int):
            raise ValueError(f"duration_ps must be an integer, got {duration_ps!r}")
        if duration_ps < 0:
            raise ValueError(f"duration_ps must be >= 0, got {duration_ps!r}")
        names = tuple(sorted(resources, key=self._rank.__getitem__))
        ready_ps = self.env.now
        start_ps: int | None = None

        try:
            with contextlib.ExitStack() as held:
                for resource in names:
                    request = self._resources[resource].request(priority=step)
                    yield held.enter_context(request)

                start_ps = self.env.now
                index = self._next_index
                self._next_index += 1
                end_ps = start_ps + duration_ps
                if min_end_ps is not None:
                    end_ps = max(end_ps, min_end_ps)
                cause = self._cause(names, after, ready_ps, start_ps, cause)
                if on_start is not None:
                    on_start(index, start_ps, end_ps)
                yield self.env.timeout(end_ps - start_ps)

                return self._record(
                    index,
                    names,
                    name,
                    phase,
                    layer,
                    step,
                    ready_ps,
                    start_ps,
                    cause,
                    energy_j,
                )
        except simpy.Interrupt:
            if start_ps is None:
                self._cancelled.append(
                    CancelledRequest(name, step, layer, names, ready_ps, self.env.now)
                )
                logger.debug("%s withdrew its request at %d ps", name, self.env.now)
            else:
                self._record(
                    index,
                    names,
                    name,
                    phase,
                    layer,
                    step,
                    ready_ps,
                    start_ps,
                    cause,
                    energy_j,
                    interrupted=True,
                )
            raise

    def _cause(
        self,
        names: tuple[str, ...],
        after: Sequence[Activity | None],
        ready_ps: int,
        start_ps: int,
        cause: int | None,
    ) -> int | None:
        if start_ps > ready_ps:
            # It waited for a resource: the activity that released it last is the cause.
            for resource in reversed(names):
                released = self._last_release.get(resource)
                if released is not None and released[0] == start_ps:
                    return released[1]
        if cause is not None:
            return cause
        predecessors = [activity for activity in after if activity is not None]
        if not predecessors:
            return None
        latest = max(
            predecessors, key=lambda activity: (activity.end_ps, activity.index)
        )
        return latest.index

    def _record(
        self,
        index: int,
        names: tuple[str, ...],
        name: str,
        phase: str,
        layer: int | None,
        step: int,
        ready_ps: int,
        start_ps: int,
        cause: int | None,
        energy_j: Mapping[str, float] | None,
        interrupted: bool = False,
    ) -> Activity:
        activity = Activity(
            index=index,
            name=name,
            phase=phase,
            layer=layer,
            step=step,
            resources=names,
            ready_ps=ready_ps,
            start_ps=start_ps,
            end_ps=self.env.now,
            cause=cause,
            energy_j=dict(energy_j or {}),
            interrupted=interrupted,
        )
        self._activities[index] = activity
        for resource in names:
            self._last_release[resource] = (activity.end_ps, activity.index)
        return activity


def run_counting_events(env: simpy.Environment) -> int:
    """Run ``env`` until no event is left and return the number of events processed."""
    n_events = 0
    while env.peek() != Infinity:
        env.step()
        n_events += 1
    return n_events


@dataclass(frozen=True)
class Trace:
    """Everything a finished schedule recorded.

    Attributes:
        activities: every activity, in start order.
        capacities: units of every resource, in acquisition order.
        passes: every optical pass, in start order.
        cancelled: withdrawn requests.
        makespan_ps: end of the last activity.
        n_events: SimPy events processed.
        static_power_w: power drawn for the whole makespan, W, by component (laser,
            heater holding, camera).
    """

    activities: tuple[Activity, ...]
    capacities: Mapping[str, int]
    passes: tuple[PassRecord, ...]
    cancelled: tuple[CancelledRequest, ...]
    makespan_ps: int
    n_events: int
    static_power_w: Mapping[str, float]

    def intervals(self) -> tuple[BusyInterval, ...]:
        """Return one busy interval per resource held by each activity, by start time."""
        intervals = [
            BusyInterval(resource, activity.name, activity.layer, *span)
            for activity in self.activities
            for resource in activity.resources
            for span in [(activity.start_ps, activity.end_ps)]
        ]
        rank = {name: index for index, name in enumerate(self.capacities)}
        return tuple(
            sorted(intervals, key=lambda i: (i.start_ps, rank[i.resource], i.end_ps))
        )

    def busy_time_ps(self, resource: str) -> int:
        """Return the time ``resource`` was held, summed over its units, ps."""
        return sum(
            activity.duration_ps
            for activity in self.activities
            if resource in activity.resources
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the trace as JSON-ready values."""
        return {
            "makespan_ps": self.makespan_ps,
            "n_events": self.n_events,
            "capacities": dict(self.capacities),
            "static_power_w": dict(self.static_power_w),
            "activities": [activity.to_dict() for activity in self.activities],
            "passes": [dataclasses.asdict(record) for record in self.passes],
            "cancelled": [dataclasses.asdict(request) for request in self.cancelled],
        }

    def digest(self) -> str:
        """Return the SHA-256 of the trace's canonical JSON, as hex.

        Floats are written with ``repr``, so two traces have the same digest exactly
        when every time, name and energy is the same.
        """
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
