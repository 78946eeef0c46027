"""Training-curve and gradient-error plots, written as image files.

Figures are built with `matplotlib.figure.Figure` and rendered by the Agg backend, so
nothing opens a window and no pyplot state is shared between calls.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

RECORD_KEYS: tuple[str, ...] = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
)
"""Keys every epoch record passed to `plot_training_curves` must contain."""

GRADIENT_ERROR_FLOOR = 1e-16
"""Smallest value drawn on the log axes of `plot_gradient_error`."""

_PHOTONIC_COLOUR = "tab:blue"
_DIGITAL_COLOUR = "tab:orange"
_DPI = 120


def plot_training_curves(
    photonic: Sequence[dict], digital: Sequence[dict], path: str | Path
) -> Path:
    """Plot loss and accuracy against epoch for the photonic and digital networks.

    The left panel shows the loss and the right panel the accuracy. Training curves are
    dashed and test curves solid, and the two networks have different colours. An
    empty list leaves its network out of the figure.

    Args:
        photonic: epoch records of the photonic network, each with the keys in
            `RECORD_KEYS` (losses in nats, accuracies as fractions).
        digital: epoch records of the digital baseline, same keys.
        path: image file to write; the format follows the suffix (PNG for ".png").
            Missing parent directories are created.

    Returns:
        The path written.

    Raises:
        ValueError: if both lists are empty, a record lacks a key, or a value is not
            a number.
    """
    series = [
        ("photonic", photonic, _PHOTONIC_COLOUR),
        ("digital", digital, _DIGITAL_COLOUR),
    ]
    series = [(label, records, colour) for label, records, colour in series if records]
    if not series:
        raise ValueError("photonic and digital records are both empty; nothing to plot")

    figure = Figure(figsize=(10.0, 4.0), layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for label, records, colour in series:
        columns = _records_to_columns(records, label)
        for split, linestyle in (("train", "--"), ("test", "-")):
            loss_axes.plot(
                columns["epoch"],
                columns[f"{split}_loss"],
                color=colour,
                linestyle=linestyle,
                label=f"{label} {split}",
            )
            accuracy_axes.plot(
                columns["epoch"],
                columns[f"{split}_accuracy"],
                color=colour,
                linestyle=linestyle,
                label=f"{label} {split}",
            )

    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("cross-entropy loss (nats)")
    loss_axes.set_title("Loss")
    accuracy_axes.set_xlabel("epoch")
    accuracy_axes.set_ylabel("accuracy")
    accuracy_axes.set_ylim(-0.02, 1.02)
    accuracy_axes.set_title("Accuracy")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(True, alpha=0.3)
        axes.legend()
    return _save(figure, path)


def plot_gradient_error(
    steps: Sequence[float] | np.ndarray,
    cosine_distance: Sequence[float] | np.ndarray,
    relative_error: Sequence[float] | np.ndarray,
    path: str | Path,
    *,
    median_window: int = 9,
) -> Path:
    """Plot the gradient error against training step on log axes, with running medians.

    The top panel shows the cosine distance 1 - ĝ·g between the unit-normalised
    measured and exact gradients, and the bottom panel the relative L2 error
    |g_measured - g_exact| / |g_exact|. Values below `GRADIENT_ERROR_FLOOR`, including
    zeros and the small negative cosine distances that rounding produces, are drawn at
    the floor, and the y-axis labels state the floor. Each panel also shows the running
    median over a centred window of `median_window` steps, which shrinks at the ends.

    Args:
        steps: training step of each measurement, shape (n,).
        cosine_distance: 1 - ĝ·g at each step, shape (n,).
        relative_error: relative L2 gradient error at each step, shape (n,).
        path: image file to write; missing parent directories are created.
        median_window: number of steps in the running-median window, >= 1.

    Returns:
        The path written.

    Raises:
        ValueError: if the arrays are empty, not 1-D, differ in length, or contain NaN
            or infinity, or if median_window < 1.
    """
    step_values = _as_series(steps, "steps")
    cosine_values = _as_series(cosine_distance, "cosine_distance")
    relative_values = _as_series(relative_error, "relative_error")
    lengths = {len(step_values), len(cosine_values), len(relative_values)}
    if len(lengths) != 1:
        raise ValueError(
            "steps, cosine_distance and relative_error must have equal lengths, got "
            f"{len(step_values)}, {len(cosine_values)} and {len(relative_values)}"
        )
    if median_window < 1:
        raise ValueError(f"median_window must be >= 1, got {median_window}")

    figure = Figure(figsize=(7.0, 6.0), layout="constrained")
    cosine_axes, relative_axes = figure.subplots(2, 1, sharex=True)
    _plot_error_panel(
        cosine_axes,
        step_values,
        cosine_values,
        median_window,
        "gradient error 1 − ĝ·g",
    )
    _plot_error_panel(
        relative_axes,
        step_values,
        relative_values,
        median_window,
        "relative L2 error",
    )
    relative_axes.set_xlabel("training step")
    return _save(figure, path)


def running_median(values: np.ndarray, window: int) -> np.ndarray:
    """Return the median over a centred window of `window` samples at each index.

    Near the ends the window is cut to the samples that exist, so the output has the
    same length as the input. An even window has one more sample after the centre
    than before it.

    Raises:
        ValueError: if window < 1 or values is not 1-D.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {values.shape}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    before = (window - 1) // 2
    after = window - 1 - before
    medians = np.empty_like(values)
    for index in range(values.size):
        start = max(0, index - before)
        stop = min(values.size, index + after + 1)
        medians[index] = np.median(values[start:stop])
    return medians


