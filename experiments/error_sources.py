"""Gradient error of the measured in situ gradient under each hardware error source alone.

The network is the one of Pai et al., Science 380, 398 (2023): three 4-port triangular
meshes, |z| between layers, outputs grouped as ``[|y0|²+|y1|², |y2|²+|y3|²]`` and a softmax
cross-entropy on those powers. A batch of moons samples, encoded by ``AmplitudeEncoder``,
is launched into meshes with uniform random phases. For every error source, strength and
seed the chip measures the gradient by the three-pass protocol.

The measured gradient is compared with one or both of two references (``REFERENCES``):

- ``device``: the exact gradient of the same realised device with respect to the
  programmed phases, which the controller updates
  (``photonic.reference.programmed_gradients``, with the DAC rounding taken as
  straight-through). This is the reference of the training run. It tests whether the
  measurement matches the device. The monitors measure the gradient with respect to the
  applied phases. Heater gain spread and crosstalk change the map from programmed to
  applied phases, so they give an error although the measurement itself is exact for
  them.
- ``nominal``: the exact gradient of the nominal device, the ideal mesh
  (``RealisedMesh.ideal``) that applies the programmed phases, with no coupler error,
  loss, phase offset, heater gain spread, quantization, crosstalk or drift. Its applied
  phases are the programmed ones, so its gradient needs no conversion. It tests
  whether the device matches its digital model, which is the only gradient a bench
  experiment can compute for a chip whose errors it does not know. Every error source
  moves the measured gradient away from it.

The result is the cosine distance ``1 − ĝ·g`` and the relative L2 error between the
measured gradient and the reference, over the trainable phases of
``PhotonicNetwork.trainable_masks``, the phases that the training run updates and
scores. Every output phase ψ of this network is left out. Each layer's outputs reach the
loss only through their magnitudes, so the exact gradient of ψ is 0 for both references.

Random streams: the phases and the batch of a seed come from
``SeedSequence(seed, spawn_key=(0,))``, so every source and strength of that seed uses the
same network and batch, and the comparison between them is paired. The error draws of one
point come from ``SeedSequence(seed, spawn_key=(1, source index, strength index))``, where
the source index is the position in ``ERROR_SOURCES``. A run of a subset of the sources,
or of one reference, therefore gives the same rows as the full run. Both references are
compared with the same measured gradient.

A run writes a results folder:

- ``error_sources.csv``: one row per reference, source, strength and seed;
- ``summary.md``: mean ± std over seeds per source and strength, for both error measures
  and every reference of the run;
- ``gradient_error_by_source.png`` (device reference) and
  ``gradient_error_by_source_nominal.png`` (nominal reference): the mean cosine distance
  against strength level;
- ``provenance.json``: versions, platform, git commit and the run settings.

``preset_table`` renders every parameter of every hardware preset as the markdown table
of ``docs/hardware.md``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm import tqdm

from experiments.config import NetworkConfig
from experiments.datasets import load_dataset
from experiments.plots import GRADIENT_ERROR_FLOOR
from experiments.provenance import git_commit, package_versions
from photonic.detection import DetectorConfig
from photonic.encoding import AmplitudeEncoder
from photonic.hardware import (
    HARDWARE_PRESETS,
    PASS_NAMES,
    Chip,
    HardwareConfig,
    PassErrors,
    Programming,
    StaticErrors,
)
from photonic.initialization import initial_phases
from photonic.insitu import InSituStep, pass_order, run_pass
from photonic.losses import PowerCrossEntropy
from photonic.mesh import MeshLayout, RealisedMesh
from photonic.network import AbsActivation, PhotonicNetwork
from photonic.reference import exact_gradient, gradient_error, programmed_gradients

logger = logging.getLogger(__name__)

N_MODES = 4
N_LAYERS = 3
OUTPUT_GROUPS = ((0, 1), (2, 3))
LOGIT_SCALE = NetworkConfig().logit_scale
DATASET = "moons"
DEFAULT_SEEDS = 20
DEFAULT_BATCH_SIZE = 32
N_STRENGTHS = 4

REFERENCES = ("device", "nominal")
"""The references that a measured gradient is compared with, in output order."""
REFERENCE_CHOICES = (*REFERENCES, "both")
"""Values of ``run_error_sources(reference=...)`` and of ``--reference``."""

CSV_NAME = "error_sources.csv"
SUMMARY_NAME = "summary.md"
PLOT_NAME = "gradient_error_by_source.png"
PLOT_NAMES = {"device": PLOT_NAME, "nominal": "gradient_error_by_source_nominal.png"}
"""File name of the plot of each reference."""
CSV_COLUMNS = (
    "reference",
    "source",
    "strength",
    "unit",
    "seed",
    "cosine_distance",
    "relative_error",
)

# The drift and monitor settings of the thermo-optic silicon preset, reused so that the
# drift and shot-noise sweeps change one quantity of a realistic configuration.
_CHIP_PRESET = HARDWARE_PRESETS["thermo-optic-si"]
DRIFT = _CHIP_PRESET.drift
SHOT_NOISE_MONITOR = replace(
    _CHIP_PRESET.forward.monitor,
    thermal_noise_a_per_rthz=0.0,
    dark_current_a=0.0,
    adc_bits=None,
)


@dataclass(frozen=True)
class ErrorSource:
    """One hardware error source, switched on alone and swept over four strengths.

    Attributes:
        key: identifier of the source in the CSV and on the command line.
        label: name of the source in tables and plots.
        unit: unit of the strength ("1" for a dimensionless ratio).
        strengths: four strengths, weakest first.
        build: maps a strength to the hardware config with only this source on.
        panel: title of the plot panel that shows the source.
        loss_correction: whether the measurement rescales each gradient by the nominal
            power transmission to its shifter (``InSituStep(loss_correction=True)``).
        time_gap: whether the strength is a time gap in s: the forward passes run at
            t = 0 and the adjoint and interference passes at t = strength.
    """

    key: str
    label: str
    unit: str
    strengths: tuple[float, ...]
    build: Callable[[float], HardwareConfig]
    panel: str
    loss_correction: bool = False
    time_gap: bool = False

    def __post_init__(self) -> None:
        if not self.key or not self.label or not self.unit:
            raise ValueError(
                f"error source {self.key!r}: key, label and unit must not be empty"
            )
        if len(self.strengths) != N_STRENGTHS:
            raise ValueError(
                f"error source {self.key!r}: strengths = {self.strengths!r} has "
                f"{len(self.strengths)} values; it must have {N_STRENGTHS}"
            )
        if not all(
            isinstance(s, (int, float)) and math.isfinite(s) and s >= 0
            for s in self.strengths
        ):
            raise ValueError(
                f"error source {self.key!r}: strengths = {self.strengths!r} is invalid; "
                "every strength must be a finite number >= 0"
            )


def _on_every_pass(**values: Any) -> HardwareConfig:
    """Return a config with the same pass errors on the forward, adjoint and interference
    passes and nothing else."""
    errors = PassErrors(**values)
    return HardwareConfig(forward=errors, adjoint=errors, interference=errors)


def _static(**values: Any) -> HardwareConfig:
    return HardwareConfig(static=StaticErrors(**values))


_LOSSLESS = "lossless static and programming errors"
_LOSS = "optical loss"
_PASS_NOISE = "per-pass noise"
_DETECTION = "monitor detection and drift"
PANELS = (_LOSSLESS, _LOSS, _PASS_NOISE, _DETECTION)

ERROR_SOURCES: tuple[ErrorSource, ...] = (
    ErrorSource(
        "coupler-angle",
        "coupler splitting error ε std",
        "rad",
        (0.01, 0.02, 0.05, 0.1),
        lambda s: _static(coupler_error_std=s),
        _LOSSLESS,
    ),
    ErrorSource(
        "coupler-ratio",
        "coupler ratio std",
        "1",
        (0.01, 0.02, 0.04, 0.06),
        lambda s: _static(coupler_ratio_std=s),
        _LOSSLESS,
    ),
    ErrorSource(
        "phase-offset",
        "phase offset std",
        "rad",
        (0.01, 0.05, 0.1, 0.5),
        lambda s: _static(phase_offset_std=s),
        _LOSSLESS,
    ),
    ErrorSource(
        "heater-gain",
        "heater gain spread σ_γ/γ",
        "1",
        (0.002, 0.01, 0.02, 0.05),
        lambda s: _static(heater_gain_std=s),
        _LOSSLESS,
    ),
    ErrorSource(
        "quantization",
        "phase DAC bits",
        "bits",
        (8, 6, 5, 4),
        lambda s: HardwareConfig(programming=Programming(phase_bits=int(s))),
        _LOSSLESS,
    ),
    ErrorSource(
        "crosstalk",
        "thermal crosstalk",
        "1",
        (0.005, 0.01, 0.02, 0.05),
        lambda s: HardwareConfig(programming=Programming(crosstalk=s)),
        _LOSSLESS,
    ),
    ErrorSource(
        "mzi-loss",
        "MZI insertion loss",
        "dB",
        (0.05, 0.1, 0.25, 0.5),
        lambda s: _static(mzi_loss_db=s),
        _LOSS,
    ),
    ErrorSource(
        "mzi-loss-corrected",
        "MZI insertion loss, loss correction",
        "dB",
        (0.05, 0.1, 0.25, 0.5),
        lambda s: _static(mzi_loss_db=s),
        _LOSS,
        loss_correction=True,
    ),
    ErrorSource(
        "arm-imbalance",
        "MZI arm imbalance std",
        "dB",
        (0.02, 0.05, 0.1, 0.25),
        lambda s: _static(arm_imbalance_db_std=s),
        _LOSS,
    ),
    ErrorSource(
        "waveguide-loss",
        "waveguide loss per column",
        "dB",
        (0.01, 0.05, 0.1, 0.25),
        lambda s: _static(waveguide_loss_db=s),
        _LOSS,
    ),
    ErrorSource(
        "waveguide-loss-corrected",
        "waveguide loss per column, loss correction",
        "dB",
        (0.01, 0.05, 0.1, 0.25),
        lambda s: _static(waveguide_loss_db=s),
        _LOSS,
        loss_correction=True,
    ),
    ErrorSource(
        "phase-noise",
        "per-pass phase noise std",
        "rad",
        (0.001, 0.005, 0.01, 0.05),
        lambda s: _on_every_pass(phase_noise_std=s),
        _PASS_NOISE,
    ),
    ErrorSource(
        "input-amplitude",
        "input amplitude error a",
        "1",
        (0.005, 0.01, 0.02, 0.05),
        lambda s: _on_every_pass(input_amplitude_error=s),
        _PASS_NOISE,
    ),
    ErrorSource(
        "input-phase",
        "input phase error p (std π·p rad)",
        "1",
        (0.005, 0.01, 0.02, 0.05),
        lambda s: _on_every_pass(input_phase_error=s),
        _PASS_NOISE,
    ),
    ErrorSource(
        "output-amplitude",
        "output amplitude error a",
        "1",
        (0.005, 0.01, 0.02, 0.05),
        lambda s: _on_every_pass(output_amplitude_error=s),
        _PASS_NOISE,
    ),
    ErrorSource(
        "output-phase",
        "output phase error p (std π·p rad)",
        "1",
        (0.005, 0.01, 0.02, 0.05),
        lambda s: _on_every_pass(output_phase_error=s),
        _PASS_NOISE,
    ),
    ErrorSource(
        "monitor-noise",
        "monitor noise K (P + √(K·P)·n)",
        "launched power",
        (0.001, 0.005, 0.01, 0.02),
        lambda s: _on_every_pass(monitor=DetectorConfig.pai2023(s)),
        _DETECTION,
    ),
    ErrorSource(
        "shot-noise",
        "monitor shot noise, launch power",
        "W",
        (1e-3, 1e-5, 1e-7, 1e-9),
        lambda s: _on_every_pass(monitor=replace(SHOT_NOISE_MONITOR, launch_power_w=s)),
        _DETECTION,
    ),
    ErrorSource(
        "drift",
        "drift, forward-to-interference gap",
        "s",
        (0.01, 0.1, 1.0, 10.0),
        lambda s: HardwareConfig(drift=DRIFT),
        _DETECTION,
        time_gap=True,
    ),
)
"""Every swept source. A source's position here is part of its random-stream key."""

