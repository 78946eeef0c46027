"""PNG plots of a simulated training step: a resource timeline and an energy breakdown.

The figures are drawn on matplotlib's Agg canvas directly, so importing or calling
this module changes no global pyplot state and opens no window. matplotlib is
imported inside the functions to keep ``import simulator`` light.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from simulator.step import StepReport

__all__ = ["plot_energy_breakdown", "plot_timeline"]

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


def plot_timeline(report: StepReport, path: str | PathLike[str]) -> Path:
    """Draw a Gantt chart of the busy intervals of ``report`` and save it as PNG.

    One row per resource, bars coloured by activity, time in us. Every bar also
    gets an outline of its own colour, so passes far shorter than the settling
    times stay visible as thin lines. Returns the path written.
    """
    from matplotlib import colormaps

    rows = _resource_rows(report)
    activities = list(dict.fromkeys(interval.activity for interval in report.intervals))
    # tab20 pairs similar shades at neighbouring indices, so only its even entries
    # (ten distinct hues) are taken first, then its odd ones.
    palette = colormaps["tab20"]
    order = list(range(0, palette.N, 2)) + list(range(1, palette.N, 2))
    colours = {
        name: palette(order[index % palette.N]) for index, name in enumerate(activities)
    }
    row_of = {name: index for index, name in enumerate(reversed(rows))}

    figure = _new_figure(10.0, 0.45 * len(rows) + 1.8)
    axes = figure.add_subplot()

    for activity in activities:
        for resource in rows:
            spans = [
                (interval.start_ps / PS_PER_US, interval.duration_ps / PS_PER_US)
                for interval in report.intervals
                if interval.activity == activity and interval.resource == resource
            ]
            if not spans:
                continue
            axes.broken_barh(
                spans,
                (row_of[resource] - 0.4, 0.8),
                facecolors=colours[activity],
                edgecolors=colours[activity],
                linewidth=0.8,
            )

    for activity in activities:
        axes.bar(0, 0, color=colours[activity], label=activity)

    axes.set_yticks(range(len(rows)), list(reversed(rows)))
    # A margin on both sides keeps the pass at t = 0 and the last settle off the frame.
    span = report.step_time_ps / PS_PER_US
    axes.set_xlim(-0.02 * span, 1.02 * span)
    axes.set_xlabel("time (µs)")
    axes.set_title(
        f"Training step: {report.step_time_ps / PS_PER_US:.3f} µs, "
        f"{report.energy_j * 1e6:.3g} µJ"
    )
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    axes.grid(axis="x", alpha=0.3)

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