def _plot_error_panel(
    axes: Axes,
    steps: np.ndarray,
    values: np.ndarray,
    median_window: int,
    quantity: str,
) -> None:
    clipped = np.maximum(values, GRADIENT_ERROR_FLOOR)
    window = min(median_window, clipped.size)
    axes.plot(
        steps,
        clipped,
        color="tab:blue",
        alpha=0.35,
        marker=".",
        linewidth=0.8,
        label="per step",
    )
    axes.plot(
        steps,
        running_median(clipped, window),
        color="tab:red",
        linewidth=2.0,
        label=f"running median ({window} steps)",
    )
    axes.set_yscale("log")
    floor = f"{GRADIENT_ERROR_FLOOR:.0e}"
    axes.set_ylabel(f"{quantity}\n(values < {floor} drawn at {floor})")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()


def _as_series(values: Sequence[float] | np.ndarray, label: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"{label} must be a non-empty 1-D array, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        n_bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"{label} contains {n_bad} NaN or infinite values")
    return array


def _records_to_columns(records: Sequence[dict], label: str) -> dict[str, np.ndarray]:
    """Return one float array per key of `RECORD_KEYS`, checking every record."""
    columns: dict[str, list[float]] = {key: [] for key in RECORD_KEYS}
    for index, record in enumerate(records):
        for key in RECORD_KEYS:
            if key not in record:
                raise ValueError(
                    f"{label} record {index} has no key {key!r}; expected keys "
                    f"{', '.join(RECORD_KEYS)}"
                )
            value = record[key]
            try:
                columns[key].append(float(value))
            except (TypeError, ValueError) as error:
                raise ValueError(
                    f"{label} record {index} has non-numeric {key} {value!r}"
                ) from error
    arrays = {key: np.asarray(column) for key, column in columns.items()}
    for key, array in arrays.items():
        n_missing = int(np.count_nonzero(~np.isfinite(array)))
        if n_missing:
            logger.warning(
                "%s records have %d NaN or infinite %s values, drawn as gaps",
                label,
                n_missing,
                key,
            )
    return arrays


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=_DPI)
    logger.info("wrote figure %s", path)
    return path
