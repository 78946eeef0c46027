"""Fidelity of a large rectangular mesh under phase and coupler errors.

Fang et al., Opt. Express 27, 14009 (2019), program a Haar-random unitary U0 into a
256-port rectangular (Clements) mesh. They perturb every phase shifter by a Gaussian
error of σ rad and set every coupler's reflection amplitude to 1/√2 + σ·n. The fidelity
F = |Tr(U†U0)/N|² of the realised matrix U, averaged over 20 trials, is 0.969, 0.880
and 0.599 at σ = 0.005, 0.01 and 0.02.

Coupler errors. ``StaticErrors`` gives a coupler's splitting error either as a Gaussian
angle ε (``coupler_error_std``) or as a Gaussian spread of the cross power ratio
sin²(π/4 + ε) (``coupler_ratio_std``). Neither makes the reflection amplitude Gaussian,
so this module builds the device itself. A coupler of angle π/4 + ε has the bar
(reflection) amplitude cos(π/4 + ε), so the exact conversion is

    π/4 + ε = arccos(1/√2 + σ·n),

which to first order is ε = −√2·σ·n: the angle spread is √2 times the amplitude spread.

Each phase error of δ rad on one mode adds δ²·(1/N − 1/N²) to 1 − F to second order,
and each coupler angle error ε adds 2ε²/N. With N² phase shifters and N(N − 1) couplers
the expected infidelity is 5σ²(N − 1), which gives the estimate F ≈ exp(−5σ²(N − 1)).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import unitary_group

from experiments.reproduce import Reproduction, ReproductionContext, TargetCheck
from experiments.sweep import grid_points
from photonic.decompose import decompose_clements
from photonic.mesh import MeshLayout, RealisedMesh

logger = logging.getLogger(__name__)

NAME = "fang2019-fidelity"
TASK = "experiments.reproductions.fang2019:point"
ROOT_SEED = 2019
SIGMAS = (0.005, 0.01, 0.02)
"""Phase error in rad and reflection-amplitude error of the published table."""
PUBLISHED_FIDELITY = {0.005: 0.969, 0.01: 0.880, 0.02: 0.599}
"""Mean fidelity of the 256-port rectangular mesh over 20 trials (Fang et al. 2019)."""
PUBLISHED_FFT_FIDELITY = {0.005: 0.9992, 0.01: 0.9967, 0.02: 0.987}
"""Mean fidelity of their FFT-type log-depth mesh, not built here."""
PUBLISHED_PORTS = 256
TOLERANCE = 0.02
SIZES: dict[str, tuple[int, int]] = {
    "smoke": (16, 2),
    "default": (256, 20),
    "full": (256, 20),
}
"""Mesh size N and trials per σ of each run size."""

_INVERSE_SQRT2 = 1 / math.sqrt(2)


def haar_unitary(n_modes: int, rng: np.random.Generator) -> np.ndarray:
    """Draw an N×N unitary from the Haar measure (``scipy.stats.unitary_group``)."""
    return np.asarray(unitary_group.rvs(n_modes, random_state=rng))


def fidelity(realised: np.ndarray, target: np.ndarray) -> float:
    """Compute F = |Tr(U†U0)/N|² of a realised matrix U against the target U0.

    F is 1 for U = e^{iα}·U0 and at most 1 for any matrix whose singular values are at
    most 1.
    """
    n_modes = target.shape[0]
    return float(abs(np.trace(realised.conj().T @ target) / n_modes) ** 2)


def coupler_angles_from_reflection(reflection: np.ndarray) -> np.ndarray:
    """Convert coupler reflection (bar) amplitudes r into coupling angles π/4 + ε (rad).

    A coupler of angle π/4 + ε has the bar amplitude cos(π/4 + ε), so the angle is
    arccos(r). Amplitudes outside [0, 1] are clipped to it. This happens only for draws
    more than (1 − 1/√2)/σ standard deviations from the mean, 14.6 at σ = 0.02.
    """
    return np.arccos(np.clip(reflection, 0.0, 1.0))


def imprecise_mesh(
    layout: MeshLayout,
    phases: np.ndarray,
    sigma: float,
    phase_normal: np.ndarray,
    coupler_normal: np.ndarray,
) -> RealisedMesh:
    """Build the lossless device of Fang et al. (2019) from standard-normal draws.

    Args:
        layout: positions of the MZIs.
        phases: programmed phases (θ, φ, ψ) in rad.
        sigma: phase error in rad and reflection-amplitude error (dimensionless).
        phase_normal: one standard-normal draw per phase shifter, shape ``(N²,)``.
        coupler_normal: one standard-normal draw per coupler, shape ``(2, n_mzis)``.

    Returns:
        The device applying ``phases + σ·phase_normal``, with the reflection amplitude
        1/√2 + σ·n of every coupler.
    """
    reflection = _INVERSE_SQRT2 + sigma * coupler_normal
    return RealisedMesh(
        layout=layout,
        phases=phases + sigma * phase_normal,
        coupler_angles=coupler_angles_from_reflection(reflection),
        arm_amplitude=np.ones((2, layout.n_mzis)),
    )


def estimated_fidelity(sigma: float, n_modes: int) -> float:
    """Estimate the mean fidelity as exp(−5σ²(N − 1)), to second order in σ."""
    return math.exp(-5 * sigma**2 * (n_modes - 1))


def _check_params(params: dict[str, Any]) -> tuple[int, float]:
    n_modes = params.get("n_modes")
    sigma = params.get("sigma")
    if isinstance(n_modes, bool) or not isinstance(n_modes, int) or n_modes < 2:
        raise ValueError(f"n_modes {n_modes!r} is invalid; give an integer >= 2")
    if (
        isinstance(sigma, bool)
        or not isinstance(sigma, (int, float))
        or not 0 <= sigma < 1
    ):
        raise ValueError(f"sigma {sigma!r} is invalid; give a number in [0, 1)")
    return n_modes, float(sigma)


def point(params: dict[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
    """Compute the fidelity of an imprecise rectangular mesh set to a Haar target.

    Args:
        params: ``n_modes`` (N) and ``sigma`` (phase error in rad, reflection-amplitude
            error). Other keys are ignored.
        seed: the point's seed. The target, the phase errors and the coupler errors come
            from it in that order.

    Returns:
        ``fidelity`` with both errors, ``fidelity_phase_only`` and
        ``fidelity_coupler_only`` with one error source of the same draws, and
        ``reconstruction_error``, max |U − U0| of the error-free device.

    Raises:
        ValueError: for an invalid ``n_modes`` or ``sigma``.
    """
    n_modes, sigma = _check_params(params)
    rng = np.random.default_rng(seed)
    target = haar_unitary(n_modes, rng)
    layout = MeshLayout.create(n_modes, "rectangular")
    phases = decompose_clements(target)
    phase_normal = rng.standard_normal(layout.n_phases)
    coupler_normal = rng.standard_normal((2, layout.n_mzis))
    zeros_phase = np.zeros_like(phase_normal)
    zeros_coupler = np.zeros_like(coupler_normal)

    def realised(phase_draws: np.ndarray, coupler_draws: np.ndarray) -> np.ndarray:
        device = imprecise_mesh(layout, phases, sigma, phase_draws, coupler_draws)
        return device.transfer_matrix

    ideal = realised(zeros_phase, zeros_coupler)
    return {
        "fidelity": fidelity(realised(phase_normal, coupler_normal), target),
        "fidelity_phase_only": fidelity(realised(phase_normal, zeros_coupler), target),
        "fidelity_coupler_only": fidelity(
            realised(zeros_phase, coupler_normal), target
        ),
        "reconstruction_error": float(np.max(np.abs(ideal - target))),
    }


def check_params(params: dict[str, Any]) -> None:
    """Raise ValueError for parameters that ``point`` cannot run.

    The sweep engine calls it on every point before it runs any.
    """
    _check_params(params)


point.check_params = check_params


def _statistics(records: list[dict[str, Any]], key: str) -> dict[float, np.ndarray]:
    values: dict[float, list[float]] = {}
    for record in records:
        values.setdefault(record["params"]["sigma"], []).append(record["result"][key])
    return {sigma: np.array(v) for sigma, v in values.items()}


def _plot(
    folder: Path,
    n_modes: int,
    fidelities: dict[float, np.ndarray],
    phase_only: dict[float, np.ndarray],
    coupler_only: dict[float, np.ndarray],
) -> Path:
    """Plot every trial's fidelity against σ, with the means, the estimate and the
    published values."""
    figure = Figure(figsize=(6.0, 4.0))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    sigmas = np.array(sorted(fidelities))

    for sigma in sigmas:
        axes.scatter(
            np.full(fidelities[sigma].size, sigma),
            fidelities[sigma],
            s=8,
            color="tab:blue",
            alpha=0.35,
        )

    means = np.array([fidelities[s].mean() for s in sigmas])
    axes.plot(sigmas, means, "o-", color="tab:blue", label=f"ours, N = {n_modes}")
    axes.plot(
        sigmas,
        [phase_only[s].mean() for s in sigmas],
        "^:",
        color="tab:green",
        label="ours, phase errors only",
    )
    axes.plot(
        sigmas,
        [coupler_only[s].mean() for s in sigmas],
        "v:",
        color="tab:olive",
        label="ours, coupler errors only",
    )

    dense = np.linspace(0, sigmas.max() * 1.05, 100)
    axes.plot(
        dense,
        [estimated_fidelity(s, n_modes) for s in dense],
        "-",
        color="0.6",
        lw=1,
        label="exp(−5σ²(N−1))",
    )

    published = sorted(PUBLISHED_FIDELITY)
    axes.plot(
        published,
        [PUBLISHED_FIDELITY[s] for s in published],
        "s",
        mfc="none",
        color="tab:red",
        ms=9,
        label="Fang et al. 2019, grid, N = 256",
    )
    axes.plot(
        published,
        [PUBLISHED_FFT_FIDELITY[s] for s in published],
        "D",
        mfc="none",
        color="tab:purple",
        label="Fang et al. 2019, FFT mesh (not built)",
    )

    axes.set_xlabel("error σ (rad; reflection amplitude)")
    axes.set_ylabel("fidelity |Tr(U†U0)/N|²")
    axes.set_title("Rectangular mesh with phase and coupler errors")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    path = folder / f"{NAME}.png"
    figure.savefig(path, dpi=100)
    return path


def run(context: ReproductionContext) -> Reproduction:
    """Run the fidelity sweep of Fang et al. (2019) at the context's size.

    Raises:
        OSError: if the run folder cannot be written.
    """
    n_modes, trials = SIZES[context.size]
    points = grid_points(
        {"sigma": list(SIGMAS)}, trials, constants={"n_modes": n_modes}
    )
    logger.info("%s: N = %d, %d trials per sigma", NAME, n_modes, trials)
    records = context.run_points(TASK, points, ROOT_SEED)
    fidelities = _statistics(records, "fidelity")
    phase_only = _statistics(records, "fidelity_phase_only")
    coupler_only = _statistics(records, "fidelity_coupler_only")
    reconstruction = max(r["result"]["reconstruction_error"] for r in records)
    comparable = n_modes == PUBLISHED_PORTS

    rows = [
        (
            "| σ | published F (grid, N = 256) | ours: mean F ± std | ours: min–max | "
            "phase errors only | coupler errors only | estimate exp(−5σ²(N−1)) | "
            "published F (FFT mesh) |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    targets = []
    for sigma in SIGMAS:
        values = fidelities[sigma]
        mean = float(values.mean())
        rows.append(
            f"| {sigma:g} | {PUBLISHED_FIDELITY[sigma]:.3f} | {mean:.4f} ± "
            f"{values.std(ddof=1) if values.size > 1 else 0.0:.4f} | "
            f"{values.min():.4f}–{values.max():.4f} | "
            f"{phase_only[sigma].mean():.4f} | {coupler_only[sigma].mean():.4f} | "
            f"{estimated_fidelity(sigma, n_modes):.4f} | "
            f"{PUBLISHED_FFT_FIDELITY[sigma]:.4f} (not built) |"
        )
        published = PUBLISHED_FIDELITY[sigma]
        targets.append(
            TargetCheck(
                quantity=f"mean F, σ = {sigma:g}, N = {n_modes}, {values.size} trials",
                published=f"{published:.3f}",
                measured=f"{mean:.4f}",
                target=(
                    f"within ±{TOLERANCE:g}"
                    if comparable
                    else f"within ±{TOLERANCE:g} at N = {PUBLISHED_PORTS} only"
                ),
                met=abs(mean - published) <= TOLERANCE if comparable else None,
            )
        )

    figure = _plot(context.folder, n_modes, fidelities, phase_only, coupler_only)
    setup = (
        f"A Haar-random target U0 (scipy.stats.unitary_group) is programmed into a "
        f"{n_modes}-port rectangular mesh by the Clements decomposition "
        f"(photonic/decompose.py). Every one of its {n_modes**2} phase shifters (θ, φ "
        "and the output phases) gets an error σ·n rad. Each of its "
        f"{n_modes * (n_modes - 1)} couplers gets the reflection amplitude 1/√2 + σ·n, "
        "realised as the coupling angle arccos(1/√2 + σ·n), with ε ≈ −√2·σ·n to first "
        "order. Every n is an independent standard-normal draw. The mesh is lossless. "
        f"There are {trials} trials per σ, each with its own target and errors, seeded "
        f"from root seed {ROOT_SEED}. The fidelity is F = |Tr(U†U0)/N|². The columns "
        "with one error source reuse the draws of the same trial. The error-free "
        f"device reproduces U0 to max |U − U0| = {reconstruction:.1e}."
    )
    notes = [
        (
            "The FFT-type log-depth mesh of Fang et al. is not built here. Its "
            "published fidelities are listed for reference only."
        ),
        (
            "The estimate exp(−5σ²(N−1)) adds the second-order infidelity of N² "
            "independent phase errors and N(N−1) coupler angle errors of spread √2·σ. "
            "It is an estimate, not a fit."
        ),
    ]
    if not comparable:
        notes.append(
            f"This {context.size} run uses N = {n_modes}, so its fidelities are not "
            f"comparable with the published N = {PUBLISHED_PORTS} values and the "
            "targets are not checked."
        )
    summary = {
        "n_modes": n_modes,
        "trials": trials,
        "sigma": list(SIGMAS),
        "mean_fidelity": [float(fidelities[s].mean()) for s in SIGMAS],
        "std_fidelity": [
            float(fidelities[s].std(ddof=1)) if fidelities[s].size > 1 else 0.0
            for s in SIGMAS
        ],
        "mean_fidelity_phase_only": [float(phase_only[s].mean()) for s in SIGMAS],
        "mean_fidelity_coupler_only": [float(coupler_only[s].mean()) for s in SIGMAS],
        "estimated_fidelity": [estimated_fidelity(s, n_modes) for s in SIGMAS],
        "published_fidelity": [PUBLISHED_FIDELITY[s] for s in SIGMAS],
        "published_fft_fidelity": [PUBLISHED_FFT_FIDELITY[s] for s in SIGMAS],
        "max_reconstruction_error": reconstruction,
    }
    return Reproduction(
        title=(
            "Fidelity of a rectangular mesh with phase and coupler errors "
            "(Fang et al., Opt. Express 27, 14009, 2019)"
        ),
        setup=setup,
        tables=["\n".join(rows)],
        targets=targets,
        figures=[figure],
        summary=summary,
        notes=notes,
    )