_SOURCE_INDEX = {source.key: index for index, source in enumerate(ERROR_SOURCES)}


def error_source(key: str) -> ErrorSource:
    """Return the error source called ``key``.

    Raises:
        ValueError: if no source has that key.
    """
    try:
        return ERROR_SOURCES[_SOURCE_INDEX[key]]
    except KeyError:
        raise ValueError(
            f"error source {key!r} does not exist; known sources: "
            + ", ".join(_SOURCE_INDEX)
        ) from None


@dataclass(frozen=True)
class Problem:
    """The network phases and the batch that every source and strength of one seed uses.

    Attributes:
        phases: programmed phases (θ, φ, ψ) in rad of each layer.
        x: encoded input fields ``(batch, N_MODES)``.
        labels: class labels of the batch.
    """

    phases: tuple[np.ndarray, ...]
    x: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class PointResult:
    """Gradient error of one source at one strength for one seed against one reference
    (one CSV row)."""

    reference: str
    source: str
    strength: float
    unit: str
    seed: int
    cosine_distance: float
    relative_error: float


@dataclass
class ErrorSourcesResult:
    """A finished run: its folder, its references, every point, and the markdown
    summary."""

    folder: Path
    references: tuple[str, ...]
    points: list[PointResult]
    summary: str


def references_of(choice: str) -> tuple[str, ...]:
    """Return the references that a ``reference`` choice selects, in ``REFERENCES``
    order: ``"both"`` selects every reference.

    Raises:
        ValueError: for a choice outside ``REFERENCE_CHOICES``.
    """
    if choice == "both":
        return REFERENCES
    if choice in REFERENCES:
        return (choice,)
    raise ValueError(
        f"reference {choice!r} is unknown; choose one of {', '.join(REFERENCE_CHOICES)}"
    )


