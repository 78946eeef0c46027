"""PNG plots of simulated training steps: timelines, energy breakdowns, batch sweeps.

The figures are drawn on matplotlib's Agg canvas directly, so importing or calling
this module changes no global pyplot state and opens no window. matplotlib is
imported inside the functions to keep ``import simulator`` light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import numpy as np

from simulator.engine import BusyInterval, Trace
from simulator.step import StepReport

__all__ = [
    "plot_batch_sweep",
    "plot_energy_breakdown",
    "plot_energy_by_phase",
    "plot_timeline",
    "plot_trace_timeline",
]

PS_PER_US = 10**6


def _new_figure(width_in: float, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _resource_rows(report: StepReport) -> list[str]:
    """Return the resources in report order, the first row at the top of the chart."""
    rows = list(report.utilisation)
    for interval in report.intervals:
        if interval.resource not in rows:
            rows.append(interval.resource)
    return rows


def _activity_colours(activities: list[str]) -> dict[str, tuple]:
    """Return a distinct colour for each activity name, in order of first appearance."""
    from matplotlib import colormaps

    # tab20 pairs similar shades at neighbouring indices, so only its even entries
    # (ten distinct hues) are taken first, then its odd ones.
    palette = colormaps["tab20"]
    order = list(range(0, palette.N, 2)) + list(range(1, palette.N, 2))
    return {
        name: palette(order[index % palette.N]) for index, name in enumerate(activities)
    }


def _draw_gantt(
    intervals: Sequence[BusyInterval],
    rows: list[str],
    span_ps: int,
    unit: tuple[str, int],
    title: str,
    path: str | PathLike[str],
) -> Path:
    """Draw one row per resource with bars coloured by activity and save it as PNG.

    ``unit`` is the time unit's label and its length in ps. Every bar also gets an
    outline of its own colour, so activities far shorter than the span stay visible
    as thin lines.
    """
    label, unit_ps = unit
    activities = list(dict.fromkeys(interval.activity for interval in intervals))
    colours = _activity_colours(activities)
    row_of = {name: index for index, name in enumerate(reversed(rows))}

    spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for interval in intervals:
        spans.setdefault((interval.activity, interval.resource), []).append(
            (interval.start_ps / unit_ps, interval.duration_ps / unit_ps)
        )

    figure = _new_figure(10.0, 0.45 * len(rows) + 1.8)
    axes = figure.add_subplot()
    for (activity, resource), bars in spans.items():
        axes.broken_barh(
            bars,
            (row_of[resource] - 0.4, 0.8),
            facecolors=colours[activity],
            edgecolors=colours[activity],
            linewidth=0.8,
        )
    for activity in activities:
        axes.bar(0, 0, color=colours[activity], label=activity)

    axes.set_yticks(range(len(rows)), list(reversed(rows)))
    # A margin on both sides keeps the activity at t = 0 and the last one off the frame.
    span = span_ps / unit_ps
    axes.set_xlim(-0.02 * span, 1.02 * span)
    axes.set_xlabel(f"time ({label})")
    axes.set_title(title)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    axes.grid(axis="x", alpha=0.3)

    output = Path(path)
    figure.savefig(output, dpi=120)
    return output


def plot_timeline(report: StepReport, path: str | PathLike[str]) -> Path:
    """Draw a Gantt chart of the busy intervals of ``report`` and save it as PNG.

    One row per resource, bars coloured by activity, time in us. Every bar also
    gets an outline of its own colour, so passes far shorter than the settling
    times stay visible as thin lines. Returns the path written.
    """
    title = (
        f"Training step: {report.step_time_ps / PS_PER_US:.3f} µs, "
        f"{report.energy_j * 1e6:.3g} µJ"
    )
    return _draw_gantt(
        report.intervals,
        _resource_rows(report),
        report.step_time_ps,
        ("µs", PS_PER_US),
        title,
        path,
    )


def _time_unit(span_ps: int) -> tuple[str, int]:
    """Return the largest of ns, µs, ms and s in which ``span_ps`` is at least 1."""
    for label, unit_ps in (("s", 10**12), ("ms", 10**9), ("µs", 10**6)):
        if span_ps >= unit_ps:
            return label, unit_ps
    return "ns", 10**3


def plot_trace_timeline(
    trace: Trace, path: str | PathLike[str], title: str = "Schedule"
) -> Path:
    """Draw a Gantt chart of every resource of ``trace`` and save it as PNG.

    Rows are the resources in acquisition order; the time unit (ns, µs, ms or s)
    follows the makespan. Returns the path written.
    """
    unit = _time_unit(trace.makespan_ps)
    heading = f"{title}: {trace.makespan_ps / unit[1]:.4g} {unit[0]}"
    return _draw_gantt(
        trace.intervals(),
        list(trace.capacities),
        trace.makespan_ps,
        unit,
        heading,
        path,
    )


def plot_energy_by_phase(
    table: Mapping[tuple[str, str], float],
    path: str | PathLike[str],
    title: str = "Energy per training step",
) -> Path:
    """Draw energy per (component, phase) as a heat map with values, and save it as PNG.

    The colour scale is logarithmic because components differ by orders of magnitude;
    empty cells are blank. Returns the path written.
    """
    from matplotlib.colors import LogNorm

    components = sorted({component for component, _ in table})
    phases = sorted({phase for _, phase in table})
    values = np.full((len(components), len(phases)), np.nan)
    for (component, phase), energy in table.items():
        if energy > 0:
            values[components.index(component), phases.index(phase)] = energy

    figure = _new_figure(1.6 * len(phases) + 4.0, 0.5 * len(components) + 1.8)
    axes = figure.add_subplot()
    positive = values[np.isfinite(values)]
    if positive.size:
        image = axes.imshow(
            values,
            norm=LogNorm(positive.min(), positive.max()),
            cmap="viridis",
            aspect="auto",
        )
        figure.colorbar(image, ax=axes, label="energy (J)")
    for row in range(len(components)):
        for column in range(len(phases)):
            if np.isfinite(values[row, column]):
                axes.text(
                    column,
                    row,
                    f"{values[row, column]:.2e}",
                    ha="center",
                    va="center",
                    fontsize="small",
                    color="white",
                )
    axes.set_xticks(range(len(phases)), phases)
    axes.set_yticks(range(len(components)), components)
    axes.set_xlim(-0.5, len(phases) - 0.5)
    axes.set_ylim(len(components) - 0.5, -0.5)
    total = sum(table.values())
    axes.set_title(f"{title}: {total:.3g} J")

    output = Path(path)
    figure.savefig(output, dpi=120)
    return output


def plot_batch_sweep(
    curves: Mapping[str, Sequence[tuple[int, float, float]]],
    path: str | PathLike[str],
) -> Path:
    """Draw throughput and energy per sample against batch size, and save it as PNG.

    ``curves`` maps a label to (batch size, samples per s, J per sample) points. Both
    panels have logarithmic axes. Returns the path written.
    """
    figure = _new_figure(11.0, 4.5)
    throughput_axes, energy_axes = figure.subplots(1, 2)
    for label, points in curves.items():
        batches = [point[0] for point in points]
        throughput_axes.plot(batches, [p[1] for p in points], marker="o", label=label)
        energy_axes.plot(batches, [p[2] for p in points], marker="o", label=label)
    for axes, ylabel in (
        (throughput_axes, "throughput (samples/s)"),
        (energy_axes, "energy per sample (J)"),
    ):
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xlabel("batch size")
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3, which="both")
    energy_axes.legend(fontsize="small")
    figure.suptitle("Training throughput and energy per sample")

    output = Path(path)
    figure.savefig(output, dpi=120)
    return output


def plot_energy_breakdown(report: StepReport, path: str | PathLike[str]) -> Path:
    """Draw the energy of each component of ``report`` as bars (J) and save it as PNG.

    The energy axis is logarithmic because components differ by orders of
    magnitude. Components with zero energy get no bar and are labelled "0 J".
    Returns the path written.
    """
    names = list(report.energy_by_component)
    energies = [report.energy_by_component[name] for name in names]

    figure = _new_figure(8.0, 0.45 * len(names) + 1.6)
    axes = figure.add_subplot()

    positive = [energy for energy in energies if energy > 0]
    for row, (name, energy) in enumerate(zip(names, energies)):
        if energy > 0:
            axes.barh(row, energy, color="tab:blue")
            axes.text(energy, row, f" {energy:.2e} J", va="center", fontsize="small")
    if positive:
        axes.set_xscale("log")
        axes.set_xlim(min(positive) / 10, max(positive) * 30)
    for row, energy in enumerate(energies):
        if energy <= 0:
            axes.text(axes.get_xlim()[0], row, " 0 J", va="center", fontsize="small")

    axes.set_yticks(range(len(names)), names)
    axes.invert_yaxis()
    axes.set_xlabel("energy per step (J)")
    axes.set_title(f"Energy per training step: {report.energy_j * 1e6:.3g} µJ")
    axes.grid(axis="x", alpha=0.3)

    output = Path(path)
    figure.savefig(output, dpi=120)
    return output
