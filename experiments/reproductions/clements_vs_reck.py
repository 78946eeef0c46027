"""Rectangular against triangular meshes under insertion loss and coupler errors.

Clements et al., Optica 3, 1460 (2016), argue that the rectangular mesh is far more
robust to loss than the triangular mesh of Reck et al., PRL 73, 58 (1994). Every path
through the rectangular mesh crosses nearly the same number of MZIs, whereas paths
through the triangular mesh cross from 1 to 2N − 3 of them. There is no published table
to match, so this module checks that qualitative claim.

Each point programs a Haar-random target U0 into a mesh of one topology by its
decomposition and realises the chip with one static error source of
``photonic.hardware.StaticErrors``: a uniform insertion loss per MZI
(``mzi_loss_db``) or a Gaussian coupler splitting angle (``coupler_error_std``). The
realised matrix U is scored by

- the fidelity F = |Tr(U†U0)/N|², which also counts the mean loss;
- the normalised fidelity |Tr(U†U0)|² / (N·Tr(U†U)), which is 1 for U = c·U0 with any
  complex c, so a uniform loss leaves it at 1 and only a distortion of U lowers it;
- the singular-value spread s_max/s_min of U, which is 1 for a unitary or a uniformly
  attenuated unitary.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from experiments.reproduce import Reproduction, ReproductionContext, TargetCheck
from experiments.reproductions.fang2019 import fidelity, haar_unitary
from experiments.reproductions.figures import (
    legend_below,
    save_figure,
    use_plain_log_labels,
)
from experiments.sweep import grid_points
from photonic.decompose import decompose
from photonic.hardware import Chip, HardwareConfig, StaticErrors
from photonic.mesh import TOPOLOGIES, MeshLayout

logger = logging.getLogger(__name__)

NAME = "clements-vs-reck"
TASK = "experiments.reproductions.clements_vs_reck:point"
ROOT_SEED = 2016
LOSS = "mzi_loss_db"
COUPLER = "coupler_error_std"
ERROR_LABELS = {LOSS: "insertion loss per MZI (dB)", COUPLER: "coupler angle std (rad)"}
"""The ``StaticErrors`` fields swept, with their axis labels."""
ERROR_UNITS = {LOSS: "dB", COUPLER: "rad"}
SPREAD_TARGET_MIN_MODES = 8
"""The spread target applies from this mesh size up. At N = 4 the longest path crosses 5
MZIs in the triangular mesh and 4 in the rectangular one, so the two barely differ."""
UNITARY_SPREAD_TOLERANCE = 1e-9


def _errors(loss_db: tuple[float, ...], coupler_std: tuple[float, ...]) -> list:
    return [[LOSS, value] for value in loss_db] + [
        [COUPLER, value] for value in coupler_std
    ]


SIZES: dict[str, dict[str, Any]] = {
    "smoke": {
        "n_modes": [4, 8],
        "error": _errors((0.5,), (0.05,)),
        "seeds": 2,
    },
    "default": {
        "n_modes": [4, 8, 16, 32, 64],
        "error": _errors((0.1, 0.2, 0.5, 1.0), (0.01, 0.02, 0.05, 0.1)),
        "seeds": 10,
    },
    "full": {
        "n_modes": [4, 8, 16, 32, 64],
        "error": _errors((0.1, 0.2, 0.5, 1.0), (0.01, 0.02, 0.05, 0.1)),
        "seeds": 40,
    },
}
"""Mesh sizes, error settings ``[StaticErrors field, value]`` and seeds per run size."""


def normalised_fidelity(realised: np.ndarray, target: np.ndarray) -> float:
    """Compute |Tr(U†U0)|² / (N·Tr(U†U)), the fidelity of U's shape against U0.

    It is 1 exactly when U = c·U0 for a complex c ≠ 0, and lies in [0, 1] by the
    Cauchy–Schwarz inequality. It is NaN for U = 0.
    """
    n_modes = target.shape[0]
    overlap = abs(np.trace(realised.conj().T @ target)) ** 2
    norm = np.sum(np.abs(realised) ** 2)
    return float(overlap / (n_modes * norm)) if norm > 0 else float("nan")


def singular_value_spread(matrix: np.ndarray) -> tuple[float, float, float]:
    """Return (s_max/s_min, s_max, s_min) of a matrix's singular values.

    The ratio is infinite for a singular matrix.
    """
    values = np.linalg.svd(matrix, compute_uv=False)
    largest, smallest = float(values.max()), float(values.min())
    spread = largest / smallest if smallest > 0 else float("inf")
    return spread, largest, smallest


def _check_params(params: dict[str, Any]) -> tuple[str, int, StaticErrors]:
    topology = params.get("topology")
    n_modes = params.get("n_modes")
    error = params.get("error")
    if topology not in TOPOLOGIES:
        raise ValueError(
            f"topology {topology!r} is unknown; choose one of {', '.join(TOPOLOGIES)}"
        )
    if isinstance(n_modes, bool) or not isinstance(n_modes, int) or n_modes < 2:
        raise ValueError(f"n_modes {n_modes!r} is invalid; give an integer >= 2")
    if (
        not isinstance(error, (list, tuple))
        or len(error) != 2
        or error[0] not in ERROR_LABELS
    ):
        raise ValueError(
            f"error {error!r} is invalid; give [field, value] with field one of "
            f"{', '.join(ERROR_LABELS)}"
        )
    return topology, n_modes, StaticErrors(**{error[0]: error[1]})


def point(params: dict[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
    """Score one mesh, programmed to a Haar target, with one static error source.

    Args:
        params: ``topology`` ("rectangular" or "triangular"), ``n_modes`` (N) and
            ``error``, a pair [StaticErrors field, value] with the field
            ``mzi_loss_db`` (dB) or ``coupler_error_std`` (rad). Other keys are ignored.
        seed: the point's seed. Its first child draws the target and its second seeds
            the chip's static errors.

    Returns:
        ``fidelity``, ``normalised_fidelity``, ``spread`` (s_max/s_min),
        ``singular_max``, ``singular_min`` and ``transmission``, Tr(U†U)/N, the mean
        power transmission for a random input.

    Raises:
        ValueError: for an unknown topology or error field, fewer than 2 modes, or an
            error value that ``StaticErrors`` rejects.
    """
    topology, n_modes, static = _check_params(params)
    target_seed, chip_seed = seed.spawn(2)
    target = haar_unitary(n_modes, np.random.default_rng(target_seed))
    layout = MeshLayout.create(n_modes, topology)
    chip = Chip(
        layout,
        HardwareConfig(static=static),
        seed=chip_seed,
        phases=decompose(target, topology),
    )
    realised = chip.device().transfer_matrix
    spread, largest, smallest = singular_value_spread(realised)
    return {
        "fidelity": fidelity(realised, target),
        "normalised_fidelity": normalised_fidelity(realised, target),
        "spread": spread,
        "singular_max": largest,
        "singular_min": smallest,
        "transmission": float(np.sum(np.abs(realised) ** 2) / n_modes),
    }


def check_params(params: dict[str, Any]) -> None:
    """Raise ValueError for parameters that ``point`` cannot run.

    The sweep engine calls it on every point before it runs any.
    """
    _check_params(params)


point.check_params = check_params


def _collect(
    records: list[dict[str, Any]],
) -> dict[tuple[str, str, float, int], dict[str, np.ndarray]]:
    """Group the results by (error field, topology, strength, N), one array per key."""
    grouped: dict[tuple[str, str, float, int], dict[str, list[float]]] = {}
    for record in records:
        params = record["params"]
        key = (
            params["error"][0],
            params["topology"],
            float(params["error"][1]),
            int(params["n_modes"]),
        )
        entry = grouped.setdefault(key, {})
        for name, value in record["result"].items():
            entry.setdefault(name, []).append(value)
    return {
        key: {name: np.array(values) for name, values in entry.items()}
        for key, entry in grouped.items()
    }


def _geometric_mean(values: np.ndarray) -> float:
    return float(np.exp(np.mean(np.log(values))))


def _statistic(entry: dict[str, np.ndarray], quantity: str) -> float:
    """Summary over seeds: geometric mean of the spread, mean of the fidelities."""
    if quantity == "spread":
        return _geometric_mean(entry["spread"])
    return float(np.mean(entry[quantity]))


_PANELS = (
    (LOSS, "spread", "singular-value spread s_max/s_min", True),
    (LOSS, "normalised_fidelity", "normalised fidelity", False),
    (COUPLER, "fidelity", "fidelity |Tr(U†U0)/N|²", False),
)
_STYLE = {"rectangular": ("-", "o"), "triangular": ("--", "s")}


def _plot_against(
    grouped: dict[tuple[str, str, float, int], dict[str, np.ndarray]],
    axis: str,
    path: Path,
) -> Path:
    """Plot the three panels against N (``axis="n"``) or against strength."""
    figure = Figure(figsize=(12.0, 4.8))
    FigureCanvasAgg(figure)
    for index, (field_name, quantity, label, logarithmic) in enumerate(_PANELS):
        axes = figure.add_subplot(1, 3, index + 1)
        keys = [key for key in grouped if key[0] == field_name]
        strengths = sorted({key[2] for key in keys})
        sizes = sorted({key[3] for key in keys})
        series = strengths if axis == "n" else sizes
        colours = _colours(len(series))
        for topology in TOPOLOGIES:
            line, marker = _STYLE[topology]
            for colour, value in zip(colours, series):
                if axis == "n":
                    xs = [
                        n for n in sizes if (field_name, topology, value, n) in grouped
                    ]
                    ys = [
                        _statistic(grouped[(field_name, topology, value, n)], quantity)
                        for n in xs
                    ]
                    name = f"{topology}, {value:g} {ERROR_UNITS[field_name]}"
                else:
                    xs = [
                        s
                        for s in strengths
                        if (field_name, topology, s, value) in grouped
                    ]
                    ys = [
                        _statistic(grouped[(field_name, topology, s, value)], quantity)
                        for s in xs
                    ]
                    name = f"{topology}, N = {value}"
                axes.plot(xs, ys, line, marker=marker, color=colour, ms=4, label=name)
        if axis == "n":
            # Mesh sizes are labelled as the integers they are, on a log axis.
            axes.set_xscale("log", base=2)
            axes.set_xticks(sizes, [str(n) for n in sizes])
            axes.xaxis.set_minor_formatter(NullFormatter())
            axes.set_xlabel("mesh size N (ports)")
        else:
            axes.set_xscale("log")
            use_plain_log_labels(axes.xaxis)
            axes.set_xlabel(ERROR_LABELS[field_name])
        if logarithmic:
            axes.set_yscale("log")
            use_plain_log_labels(axes.yaxis)
        axes.set_ylabel(label)
        axes.set_title(ERROR_LABELS[field_name], fontsize=8)
        axes.grid(alpha=0.3, which="both")
        legend_below(axes, ncols=2, fontsize=6)
    figure.suptitle(
        "Rectangular (solid) against triangular (dashed) meshes; "
        "spread: geometric mean over seeds, fidelity: mean",
        fontsize=9,
    )
    return save_figure(figure, path, dpi=90)


def _colours(count: int) -> list[tuple[float, ...]]:
    from matplotlib import colormaps

    palette = colormaps["viridis"]
    return [palette(0.85 * i / max(count - 1, 1)) for i in range(count)]


def _table(
    grouped: dict[tuple[str, str, float, int], dict[str, np.ndarray]],
    field_name: str,
    quantity: str,
    title: str,
) -> str:
    strengths = sorted({key[2] for key in grouped if key[0] == field_name})
    sizes = sorted({key[3] for key in grouped if key[0] == field_name})
    header = "| " + title + " | " + " | ".join(f"N = {n}" for n in sizes) + " |"
    rows = [header, "|---" * (len(sizes) + 1) + "|"]
    fmt = "{:.3g}" if quantity == "spread" else "{:.4f}"
    for strength in strengths:
        for topology in TOPOLOGIES:
            cells = []
            for n in sizes:
                entry = grouped.get((field_name, topology, strength, n))
                cells.append(
                    "" if entry is None else fmt.format(_statistic(entry, quantity))
                )
            rows.append(f"| {topology}, {strength:g} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _targets(
    grouped: dict[tuple[str, str, float, int], dict[str, np.ndarray]],
) -> list[TargetCheck]:
    """Build the checks: rectangular below triangular in spread and above it in
    normalised fidelity under every loss, and unit spread under coupler errors."""
    targets = []
    minimum = SPREAD_TARGET_MIN_MODES
    losses = sorted({key[2] for key in grouped if key[0] == LOSS})
    sizes = sorted({key[3] for key in grouped if key[0] == LOSS and key[3] >= minimum})

    fidelity_pairs = []
    for loss_db in losses:
        pairs = [
            (
                n,
                _statistic(grouped[(LOSS, "rectangular", loss_db, n)], "spread"),
                _statistic(grouped[(LOSS, "triangular", loss_db, n)], "spread"),
            )
            for n in sizes
        ]
        measured = ", ".join(f"N={n}: {r:.3g} vs {t:.3g}" for n, r, t in pairs)
        targets.append(
            TargetCheck(
                quantity=f"spread, rectangular vs triangular, {loss_db:g} dB per MZI",
                published="rectangular far more robust to loss (Clements et al. 2016)",
                measured=measured,
                target=f"rectangular below triangular at every N ≥ {minimum}",
                met=bool(pairs) and all(r < t for _, r, t in pairs),
            )
        )
        fidelity_pairs += [
            (
                loss_db,
                n,
                _statistic(
                    grouped[(LOSS, "rectangular", loss_db, n)], "normalised_fidelity"
                ),
                _statistic(
                    grouped[(LOSS, "triangular", loss_db, n)], "normalised_fidelity"
                ),
            )
            for n in sizes
        ]

    if fidelity_pairs:
        worst = min(fidelity_pairs, key=lambda item: item[2] - item[3])
        targets.append(
            TargetCheck(
                quantity="normalised fidelity, rectangular vs triangular, every loss",
                published="rectangular far more robust to loss (Clements et al. 2016)",
                measured=(
                    f"smallest margin at {worst[0]:g} dB, N={worst[1]}: "
                    f"{worst[2]:.4f} vs {worst[3]:.4f}"
                ),
                target=f"rectangular above triangular at every N ≥ {minimum}",
                met=all(r > t for _, _, r, t in fidelity_pairs),
            )
        )

    coupler = [entry for key, entry in grouped.items() if key[0] == COUPLER]
    if coupler:
        largest = max(float(np.max(entry["spread"])) for entry in coupler)
        targets.append(
            TargetCheck(
                quantity="spread with coupler errors only (lossless mesh)",
                published="1 (a lossless mesh is unitary)",
                measured=f"max {largest:.12f}",
                target=f"below 1 + {UNITARY_SPREAD_TOLERANCE:g}",
                met=largest < 1 + UNITARY_SPREAD_TOLERANCE,
            )
        )

    return targets


def run(context: ReproductionContext) -> Reproduction:
    """Run the rectangular-against-triangular sweep at the context's size.

    Raises:
        OSError: if the run folder cannot be written.
    """
    size = SIZES[context.size]
    points = grid_points(
        {
            "topology": list(TOPOLOGIES),
            "n_modes": size["n_modes"],
            "error": size["error"],
        },
        size["seeds"],
    )
    logger.info("%s: %d points", NAME, len(points))
    records = context.run_points(TASK, points, ROOT_SEED)
    grouped = _collect(records)
    figures = [
        _plot_against(grouped, "n", context.folder / f"{NAME}.png"),
        _plot_against(grouped, "strength", context.folder / f"{NAME}-strength.png"),
    ]
    tables = [
        _table(grouped, LOSS, "spread", "spread (geometric mean); loss dB"),
        _table(grouped, LOSS, "normalised_fidelity", "normalised fidelity; loss dB"),
        _table(grouped, LOSS, "fidelity", "fidelity F; loss dB"),
        _table(grouped, COUPLER, "fidelity", "fidelity F; coupler std rad"),
    ]
    summary = {
        "seeds": size["seeds"],
        "n_modes": size["n_modes"],
        "results": [
            {
                "error": field_name,
                "topology": topology,
                "strength": strength,
                "n_modes": n,
                "geometric_mean_spread": _statistic(entry, "spread"),
                "mean_fidelity": _statistic(entry, "fidelity"),
                "mean_normalised_fidelity": _statistic(entry, "normalised_fidelity"),
                "mean_transmission": _statistic(entry, "transmission"),
            }
            for (field_name, topology, strength, n), entry in sorted(grouped.items())
        ],
    }
    setup = (
        "Each point draws a Haar-random target U0 (scipy.stats.unitary_group), "
        "programs it into a rectangular (Clements) or triangular (Reck) mesh by its "
        "decomposition (photonic/decompose.py) and realises the chip "
        "(photonic/hardware.py Chip) with one static error source. The loss setting "
        "gives every MZI the same insertion loss in dB, split equally between its two "
        "arms, with no spread and lossless waveguides. The coupler setting draws every "
        "coupler's splitting angle ε from a Gaussian of the given std in rad, with no "
        "loss. Mesh sizes N = "
        f"{', '.join(map(str, size['n_modes']))}; {size['seeds']} seeds per setting, "
        f"each with its own target and errors, from root seed {ROOT_SEED}. The spread "
        "is s_max/s_min of the realised matrix, summarised by its geometric mean over "
        "seeds. The fidelities are averaged. The normalised fidelity "
        "|Tr(U†U0)|²/(N·Tr(U†U)) ignores a uniform loss, so it measures only how far "
        "the loss distorts U."
    )
    notes = [
        (
            "No published table exists for this comparison. The targets check the "
            "qualitative claim of Clements et al. (2016) that the rectangular mesh is "
            "far more robust to loss, because its paths cross nearly equal numbers of "
            "MZIs. Under uniform MZI loss the rectangular mesh still has some spread: "
            "the two edge waveguides are idle in every other column and so lose less."
        ),
        (
            "Coupler errors keep the mesh unitary, so their spread is 1. Their "
            "fidelity falls at similar rates in both topologies, which hold the same "
            "number of couplers. No rule is set for it."
        ),
        (
            "The raw fidelity F also counts the mean loss. The triangular mesh can "
            "score a higher raw F than the rectangular one because some of its paths "
            "cross fewer MZIs, although its matrix is more distorted."
        ),
    ]
    return Reproduction(
        title=(
            "Rectangular (Clements et al., Optica 3, 1460, 2016) against triangular "
            "(Reck et al., PRL 73, 58, 1994) meshes under loss and coupler errors"
        ),
        setup=setup,
        tables=tables,
        targets=_targets(grouped),
        figures=figures,
        summary=summary,
        notes=notes,
    )