def _check_references(references: Sequence[str]) -> tuple[str, ...]:
    """Return ``references`` as a tuple after checking that it is a non-empty list of
    distinct known references."""
    references = tuple(references)
    if not references:
        raise ValueError("the list of references is empty; give at least one")
    for reference in references:
        if reference not in REFERENCES:
            known = ", ".join(REFERENCES)
            raise ValueError(f"reference {reference!r} is unknown; choose from {known}")
    if len(set(references)) != len(references):
        raise ValueError(f"references {references!r} contain a repeated reference")
    return references


def encoded_moons() -> tuple[np.ndarray, np.ndarray]:
    """Return the encoded training fields ``(samples, N_MODES)`` and labels of the moons
    data set (500 samples, noise 0.2, seed 0, 80/20 split), one unit of power per sample."""
    dataset = load_dataset(DATASET)
    encoder = AmplitudeEncoder(N_MODES).fit(dataset.x_train)
    return encoder.transform(dataset.x_train), dataset.y_train


def make_problem(
    seed: int, inputs: np.ndarray, labels: np.ndarray, batch_size: int
) -> Problem:
    """Draw the uniform random phases of every layer and a batch of samples for a seed.

    Raises:
        ValueError: if the batch is larger than the number of samples.
    """
    if not 1 <= batch_size <= len(inputs):
        raise ValueError(
            f"batch_size = {batch_size} is out of range; it must be in [1, {len(inputs)}]"
        )
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    rows = np.sort(rng.choice(len(inputs), size=batch_size, replace=False))
    layout = MeshLayout.create(N_MODES, "triangular")
    phases = tuple(initial_phases("uniform", layout, rng) for _ in range(N_LAYERS))
    return Problem(phases=phases, x=inputs[rows], labels=labels[rows])


