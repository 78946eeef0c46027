"""Distribution of the in situ gradient error of a perturbed 4×4 triangular mesh.

Pai et al., Science 380, 398 (2023), test the measured gradient on a
Haar-random 4×4 unitary U0 programmed into a triangular mesh whose every phase is then
perturbed by a Gaussian error of σ ∈ {0.1, 0.2, 0.5, 1} rad. The loss of input port n
is 1 − |(U·u_n*)_n|², with u_n the n-th row of U0, so the loss is 0 when the mesh
realises U0. On the chip they report the gradient error 1 − ĝ·g (cosine distance of the
unit-normalised measured and predicted gradients) of 0.0195, 0.0181 and 0.0161 for
analog batches of 1, 2 and 4 samples.

Here every point draws U0, a perturbation and a batch of distinct ports. It measures the
gradient by the three-pass protocol (``photonic.insitu.measure_gradient``), with the
monitor model P + sqrt(K·P)·n of the same paper (``DetectorConfig.pai2023``) on every
pass. Then it compares that gradient with the exact gradient of the same realised device
(``photonic.reference``). The output phases are left out of both, because a loss on
detected powers does not depend on them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from experiments.reproduce import Reproduction, ReproductionContext, TargetCheck
from experiments.reproductions.fang2019 import haar_unitary
from experiments.reproductions.figures import save_figure, use_plain_log_labels
from experiments.sweep import grid_points
from photonic.decompose import decompose_reck
from photonic.detection import DetectorConfig
from photonic.hardware import Chip, HardwareConfig, PassErrors
from photonic.insitu import measure_gradient
from photonic.mesh import MeshLayout
from photonic.network import IdentityActivation, PhotonicNetwork
from photonic.reference import exact_gradient, gradient_error

logger = logging.getLogger(__name__)

NAME = "pai2023-gradient-error"
TASK = "experiments.reproductions.pai2023_gradient_error:point"
ROOT_SEED = 2023
N_MODES = 4
SIGMAS = (0.1, 0.2, 0.5, 1.0)
"""Phase perturbations in rad of the published test."""
BATCHES = (1, 2, 4)
"""Analog batch sizes of the published chip measurement."""
PUBLISHED_CHIP_ERROR = {1: 0.0195, 2: 0.0181, 4: 0.0161}
"""Gradient error 1 − ĝ·g measured on the chip for each batch size (Pai et al. 2023)."""
MONITOR_KS = (0.005, 0.01, 0.02)
"""K of the monitor model, in units of the launched power: the nonzero values of the
64-port simulation of Pai et al. (2023)."""
DEFAULT_MONITOR_K = 0.01
SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"sigma": [0.1, 1.0], "batch": [1, 4], "monitor_k": [0.01], "seeds": 2},
    "default": {
        "sigma": list(SIGMAS),
        "batch": list(BATCHES),
        "monitor_k": list(MONITOR_KS),
        "seeds": 200,
    },
    "full": {
        "sigma": list(SIGMAS),
        "batch": list(BATCHES),
        "monitor_k": list(MONITOR_KS),
        "seeds": 1000,
    },
}
"""Perturbations, batch sizes, monitor K and seeds of each run size."""


@dataclass(frozen=True)
class PortPowerLoss:
    """Mean loss 1 − |y_b[n_b]|² over a batch, with n_b the target port of sample b.

    For a field y at the target port, ∂L/∂Re(y) − i·∂L/∂Im(y) = −2·conj(y), so the
    adjoint source is −2·conj(y)/B at each target port and 0 elsewhere. The loss depends
    on detected powers only (``detects_power``), so the output phases get no gradient.
    """

    detects_power = True

    def value_and_adjoint(
        self, y: np.ndarray, ports: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """Return the mean loss and the adjoint source of output fields ``(batch, N)``.

        Raises:
            ValueError: for a shape mismatch or a port outside 0..n_modes−1.
        """
        ports = np.asarray(ports, dtype=int)
        if y.ndim != 2 or ports.shape != (y.shape[0],):
            raise ValueError(
                f"output fields have shape {y.shape} and target ports {ports.shape}; "
                "expected (batch, modes) and (batch,)"
            )
        last = y.shape[1] - 1
        if ports.size and (ports.min() < 0 or ports.max() > last):
            raise ValueError(
                f"target ports {ports!r} are invalid; each must be in 0..{last}"
            )
        rows = np.arange(len(ports))
        at_port = y[rows, ports]
        batch = len(ports)
        delta = np.zeros_like(y, dtype=np.complex128)
        delta[rows, ports] = -2.0 * np.conj(at_port) / batch
        return float(np.mean(1.0 - np.abs(at_port) ** 2)), delta


def monitor_hardware(monitor_k: float) -> HardwareConfig:
    """Return an ideal chip except for monitors that read P + sqrt(K·P)·n on every pass.

    Raises:
        ValueError: for a negative or non-finite K.
    """
    errors = PassErrors(monitor=DetectorConfig.pai2023(monitor_k))
    return HardwareConfig(forward=errors, adjoint=errors, interference=errors)


def _check_params(params: dict[str, Any]) -> tuple[float, int, float]:
    sigma = params.get("sigma")
    batch = params.get("batch")
    monitor_k = params.get("monitor_k", DEFAULT_MONITOR_K)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or sigma < 0:
        raise ValueError(f"sigma {sigma!r} rad is invalid; give a number >= 0")
    if (
        isinstance(batch, bool)
        or not isinstance(batch, int)
        or not 1 <= batch <= N_MODES
    ):
        raise ValueError(f"batch {batch!r} is invalid; give an integer in 1..{N_MODES}")
    if (
        isinstance(monitor_k, bool)
        or not isinstance(monitor_k, (int, float))
        or not 0 <= monitor_k < float("inf")
    ):
        raise ValueError(
            f"monitor_k {monitor_k!r} is invalid; give a finite number >= 0"
        )
    return float(sigma), batch, float(monitor_k)


def point(params: dict[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
    """Measure one gradient of the perturbed mesh and score it against the exact one.

    Args:
        params: ``sigma`` (phase perturbation in rad), ``batch`` (number of distinct
            input ports, 1 to 4) and ``monitor_k`` (K of the monitor model, default
            ``DEFAULT_MONITOR_K``). Other keys are ignored.
        seed: the point's seed. Its three children draw the target and the ports, the
            perturbation, and the chip's monitor noise.

    Returns:
        ``cosine_distance`` (1 − ĝ·g) and ``relative_error`` over the θ and φ phases,
        ``loss`` (mean 1 − |y_n|² of the batch on the realised device) and
        ``exact_norm`` (norm of the exact gradient, 1/rad).

    Raises:
        ValueError: for an invalid sigma, batch or K.
    """
    sigma, batch, monitor_k = _check_params(params)
    target_seed, perturbation_seed, chip_seed = seed.spawn(3)
    target_rng = np.random.default_rng(target_seed)
    target = haar_unitary(N_MODES, target_rng)
    ports = np.sort(target_rng.choice(N_MODES, size=batch, replace=False))

    layout = MeshLayout.create(N_MODES, "triangular")
    perturbation = np.random.default_rng(perturbation_seed).standard_normal(
        layout.n_phases
    )
    chip = Chip(
        layout,
        monitor_hardware(monitor_k),
        seed=chip_seed,
        phases=decompose_reck(target) + sigma * perturbation,
    )
    network = PhotonicNetwork([chip], IdentityActivation(), PortPowerLoss())
    x = np.conj(target[ports, :])

    measured = measure_gradient(network, x, ports)
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, x, ports
    )
    mask = network.trainable_masks()[0]
    cosine, relative = gradient_error(measured.flat()[mask], exact.flat()[mask])
    return {
        "cosine_distance": cosine,
        "relative_error": relative,
        "loss": exact.loss,
        "exact_norm": float(np.linalg.norm(exact.flat()[mask])),
    }


Key = tuple[float, float, int]
"""Results are grouped by (monitor K, σ in rad, batch size)."""


def check_params(params: dict[str, Any]) -> None:
    """Raise ValueError for parameters that ``point`` cannot run.

    The sweep engine calls it on every point before it runs any.
    """
    _check_params(params)


point.check_params = check_params


def _collect(records: list[dict[str, Any]]) -> dict[Key, dict[str, np.ndarray]]:
    grouped: dict[Key, dict[str, list[float]]] = {}
    for record in records:
        params = record["params"]
        key = (
            float(params["monitor_k"]),
            float(params["sigma"]),
            int(params["batch"]),
        )
        entry = grouped.setdefault(key, {})
        for name, value in record["result"].items():
            entry.setdefault(name, []).append(value)
    return {
        key: {name: np.array(values, dtype=float) for name, values in entry.items()}
        for key, entry in grouped.items()
    }


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


_BATCH_COLOURS = {1: "tab:blue", 2: "tab:orange", 3: "tab:purple", 4: "tab:green"}
_PLOT_FLOOR = 1e-8
"""Smallest gradient error drawn on the log axis."""
MIN_FIGURE_WIDTH_IN = 6.5
"""Minimum width of the box-plot figure in inches."""


def _box_panel(
    axes: Any,
    grouped: dict[Key, dict[str, np.ndarray]],
    monitor_k: float,
    sigmas: list[float],
    batches: list[int],
) -> None:
    """Draw box plots of 1 − ĝ·g per σ, one box per batch size, with the chip values."""
    width = 0.8 / len(batches)
    for offset, batch in enumerate(batches):
        colour = _BATCH_COLOURS.get(batch, "0.6")
        shift = (offset - (len(batches) - 1) / 2) * width
        data = [
            np.clip(
                _finite(grouped[(monitor_k, s, batch)]["cosine_distance"]),
                _PLOT_FLOOR,
                None,
            )
            for s in sigmas
        ]
        boxes = axes.boxplot(
            data,
            positions=[i + shift for i in range(len(sigmas))],
            widths=width * 0.85,
            patch_artist=True,
            flierprops={"markersize": 2, "alpha": 0.4},
            medianprops={"color": "black"},
        )
        for box in boxes["boxes"]:
            box.set_facecolor(colour)
            box.set_alpha(0.6)
        axes.plot([], [], "s", color=colour, label=f"ours, batch {batch}")
        if batch in PUBLISHED_CHIP_ERROR:
            axes.axhline(
                PUBLISHED_CHIP_ERROR[batch],
                color=colour,
                ls="--",
                lw=1,
                label=f"chip (Pai et al. 2023), batch {batch}",
            )
    axes.set_xticks(range(len(sigmas)), [f"{s:g}" for s in sigmas])
    axes.set_xlabel("phase perturbation σ (rad)")
    axes.set_yscale("log")
    axes.set_title(f"monitor noise K = {monitor_k:g}", fontsize=9)
    axes.grid(alpha=0.3, which="both", axis="y")


def _plot(
    grouped: dict[Key, dict[str, np.ndarray]],
    size: dict[str, Any],
    path: Path,
) -> Path:
    monitor_ks = size["monitor_k"]
    # A single panel (the smoke size) still needs the width of the title and of one
    # legend column per batch size.
    width = max(4.0 * len(monitor_ks) + 0.5, MIN_FIGURE_WIDTH_IN)
    figure = Figure(figsize=(width, 4.4), layout="constrained")
    FigureCanvasAgg(figure)
    shared = None
    for index, monitor_k in enumerate(monitor_ks):
        axes = figure.add_subplot(1, len(monitor_ks), index + 1, sharey=shared)
        shared = shared or axes
        _box_panel(axes, grouped, monitor_k, size["sigma"], size["batch"])
        use_plain_log_labels(axes.yaxis)
        if index == 0:
            axes.set_ylabel("gradient error 1 − ĝ·g")
            handles, labels = axes.get_legend_handles_labels()
    figure.suptitle(
        "In situ gradient error, 4×4 triangular mesh, Haar target, perturbed phases",
        fontsize=10,
    )
    # The entries come in batch order, ours before the published chip value, so one
    # column per batch size puts each batch's pair in a column.
    figure.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=len(size["batch"]),
        fontsize=7,
    )
    return save_figure(figure, path, dpi=90)


def _median_iqr(values: np.ndarray) -> str:
    values = _finite(values)
    if values.size == 0:
        return "n/a"
    low, median, high = np.percentile(values, [25, 50, 75])
    return f"{median:.4f} [{low:.4f}, {high:.4f}]"


def _median(values: np.ndarray) -> float:
    values = _finite(values)
    return float(np.median(values)) if values.size else float("nan")


def _table(grouped: dict[Key, dict[str, np.ndarray]], size: dict[str, Any]) -> str:
    batches = size["batch"]
    header = (
        "| K | σ (rad) | "
        + " | ".join(f"batch {b}: median [IQR]" for b in batches)
        + " | mean loss |"
    )
    rows = [header, "|---" * (len(batches) + 3) + "|"]
    for monitor_k in size["monitor_k"]:
        for sigma in size["sigma"]:
            entries = [grouped[(monitor_k, sigma, b)] for b in batches]
            cells = [_median_iqr(entry["cosine_distance"]) for entry in entries]
            mean_loss = np.mean(np.concatenate([entry["loss"] for entry in entries]))
            rows.append(
                f"| {monitor_k:g} | {sigma:g} | "
                + " | ".join(cells)
                + f" | {mean_loss:.3f} |"
            )
    published = [
        f"{PUBLISHED_CHIP_ERROR[b]:.4f}" if b in PUBLISHED_CHIP_ERROR else ""
        for b in batches
    ]
    rows.append("| published, on chip | | " + " | ".join(published) + " | |")
    return "\n".join(rows)


def _targets(
    grouped: dict[Key, dict[str, np.ndarray]], size: dict[str, Any]
) -> list[TargetCheck]:
    """Build a reported row per batch size and K: the median over every σ, and per σ."""
    targets = []
    for batch in size["batch"]:
        for monitor_k in size["monitor_k"]:
            entries = {s: grouped[(monitor_k, s, batch)] for s in size["sigma"]}
            pooled = np.concatenate([e["cosine_distance"] for e in entries.values()])
            per_sigma = ", ".join(
                f"σ={s:g}: {_median(e['cosine_distance']):.4f}"
                for s, e in entries.items()
            )
            targets.append(
                TargetCheck(
                    quantity=f"median 1 − ĝ·g, batch {batch}, K = {monitor_k:g}",
                    published=(
                        f"{PUBLISHED_CHIP_ERROR[batch]:.4f} (chip)"
                        if batch in PUBLISHED_CHIP_ERROR
                        else ""
                    ),
                    measured=f"{_median(pooled):.4f} over every σ ({per_sigma})",
                )
            )
    return targets


def run(context: ReproductionContext) -> Reproduction:
    """Run the gradient-error distribution sweep at the context's size.

    Raises:
        OSError: if the run folder cannot be written.
    """
    size = SIZES[context.size]
    points = grid_points(
        {
            "monitor_k": size["monitor_k"],
            "sigma": size["sigma"],
            "batch": size["batch"],
        },
        size["seeds"],
    )
    logger.info("%s: %d points", NAME, len(points))
    records = context.run_points(TASK, points, ROOT_SEED)
    grouped = _collect(records)
    figure = _plot(grouped, size, context.folder / f"{NAME}.png")
    monitor_ks = ", ".join(f"{k:g}" for k in size["monitor_k"])
    setup = (
        "Each point draws a Haar-random 4×4 target U0 (scipy.stats.unitary_group), "
        "programs it into a triangular mesh by the Reck decomposition and adds σ·n rad "
        "to every programmed phase (θ, φ and the output phases). It picks a batch of "
        "distinct ports n and launches u_n* (the conjugate of row n of U0, unit "
        "power). The loss is the batch mean of 1 − |y_n|². The chip is lossless and "
        "ideal except for its power monitors, which read P + sqrt(K·P)·n on the "
        "forward, "
        f"adjoint and interference passes, with K = {monitor_ks} in units of the "
        "launched power of one sample. The gradient is measured by the three-pass "
        "protocol and compared with the exact gradient of the same realised device "
        "over its 12 θ and φ phases. The output phases are left out because the loss "
        "does not depend on them. The table gives the median and the interquartile "
        "range of "
        f"1 − ĝ·g over {size['seeds']} seeds per cell, each with its own target, "
        f"perturbation, ports and noise, from root seed {ROOT_SEED}."
    )
    notes = [
        (
            "The published numbers come from a different setup. They were measured on "
            "the chip, whose monitors are grating taps read by an IR camera and where "
            "output phase measurement was the dominant error (about ten times the "
            "others). Ours come from a simulated lossless mesh with monitor noise "
            "only, at the K values of their 64-port simulation, whose power unit (here "
            "the launched power of one unit-norm sample) may differ from theirs. So "
            "the comparison shows orders of magnitude only, and no target rule is set."
        ),
        (
            "The gradient error falls as σ grows, because the exact gradient grows "
            "with the distance from the optimum U0 while the monitor noise stays set "
            "by the powers. At the optimum the exact gradient is zero and 1 − ĝ·g is "
            "undefined. For small errors 1 − ĝ·g is about half the squared noise "
            "across the gradient over |g|², so where it is well below 1 it grows "
            "nearly in proportion to K."
        ),
    ]
    summary = {
        "seeds": size["seeds"],
        "results": [
            {
                "monitor_k": monitor_k,
                "sigma": sigma,
                "batch": batch,
                "median_cosine_distance": _median(entry["cosine_distance"]),
                "mean_cosine_distance": float(
                    np.mean(_finite(entry["cosine_distance"]))
                ),
                "median_relative_error": _median(entry["relative_error"]),
                "mean_loss": float(np.mean(entry["loss"])),
                "undefined": int(np.sum(~np.isfinite(entry["cosine_distance"]))),
            }
            for (monitor_k, sigma, batch), entry in sorted(grouped.items())
        ],
        "published_chip_error": {str(b): v for b, v in PUBLISHED_CHIP_ERROR.items()},
    }
    return Reproduction(
        title=(
            "Gradient error of in situ backpropagation on a perturbed 4×4 triangular "
            "mesh (Pai et al., Science 380, 398, 2023)"
        ),
        setup=setup,
        tables=[_table(grouped, size)],
        targets=_targets(grouped, size),
        figures=[figure],
        summary=summary,
        notes=notes,
    )
