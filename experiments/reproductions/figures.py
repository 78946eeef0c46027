"""Layout shared by the reproduction plots: legends below their axes, plain tick labels
on log axes, and saving a figure with nothing cut off.

Legends sit below the axes rather than inside them, because the curves of a small run
(the smoke size) can pass through any corner of the axes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.ticker import LogFormatterSciNotation, MaxNLocator
from matplotlib.transforms import offset_copy

LEGEND_DROP_PT = 34.0
"""Distance in points from the bottom edge of an axes down to the top of a legend placed
below it. It leaves room for the x tick labels and the x label at the default font
size of 10 points."""

PLAIN_EXPONENT_LIMIT = 3
"""Log-axis tick values from 10^-3 up to, but not including, 10^3 are labelled as plain
numbers (0.02, 1.5, 300). Values outside that range are labelled as powers of ten."""

SAVE_PAD_IN = 0.1
"""Margin in inches kept around the drawn artists when a figure is saved."""


def legend_below(
    axes: Any, *, ncols: int = 2, fontsize: float = 7, drop_pt: float = LEGEND_DROP_PT
) -> Legend:
    """Place the legend of ``axes`` centred below it, ``drop_pt`` points under its
    bottom edge, so that it covers no data.

    ``Figure.tight_layout`` counts the legend as part of the axes and shrinks the axes
    to make room for it.
    """
    anchor = offset_copy(axes.transAxes, fig=axes.figure, y=-drop_pt, units="points")
    return axes.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=anchor,
        ncols=ncols,
        fontsize=fontsize,
    )


class PlainLogFormatter(LogFormatterSciNotation):
    """Tick labels of a base-10 log axis: plain numbers from 10^-3 up to 10^3, powers
    of ten outside that range.

    Matplotlib's default labels every minor tick of an axis spanning less than a decade
    in scientific notation ("1.1×10⁰"), which is hard to read.
    """

    def __call__(self, x: float, pos: int | None = None) -> str:
        """Return the label of the tick at ``x``."""
        # The parent class reads this setting when it formats each label.
        with matplotlib.rc_context(
            {"axes.formatter.min_exponent": PLAIN_EXPONENT_LIMIT}
        ):
            return super().__call__(x, pos)


def use_plain_log_labels(axis: Any) -> None:
    """Label the major and minor ticks of a base-10 log ``axis`` (an ``XAxis`` or
    ``YAxis``) with ``PlainLogFormatter``.

    Which minor ticks get a label is still decided by the number of decades shown, as
    in matplotlib's default.
    """
    axis.set_major_formatter(PlainLogFormatter())
    axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))


def use_integer_ticks(axis: Any) -> None:
    """Put the major ticks of ``axis`` on integers only, as for epochs, spaced by 1, 2
    or 5 times a power of ten."""
    axis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


def save_figure(figure: Figure, path: Path, dpi: float) -> Path:
    """Lay out ``figure``, then save it to ``path`` cropped to its drawn artists.

    A figure without a layout engine gets ``tight_layout``, and one with an engine
    (constrained layout) keeps it. The crop grows the image where a title or legend
    reaches past the figure's edge, so nothing is cut off at any run size.

    Raises:
        OSError: if the file cannot be written.
    """
    if figure.get_layout_engine() is None:
        figure.tight_layout()
    figure.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=SAVE_PAD_IN)
    return path