def measure_point(
    source: ErrorSource,
    level: int,
    seed: int,
    problem: Problem,
    reference: str = "device",
) -> tuple[float, float]:
    """Measure the gradient on a chip with one source at one strength, against one
    reference (see ``measure_point_errors``).

    Returns:
        The cosine distance ``1 − ĝ·g`` and the relative L2 error of the trainable
        phases, between the measured gradient and the exact gradient of ``reference``.

    Raises:
        ValueError: if ``source`` is not in ``ERROR_SOURCES``, ``level`` is out of range
            or ``reference`` is not in ``REFERENCES``.
    """
    errors = measure_point_errors(source, level, seed, problem, (reference,))
    return errors[reference]


def measure_point_errors(
    source: ErrorSource,
    level: int,
    seed: int,
    problem: Problem,
    references: Sequence[str] = REFERENCES,
) -> dict[str, tuple[float, float]]:
    """Measure the gradient on a chip with one source at one strength once, and compare
    it with the exact gradient of every reference in ``references``.

    ``device`` is the reference of ``Trainer.train_step``, the exact gradient of the
    realised devices. Its gradient with respect to the applied phases is converted by
    ``Chip.programmed_gradient`` to the programmed phases that the controller updates:
    heater gain ⊙ (I + c·A) · ∂L/∂φ_applied. The DAC rounding is taken as
    straight-through. The devices are taken before any pass runs. For drift these are
    the devices of the forward passes, because drift starts at 0 at time 0.

    ``nominal`` is the exact gradient of the ideal mesh applying the programmed phases
    (``RealisedMesh.ideal``): 50:50 couplers, no loss, no offsets, no quantization, no
    heater gain spread, no crosstalk and no drift. Its applied phases are the programmed
    ones, so no conversion applies.

    Both errors are taken over the trainable phases only
    (``PhotonicNetwork.trainable_masks``, the masks of the training run), so the inert
    output phases ψ, whose exact gradient is 0, do not add their measurement noise.

    Returns:
        For every reference, the cosine distance ``1 − ĝ·g`` and the relative L2 error
        of the trainable phases between the measured gradient and its exact gradient.

    Raises:
        ValueError: if ``source`` is not in ``ERROR_SOURCES``, if ``level`` is out of
            range, or if ``references`` is empty, repeats a reference or contains one
            outside ``REFERENCES``.
    """
    references = _check_references(references)
    network, devices = _build_network(source, level, seed, problem)
    measured = _measure_gradients(network, source, level, problem)
    masks = network.trainable_masks()
    masked_measured = _trainable_phases(measured, masks)
    errors = {}
    for reference in references:
        exact = _reference_gradients(reference, network, devices, problem)
        errors[reference] = gradient_error(
            masked_measured, _trainable_phases(exact, masks)
        )
    return errors


def _build_network(
    source: ErrorSource, level: int, seed: int, problem: Problem
) -> tuple[PhotonicNetwork, list[RealisedMesh]]:
    """Build the network of one point with its chips drawn from the point's random
    stream, and return it with its realised devices before any pass runs."""
    index = _SOURCE_INDEX.get(source.key)
    if index is None or ERROR_SOURCES[index] is not source:
        raise ValueError(
            f"error source {source.key!r} is not in ERROR_SOURCES; its random stream "
            "is keyed by its position there"
        )
    if not 0 <= level < N_STRENGTHS:
        raise ValueError(
            f"strength level {level} is out of range; it must be in [0, {N_STRENGTHS - 1}]"
        )
    hardware = source.build(source.strengths[level])
    sequence = np.random.SeedSequence(seed, spawn_key=(1, index, level))
    layout = MeshLayout.create(N_MODES, "triangular")
    chips = [
        Chip(layout, hardware, chip_sequence, phases=phases)
        for chip_sequence, phases in zip(sequence.spawn(N_LAYERS), problem.phases)
    ]
    loss = PowerCrossEntropy(N_MODES, OUTPUT_GROUPS, LOGIT_SCALE)
    network = PhotonicNetwork(chips, AbsActivation(), loss)
    return network, network.devices()


def _measure_gradients(
    network: PhotonicNetwork, source: ErrorSource, level: int, problem: Problem
) -> list[np.ndarray]:
    """Run the three passes of every layer and return the measured gradients."""
    step = InSituStep(network, problem.x, problem.labels, source.loss_correction)
    for kind, layer in pass_order(N_LAYERS):
        time_s = None
        if source.time_gap:
            time_s = 0.0 if kind == "forward" else float(source.strengths[level])
        run_pass(step, kind, layer, time_s)
    return step.result().gradients


def _reference_gradients(
    reference: str,
    network: PhotonicNetwork,
    devices: Sequence[RealisedMesh],
    problem: Problem,
) -> list[np.ndarray]:
    """Return the exact gradient of ``reference`` with respect to the programmed phases
    of every layer."""
    if reference == "device":
        exact = exact_gradient(
            devices, network.activation, network.loss, problem.x, problem.labels
        )
        # The monitors measure the gradient with respect to the applied phases, but the
        # controller updates the programmed ones, so the reference is converted to them.
        return programmed_gradients(network.chips, exact.gradients)
    nominal = [RealisedMesh.ideal(chip.layout, chip.phases) for chip in network.chips]
    exact = exact_gradient(
        nominal, network.activation, network.loss, problem.x, problem.labels
    )
    return exact.gradients


def _trainable_phases(
    gradients: Sequence[np.ndarray], masks: Sequence[np.ndarray]
) -> np.ndarray:
    """Concatenate the gradients of the phases that ``masks`` marks as trainable."""
    return np.concatenate(
        [gradient[mask] for gradient, mask in zip(gradients, masks, strict=True)]
    )


def measure_error_sources(
    sources: Sequence[ErrorSource],
    seeds: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    references: Sequence[str] = ("device",),
) -> list[PointResult]:
    """Measure every source at every strength for seeds 0 … seeds − 1, against every
    reference in ``references``.

    Each point is measured once and compared with every reference. The points are
    returned grouped by reference, in the order of ``references``, then by source,
    strength and seed.

    Raises:
        ValueError: for fewer than one seed, an empty source list, a batch size out of
            range, or an empty, repeated or unknown reference.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds = {seeds!r} is invalid; it must be an integer >= 1")
    if not sources:
        raise ValueError("the list of error sources is empty; give at least one")
    references = _check_references(references)
    inputs, labels = encoded_moons()
    problems = [make_problem(seed, inputs, labels, batch_size) for seed in range(seeds)]
    total = len(sources) * N_STRENGTHS * seeds
    points: dict[str, list[PointResult]] = {reference: [] for reference in references}
    with tqdm(
        total=total, desc="error sources", unit="point", disable=not progress
    ) as bar:
        for source in sources:
            for level, strength in enumerate(source.strengths):
                for seed, problem in enumerate(problems):
                    errors = measure_point_errors(
                        source, level, seed, problem, references
                    )
                    for reference, (cosine, relative) in errors.items():
                        points[reference].append(
                            PointResult(
                                reference,
                                source.key,
                                float(strength),
                                source.unit,
                                seed,
                                cosine,
                                relative,
                            )
                        )
                    bar.update()
    return [point for reference in references for point in points[reference]]


def _single_reference(points: Sequence[PointResult], reference: str | None) -> str:
    """Return the reference to show: ``reference`` if given and present in ``points``,
    else the only reference of ``points``."""
    present = [r for r in REFERENCES if any(p.reference == r for p in points)]
    if reference is None:
        if len(present) != 1:
            raise ValueError(
                f"the points contain the references {', '.join(present) or 'none'}; "
                "pass reference= with the one to show"
            )
        return present[0]
    if reference not in present:
        raise ValueError(
            f"no point has reference {reference!r}; the points contain "
            f"{', '.join(present) or 'none'}"
        )
    return reference


def _levels_by_source(
    points: Sequence[PointResult], metric: str, reference: str
) -> dict[str, list[np.ndarray]]:
    """Group the values of ``metric`` against ``reference`` by source and strength
    level, in registry order."""
    grouped: dict[str, list[list[float]]] = {}
    for point in points:
        if point.reference != reference:
            continue
        source = error_source(point.source)
        if point.strength not in source.strengths:
            raise ValueError(
                f"strength {point.strength!r} of source {point.source!r} is not one of "
                f"its strengths {source.strengths!r}"
            )
        level = source.strengths.index(point.strength)
        per_level = grouped.setdefault(point.source, [[] for _ in range(N_STRENGTHS)])
        per_level[level].append(getattr(point, metric))
    ordered = sorted(grouped, key=_SOURCE_INDEX.__getitem__)
    return {key: [np.array(values) for values in grouped[key]] for key in ordered}


def _mean_and_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
    if values.size == 0:
        return math.nan, math.nan
    std = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    return float(np.mean(values)), std


METRICS = {
    "cosine_distance": "gradient error 1 − ĝ·g",
    "relative_error": "relative L2 error |ĝ − g| / |g|",
}

REFERENCE_TITLES = {
    "device": "device reference: exact gradient of the realised device with respect to "
    "the programmed phases",
    "nominal": "nominal reference: exact gradient of the ideal device programmed with "
    "the same phases",
}
"""Heading of the tables of each reference."""
_REFERENCE_NOTES = {
    "device": "This is the reference of the training run. The gradient with respect to "
    "the applied phases is converted to the programmed phases through the heater gains "
    "and the crosstalk, and the DAC rounding is taken as straight-through.",
    "nominal": "The ideal device has 50:50 couplers and no loss, phase offsets, heater "
    "gain spread, quantization, crosstalk or drift, so its applied phases are the "
    "programmed ones.",
}


def format_summary_table(
    points: Sequence[PointResult],
    metric: str = "cosine_distance",
    reference: str | None = None,
) -> str:
    """Render a markdown table of ``metric`` against one reference: one row per source,
    one column per strength, each cell ``strength: mean ± std`` over seeds (sample
    standard deviation).

    Args:
        points: results of a run.
        metric: a key of ``METRICS``.
        reference: the reference whose points are shown; None takes the only reference
            of ``points``.

    Raises:
        ValueError: for an unknown metric, a point of an unknown source or strength, a
            reference that no point has, or None when the points have several
            references.
    """
    if metric not in METRICS:
        raise ValueError(
            f"metric {metric!r} is unknown; choose one of {', '.join(METRICS)}"
        )
    reference = _single_reference(points, reference)
    header = ["key", "source", "unit"] + [
        f"strength {level + 1}" for level in range(N_STRENGTHS)
    ]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for key, per_level in _levels_by_source(points, metric, reference).items():
        source = error_source(key)
        cells = [f"`{key}`", source.label, source.unit]
        for strength, values in zip(source.strengths, per_level):
            mean, std = _mean_and_std(values)
            cells.append(f"{strength:g}: {mean:.1e} ± {std:.0e}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_summary(points: Sequence[PointResult]) -> str:
    """Render ``summary.md``: the tables of both error measures for every reference of
    ``points``, with their settings."""
    seeds = sorted({point.seed for point in points})
    references = [r for r in REFERENCES if any(p.reference == r for p in points)]
    parts = [
        "# Gradient error by error source",
        "",
        (
            f"Mean ± sample standard deviation over {len(seeds)} seeds "
            f"({seeds[0]}–{seeds[-1]}). Each source is switched on alone. Strength 1 "
            "is the weakest. Both errors are taken over the trainable phases, so the "
            "output phases ψ, whose exact gradient is 0, are left out. A cosine "
            "distance of order 1e-16, including a small negative value, is exact up to "
            "rounding."
        ),
    ]
    for reference in references:
        parts += [
            "",
            f"## {REFERENCE_TITLES[reference]}",
            "",
            _REFERENCE_NOTES[reference],
        ]
        for metric, title in METRICS.items():
            parts += [
                "",
                f"### {title}",
                "",
                format_summary_table(points, metric, reference),
            ]
    return "\n".join(parts) + "\n"


def write_csv(points: Sequence[PointResult], path: Path) -> None:
    """Write one CSV row per point with the columns ``CSV_COLUMNS``.

    Floats are written by ``repr``, the shortest text that reads back to the same double,
    so equal runs give byte-identical files.
    """
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for point in points:
            writer.writerow(
                [
                    point.reference,
                    point.source,
                    repr(point.strength),
                    point.unit,
                    point.seed,
                    repr(point.cosine_distance),
                    repr(point.relative_error),
                ]
            )


_MARKERS = ("o", "s", "^", "v", "D", "P")
# Legend location of each panel, in a region that the default run leaves empty. Against
# the device reference, the lossless panel has the heater gain and crosstalk lines above
# 1e-6 and the other lines at the floor, and the loss panel has lines at the top and at
# the floor. Against the nominal reference every line lies above 1e-8. In both, the
# noise lines rise to the top.
_LEGEND_LOCATIONS = {
    "device": {
        _LOSSLESS: "center",
        _LOSS: "center right",
        _PASS_NOISE: "lower right",
        _DETECTION: "lower right",
    },
    "nominal": {
        _LOSSLESS: "lower right",
        _LOSS: "lower right",
        _PASS_NOISE: "lower right",
        _DETECTION: "lower right",
    },
}
_PLOT_TITLES = {
    "device": "against the exact gradient of the realised device with respect to the "
    "programmed phases",
    "nominal": "against the exact gradient of the nominal device (ideal mesh, same "
    "programmed phases)",
}


def plot_gradient_error_by_source(
    points: Sequence[PointResult], path: Path, reference: str | None = None
) -> Path:
    """Plot the mean cosine distance over seeds against strength level, one line a source.

    One panel per group of sources (``PANELS``), x = strength level 1 … 4 (the physical
    strengths are in each legend entry), log y. Means below ``GRADIENT_ERROR_FLOOR``,
    including zeros and the small negative values that rounding produces, are drawn at the
    floor, and the y-axis label states the floor.

    Args:
        points: results of a run.
        path: PNG file to write; its folder is created if missing.
        reference: the reference whose points are plotted; None takes the only
            reference of ``points``.

    Raises:
        ValueError: if ``points`` is empty, if no point has ``reference``, or if
            ``reference`` is None and the points have several references.
    """
    if not points:
        raise ValueError("no points to plot; the run produced no results")
    reference = _single_reference(points, reference)
    by_source = _levels_by_source(points, "cosine_distance", reference)
    figure = Figure(figsize=(12.0, 8.5), layout="constrained")
    axes_grid = figure.subplots(2, 2, sharex=True, sharey=True)
    levels = np.arange(1, N_STRENGTHS + 1)
    for axes, panel in zip(axes_grid.flat, PANELS):
        keys = [key for key in by_source if error_source(key).panel == panel]
        for index, key in enumerate(keys):
            source = error_source(key)
            means = np.array([_mean_and_std(v)[0] for v in by_source[key]])
            strengths = ", ".join(f"{s:g}" for s in source.strengths)
            unit = "" if source.unit == "1" else f" {source.unit}"
            axes.plot(
                levels,
                np.maximum(means, GRADIENT_ERROR_FLOOR),
                marker=_MARKERS[index % len(_MARKERS)],
                linestyle="-" if index < len(_MARKERS) else "--",
                label=f"{source.label} ({strengths}{unit})",
            )
        axes.set_title(panel)
        axes.set_yscale("log")
        axes.set_ylim(GRADIENT_ERROR_FLOOR / 3, 3.0)
        axes.set_xticks(levels)
        axes.grid(True, which="major", alpha=0.3)
        if keys:
            axes.legend(fontsize=8, loc=_LEGEND_LOCATIONS[reference][panel])
        # Lines at rounding level coincide at the floor, and only the last one drawn
        # stays visible, so the panel states how many lie there.
        exact_keys = [
            key
            for key in keys
            if all(abs(_mean_and_std(values)[0]) < 1e-12 for values in by_source[key])
        ]
        if len(exact_keys) > 1:
            axes.text(
                0.5,
                0.12,
                f"{len(exact_keys)} lines overlap at rounding level: the measured\n"
                "gradient is exact for these sources",
                transform=axes.transAxes,
                ha="center",
                fontsize=8,
            )
    for axes in axes_grid[1]:
        axes.set_xlabel("strength level (1 = weakest)")
    for axes in axes_grid[:, 0]:
        axes.set_ylabel(f"mean 1 − ĝ·g (values < {GRADIENT_ERROR_FLOOR:g} drawn at it)")
    seeds = len({point.seed for point in points if point.reference == reference})
    figure.suptitle(
        f"Gradient error of the measured in situ gradient {_PLOT_TITLES[reference]}\n"
        f"One source at a time (3 × 4-port triangular meshes, moons, mean of {seeds} "
        "seeds)"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=80, pil_kwargs={"optimize": True})
    return path


def make_run_folder(root: str | Path) -> Path:
    """Create a new folder ``root/error-sources-<timestamp>`` (suffixed if it exists)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"error-sources-{stamp}"
    folder, counter = base, 1
    while folder.exists():
        folder = base.with_name(f"{base.name}-{counter}")
        counter += 1
    folder.mkdir(parents=True)
    return folder


def run_error_sources(
    folder: str | Path,
    seeds: int = DEFAULT_SEEDS,
    sources: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    reference: str = "device",
) -> ErrorSourcesResult:
    """Measure the gradient error of every source and write the results into ``folder``.

    Args:
        folder: folder that receives the files; created if missing, files in it are
            overwritten.
        seeds: number of seeds, 0 … seeds − 1.
        sources: keys of the sources to run, in any order; None runs ``ERROR_SOURCES``.
        batch_size: samples per measured gradient.
        progress: whether to show a tqdm progress bar.
        reference: "device", "nominal" or "both" (``REFERENCE_CHOICES``); the exact
            gradient that the measured one is compared with (see
            ``measure_point_errors``). With "both" every point is measured once and
            compared with both, and the folder contains the tables and the plot of each.

    Raises:
        ValueError: for an unknown source key or reference, fewer than one seed or a
            batch size out of range.
    """
    references = references_of(reference)
    selected = (
        list(ERROR_SOURCES)
        if sources is None
        else sorted(
            (error_source(key) for key in dict.fromkeys(sources)),
            key=lambda source: _SOURCE_INDEX[source.key],
        )
    )
    folder = Path(folder)
    logger.info(
        "error sources: %d sources, %d seeds, batch %d, references %s, results in %s",
        len(selected),
        seeds,
        batch_size,
        ", ".join(references),
        folder,
    )
    points = measure_error_sources(selected, seeds, batch_size, progress, references)
    summary = _write_results(folder, points, selected, references, seeds, batch_size)
    logger.info("error sources: %d points written to %s", len(points), folder)
    return ErrorSourcesResult(
        folder=folder, references=references, points=points, summary=summary
    )


def _write_results(
    folder: Path,
    points: list[PointResult],
    sources: Sequence[ErrorSource],
    references: Sequence[str],
    seeds: int,
    batch_size: int,
) -> str:
    """Write the CSV, the summary, one plot per reference and the provenance; return
    the summary."""
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(points, folder / CSV_NAME)
    summary = format_summary(points)
    (folder / SUMMARY_NAME).write_text(summary, encoding="utf-8")
    for reference in references:
        plot_gradient_error_by_source(points, folder / PLOT_NAMES[reference], reference)
    provenance = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_commit(),
        "settings": {
            "seeds": seeds,
            "batch_size": batch_size,
            "dataset": DATASET,
            "sources": [source.key for source in sources],
            "references": list(references),
        },
    }
    (folder / "provenance.json").write_text(
        json.dumps(provenance, indent=2) + "\n", encoding="utf-8"
    )
    return summary


_NO_SOURCE = "—"
_PAI_2023 = "Pai et al., Science 380, 398 (2023)"
_L2IGHT = "L2ight / pytorch-onn default"

# Unit and source of every parameter of a hardware preset. Pass parameters are named
# without their pass. The sources are the ones the comments of photonic/hardware.py and
# photonic/detection.py give. "estimate" marks a value without a published source.
# _NO_SOURCE marks a parameter that keeps its default in every preset.
_PARAMETER_NOTES: dict[str, tuple[str, str]] = {
    "static.coupler_error_mean": ("rad", _NO_SOURCE),
    "static.coupler_error_std": ("rad", _NO_SOURCE),
    "static.coupler_ratio_std": (
        "1",
        "inside the 2–6 % spread of fabricated splitters (no publication named)",
    ),
    "static.phase_offset_std": ("rad", "estimate"),
    "static.mzi_loss_db": (
        "dB",
        (
            f"bench: listed with the noise model of the {_PAI_2023} simulation; "
            "thermo-optic-si: Harris et al., Opt. Express 2014"
        ),
    ),
    "static.mzi_loss_db_std": (
        "dB",
        (
            f"bench: listed with the noise model of the {_PAI_2023} simulation; "
            "thermo-optic-si: estimate"
        ),
    ),
    "static.arm_imbalance_db_std": ("dB", "estimate"),
    "static.waveguide_loss_db": ("dB per column", "estimate"),
    "static.heater_gain_std": ("1", _L2IGHT),
    "programming.phase_bits": ("bits", f"8-bit DAC: {_L2IGHT}"),
    "programming.domain": ("—", "thermo-optic shifters, φ = γV²"),
    "programming.v_pi": ("V", f"{_L2IGHT}; used only in the voltage domain"),
    "programming.v_max": ("V", "none means √2·V_π, which reaches 2π"),
    "programming.rounding": ("—", _NO_SOURCE),
    "programming.crosstalk": ("1", f"nearest neighbour: {_L2IGHT}"),
    "programming.settling_time_constant_s": (
        "s",
        "1.22 µs = 1/(2π·130 kHz), the 3-dB bandwidth of Harris et al., Opt. Express 2014",
    ),
    "drift.model": ("—", "estimate"),
    "drift.std": ("rad (Ornstein–Uhlenbeck) or rad/√s (random walk)", "estimate"),
    "drift.correlation_time_s": ("s", "estimate"),
    "phase_noise_std": ("rad", "estimate"),
    "input_amplitude_error": (
        "1",
        f"estimate inside the range 0–0.05 of the {_PAI_2023} simulation",
    ),
    "input_phase_error": (
        "1 (phase std π·p rad)",
        f"estimate inside the range 0–0.05 of the {_PAI_2023} simulation",
    ),
    "output_amplitude_error": (
        "1",
        f"estimate inside the range 0–0.05 of the {_PAI_2023} simulation",
    ),
    "output_phase_error": (
        "1 (phase std π·p rad)",
        f"estimate inside the range 0–0.05 of the {_PAI_2023} simulation",
    ),
}
_DETECTOR_NOTES: dict[str, tuple[str, str]] = {
    "launch_power_w": ("W", "estimate (0 dBm laser)"),
    "tap_fraction": ("1", "estimate (monitor taps 1–5 %)"),
    "responsivity_a_per_w": ("A/W", "estimate (Ge-on-Si, 1550 nm)"),
    "bandwidth_hz": ("Hz", "estimate"),
    "shot_noise": ("—", "Schottky formula 2·q·I·B"),
    "thermal_noise_a_per_rthz": ("A/√Hz", "estimate (amplifier input noise)"),
    "dark_current_a": ("A", "estimate (Ge-on-Si at −1 V)"),
    "adc_bits": ("bits", "estimate"),
    "adc_full_scale_w": ("W", "none means launch power × tap fraction"),
    "pai_k": (
        "launched power",
        f"bench: inside the range 0–0.02 of the {_PAI_2023} simulation",
    ),
}
for _name, _notes in _DETECTOR_NOTES.items():
    _PARAMETER_NOTES[f"monitor.{_name}"] = _notes
    _PARAMETER_NOTES[f"output_detector.{_name}"] = _notes
_PARAMETER_NOTES["output_detector.tap_fraction"] = (
    "1",
    "1: all the light reaches an output detector",
)
_PARAMETER_NOTES["output_detector.dark_current_a"] = ("A", _NO_SOURCE)
_PARAMETER_NOTES["output_detector.pai_k"] = ("launched power", _NO_SOURCE)


def _flatten(config: HardwareConfig) -> dict[str, Any]:
    """Map ``section.field`` (and ``pass.detector.field``) to its value."""
    flat: dict[str, Any] = {}
    for section, values in config.to_dict().items():
        for name, value in values.items():
            if isinstance(value, dict):
                for detector_field, item in value.items():
                    flat[f"{section}.{name}.{detector_field}"] = item
            else:
                flat[f"{section}.{name}"] = value
    return flat


def _format_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        mantissa, _, exponent = f"{value:g}".partition("e")
        return f"{mantissa}e{int(exponent)}" if exponent else mantissa
    return str(value)


def _preset_rows(
    flat: dict[str, dict[str, Any]],
) -> list[tuple[str, str, dict[str, Any]]]:
    """Rows (parameter, notes key, value per preset). A pass parameter that is equal on
    the three passes of every preset becomes one ``passes.…`` row."""
    any_preset = next(iter(flat.values()))
    rows = []
    for parameter in any_preset:
        section, _, rest = parameter.partition(".")
        if section not in PASS_NAMES:
            rows.append(
                (parameter, parameter, {p: v[parameter] for p, v in flat.items()})
            )
            continue
        if section != PASS_NAMES[0]:
            continue
        same_on_every_pass = all(
            len({repr(values[f"{name}.{rest}"]) for name in PASS_NAMES}) == 1
            for values in flat.values()
        )
        names = ("passes",) if same_on_every_pass else PASS_NAMES
        for name in names:
            source_pass = PASS_NAMES[0] if name == "passes" else name
            values = {p: v[f"{source_pass}.{rest}"] for p, v in flat.items()}
            rows.append((f"{name}.{rest}", rest, values))
    return rows


def preset_table() -> str:
    """Render every parameter of every preset in ``HARDWARE_PRESETS`` as a markdown table
    with its unit and source, one column per preset.

    Raises:
        ValueError: if a parameter has no unit and source in the notes of this module, or
            a preset sets a parameter away from its default without a recorded source.
    """
    flat = {name: _flatten(config) for name, config in HARDWARE_PRESETS.items()}
    defaults = _flatten(HardwareConfig())
    header = ["parameter", "unit", *HARDWARE_PRESETS, "source"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for parameter, notes_key, values in _preset_rows(flat):
        if notes_key not in _PARAMETER_NOTES:
            raise ValueError(
                f"hardware parameter {parameter!r} has no unit and source in "
                "_PARAMETER_NOTES of experiments/error_sources.py; add them"
            )
        unit, source = _PARAMETER_NOTES[notes_key]
        default_key = parameter.replace("passes.", f"{PASS_NAMES[0]}.", 1)
        changed = [p for p, v in values.items() if v != defaults[default_key]]
        if changed and source == _NO_SOURCE:
            raise ValueError(
                f"preset {changed[0]!r} sets {parameter} = {values[changed[0]]!r} but "
                "no source is recorded for it; add one to _PARAMETER_NOTES"
            )
        cells = [f"`{parameter}`", unit, *map(_format_value, values.values()), source]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
