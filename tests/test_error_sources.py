"""Gradient error by error source: the results folder, the physics of each source
against the device and the nominal reference, the command line and the preset table of
docs/hardware.md."""

from __future__ import annotations

import csv
import itertools
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest

from experiments import error_sources
from experiments.cli import main
from experiments.error_sources import (
    CSV_COLUMNS,
    CSV_NAME,
    DEFAULT_SEEDS,
    ERROR_SOURCES,
    LOGIT_SCALE,
    N_LAYERS,
    N_MODES,
    OUTPUT_GROUPS,
    PLOT_NAME,
    PLOT_NAMES,
    REFERENCE_CHOICES,
    REFERENCES,
    SUMMARY_NAME,
    ErrorSource,
    PointResult,
    encoded_moons,
    error_source,
    format_summary_table,
    make_problem,
    measure_error_sources,
    measure_point,
    measure_point_errors,
    preset_table,
    references_of,
    run_error_sources,
)
from photonic.detection import DetectorConfig
from photonic.hardware import (
    Chip,
    Drift,
    HardwareConfig,
    PassErrors,
    Programming,
    StaticErrors,
)
from photonic.insitu import InSituStep, pass_order, run_pass
from photonic.losses import PowerCrossEntropy
from photonic.mesh import MeshLayout, RealisedMesh
from photonic.network import AbsActivation, PhotonicNetwork
from photonic.reference import (
    exact_gradient,
    gradient_error,
    programmed_gradients,
)

ROOT = Path(__file__).resolve().parent.parent
SEEDS = 2
# Sources under which the measured gradient equals the programmed-phase gradient. The
# mesh stays unitary, or its uniform loss is corrected, and the map from programmed to
# applied phases has a unit Jacobian, with quantization taken as straight-through.
EXACT = (
    "coupler-angle",
    "coupler-ratio",
    "phase-offset",
    "quantization",
    "waveguide-loss-corrected",
)
# Lossless sources that scale or couple the programmed phases, which the monitors do not
# see.
PROGRAMMING_MAP = ("heater-gain", "crosstalk")
SUBSET = (*EXACT, *PROGRAMMING_MAP, "mzi-loss", "phase-noise", "drift")
# Seeds of the nominal-reference sweep over every source. The coupler splitting error
# needs the most. Seeds 1 and 4 have small nominal gradients (norm near 1, median near
# 8), so one draw of the errors can turn them far and the next draw little. They
# dominate its mean at the two weakest strengths. Over seeds 0 … n − 1 every mean rises
# strictly for each n from 48 to 160, and at 48 seeds the smallest ratio of consecutive
# means of any source is 1.34.
NOMINAL_SEEDS = 48


def _column(
    points: list[PointResult],
    key: str,
    level: int,
    metric: str,
    reference: str = "device",
) -> np.ndarray:
    strength = error_source(key).strengths[level]
    return np.array(
        [
            getattr(p, metric)
            for p in points
            if p.source == key and p.strength == strength and p.reference == reference
        ]
    )


@pytest.fixture(scope="module")
def tiny_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> error_sources.ErrorSourcesResult:
    folder = tmp_path_factory.mktemp("tiny")
    return run_error_sources(
        folder, seeds=SEEDS, sources=SUBSET, progress=False, reference="both"
    )


@pytest.fixture(scope="module")
def nominal_points() -> list[PointResult]:
    return measure_error_sources(
        ERROR_SOURCES, NOMINAL_SEEDS, progress=False, references=("nominal",)
    )


def test_tiny_run_writes_csv_summary_and_plots(tiny_run):
    folder = tiny_run.folder
    with (folder / CSV_NAME).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) - 1 == len(REFERENCES) * len(SUBSET) * 4 * SEEDS
    assert {row[0] for row in rows[1:]} == set(REFERENCES)
    summary = (folder / SUMMARY_NAME).read_text(encoding="utf-8")
    for key in SUBSET:
        # two error measures for each of the two references
        assert summary.count(f"| `{key}` |") == 4
    for reference in REFERENCES:
        image = (folder / PLOT_NAMES[reference]).read_bytes()
        assert image.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(image) < 150_000


def test_csv_rows_are_grouped_by_reference(tiny_run):
    with (tiny_run.folder / CSV_NAME).open(encoding="utf-8", newline="") as handle:
        references = [row[0] for row in list(csv.reader(handle))[1:]]
    half = len(references) // 2
    assert references[:half] == ["device"] * half
    assert references[half:] == ["nominal"] * half


def test_device_plot_keeps_its_file_name():
    assert PLOT_NAMES["device"] == PLOT_NAME


def test_mzi_loss_error_increases_over_strengths(tiny_run):
    means = [
        _column(tiny_run.points, "mzi-loss", level, "cosine_distance").mean()
        for level in range(4)
    ]
    assert means[0] > 1e-6
    for weaker, stronger in itertools.pairwise(means):
        assert stronger > weaker


@pytest.mark.parametrize("key", EXACT)
def test_exact_source_gives_exact_gradient(tiny_run, key):
    for level in range(4):
        cosine = _column(tiny_run.points, key, level, "cosine_distance")
        relative = _column(tiny_run.points, key, level, "relative_error")
        assert cosine.size == SEEDS
        assert np.max(np.abs(cosine)) < 1e-9
        assert np.max(relative) < 1e-9


@pytest.mark.parametrize("metric", ["cosine_distance", "relative_error"])
@pytest.mark.parametrize("key", PROGRAMMING_MAP)
def test_programming_map_error_rises(tiny_run, key, metric):
    means = [_column(tiny_run.points, key, level, metric).mean() for level in range(4)]
    assert means[0] > 1e-9
    for weaker, stronger in itertools.pairwise(means):
        assert stronger > weaker


@pytest.mark.parametrize("key", ["phase-noise", "drift"])
def test_noisy_source_error_grows(tiny_run, key):
    weakest = _column(tiny_run.points, key, 0, "cosine_distance").mean()
    strongest = _column(tiny_run.points, key, 3, "cosine_distance").mean()
    assert weakest > 0
    assert strongest > 10 * weakest


def test_same_seeds_give_identical_csv(tiny_run, tmp_path):
    again = run_error_sources(
        tmp_path, seeds=SEEDS, sources=SUBSET, progress=False, reference="both"
    )
    first = (tiny_run.folder / CSV_NAME).read_bytes()
    second = (again.folder / CSV_NAME).read_bytes()
    assert first == second


@pytest.mark.parametrize("reference", REFERENCES)
def test_source_rows_do_not_depend_on_other_sources(tiny_run, tmp_path, reference):
    alone = run_error_sources(
        tmp_path,
        seeds=SEEDS,
        sources=["mzi-loss"],
        progress=False,
        reference=reference,
    )
    together = [
        p
        for p in tiny_run.points
        if p.source == "mzi-loss" and p.reference == reference
    ]
    assert alone.references == (reference,)
    assert alone.points == together


def test_unknown_source_key_raises():
    with pytest.raises(ValueError, match="'no-such-source' does not exist"):
        run_error_sources("unused", seeds=1, sources=["no-such-source"])


def test_unknown_reference_raises(tmp_path):
    with pytest.raises(ValueError, match="reference 'digital' is unknown"):
        run_error_sources(tmp_path, seeds=1, sources=["mzi-loss"], reference="digital")
    assert list(tmp_path.iterdir()) == []


def test_references_of_both_is_every_reference():
    assert references_of("both") == REFERENCES
    assert references_of("nominal") == ("nominal",)
    assert REFERENCE_CHOICES == ("device", "nominal", "both")


def test_measure_point_rejects_unknown_reference():
    inputs, labels = encoded_moons()
    problem = make_problem(0, inputs, labels, 4)
    with pytest.raises(ValueError, match="reference 'both' is unknown"):
        measure_point(error_source("mzi-loss"), 0, 0, problem, reference="both")


def test_measure_point_errors_rejects_repeated_reference():
    inputs, labels = encoded_moons()
    problem = make_problem(0, inputs, labels, 4)
    with pytest.raises(ValueError, match="repeated reference"):
        measure_point_errors(
            error_source("mzi-loss"), 0, 0, problem, ("nominal", "nominal")
        )


def test_zero_seeds_raise(tmp_path):
    with pytest.raises(ValueError, match="seeds = 0 is invalid"):
        run_error_sources(tmp_path, seeds=0, sources=["mzi-loss"])


def test_error_source_needs_four_strengths():
    with pytest.raises(ValueError, match="it must have 4"):
        ErrorSource("x", "x", "rad", (0.1, 0.2, 0.3), lambda s: HardwareConfig(), "p")


def test_measure_point_rejects_source_outside_registry():
    inputs, labels = encoded_moons()
    problem = make_problem(0, inputs, labels, 4)
    copy = replace(error_source("mzi-loss"), label="a copy")
    with pytest.raises(ValueError, match="not in ERROR_SOURCES"):
        measure_point(copy, 0, 0, problem)


def _measure_directly(key: str, level: int, seed: int, batch_size: int):
    """Rebuild one point of the sweep from its random streams. Return its problem, its
    network, and the measured and exact gradients of every layer."""
    inputs, labels = encoded_moons()
    problem = make_problem(seed, inputs, labels, batch_size)
    source = error_source(key)
    index = [s.key for s in ERROR_SOURCES].index(key)
    strength = source.strengths[level]
    hardware = source.build(strength)
    sequence = np.random.SeedSequence(seed, spawn_key=(1, index, level))
    layout = MeshLayout.create(N_MODES, "triangular")
    chips = [
        Chip(layout, hardware, chip_sequence, phases=phases)
        for chip_sequence, phases in zip(sequence.spawn(N_LAYERS), problem.phases)
    ]
    loss = PowerCrossEntropy(N_MODES, OUTPUT_GROUPS, LOGIT_SCALE)
    network = PhotonicNetwork(chips, AbsActivation(), loss)
    devices = network.devices()
    step = InSituStep(network, problem.x, problem.labels, source.loss_correction)
    for kind, layer in pass_order(N_LAYERS):
        time_s = None
        if source.time_gap:
            time_s = 0.0 if kind == "forward" else float(strength)
        run_pass(step, kind, layer, time_s)
    exact = exact_gradient(
        devices, network.activation, network.loss, problem.x, problem.labels
    )
    return problem, network, step.result().gradients, exact.gradients


def test_point_error_is_over_trainable_phases():
    key, level, seed, batch_size = "phase-noise", 3, 1, 8
    problem, network, measured, exact = _measure_directly(key, level, seed, batch_size)
    masks = network.trainable_masks()
    # Every output phase ψ is inert, because |z| follows layers 0 and 1 and the loss
    # detects the powers of layer 2.
    n_mzis = MeshLayout.create(N_MODES, "triangular").n_mzis
    for mask in masks:
        assert mask[: 2 * n_mzis].all()
        assert not mask[2 * n_mzis :].any()
    reference = programmed_gradients(network.chips, exact)
    masked_measured = np.concatenate([g[m] for g, m in zip(measured, masks)])
    masked_reference = np.concatenate([g[m] for g, m in zip(reference, masks)])
    expected = gradient_error(masked_measured, masked_reference)

    point = measure_point(error_source(key), level, seed, problem)

    assert point[0] == expected[0]
    assert point[1] == expected[1]
    # Phase noise gives the inert phases a nonzero measured gradient, so an error over
    # all phases differs and this test fails if the mask is dropped.
    all_phases = gradient_error(np.concatenate(measured), np.concatenate(reference))
    assert all_phases[0] != point[0]
    assert all_phases[1] != point[1]


def _programmed_by_hand(
    chip: Chip, applied: np.ndarray, crosstalk: float
) -> np.ndarray:
    """Apply the chain rule γ ⊙ (I + c·A)ᵀ · ∂L/∂φ_applied for heater gains γ, with the
    neighbour matrix A written out, to applied = (I + c·A)·(γ ⊙ programmed) + offsets."""
    neighbours = np.zeros((chip.n_phases, chip.n_phases))
    for first, second in chip.layout.shifter_neighbours():
        neighbours[first, second] = 1.0
        neighbours[second, first] = 1.0
    jacobian = np.eye(chip.n_phases) + crosstalk * neighbours
    return chip.heater_gain * (jacobian.T @ applied)


@pytest.mark.parametrize("key", PROGRAMMING_MAP)
def test_point_reference_is_programmed_gradient(key):
    level, seed, batch_size = 3, 1, 8
    problem, network, measured, exact = _measure_directly(key, level, seed, batch_size)
    masks = network.trainable_masks()
    crosstalk = network.chips[0].hardware.programming.crosstalk
    reference = [
        _programmed_by_hand(chip, gradient, crosstalk)
        for chip, gradient in zip(network.chips, exact)
    ]
    masked_measured = np.concatenate([g[m] for g, m in zip(measured, masks)])
    masked_applied = np.concatenate([g[m] for g, m in zip(exact, masks)])
    masked_reference = np.concatenate([g[m] for g, m in zip(reference, masks)])
    expected = gradient_error(masked_measured, masked_reference)

    point = measure_point(error_source(key), level, seed, problem)

    assert point[0] == pytest.approx(expected[0], rel=1e-9)
    assert point[1] == pytest.approx(expected[1], rel=1e-9)
    # The monitors see the applied phases, so the measurement matches the applied
    # gradient to rounding and the whole error comes from the programmed reference.
    applied_error = gradient_error(masked_measured, masked_applied)
    assert abs(applied_error[0]) < 1e-9
    assert applied_error[1] < 1e-9
    assert point[1] > 1e-3


@pytest.mark.parametrize("key", [source.key for source in ERROR_SOURCES])
def test_nominal_error_rises_with_strength(nominal_points, key):
    means = []
    for level in range(4):
        cosine = _column(nominal_points, key, level, "cosine_distance", "nominal")
        assert cosine.size == NOMINAL_SEEDS
        means.append(cosine.mean())
    assert means[0] > 1e-9
    for weaker, stronger in itertools.pairwise(means):
        assert stronger > weaker


def test_nominal_reference_is_ideal_device_gradient():
    key, level, seed, batch_size = "coupler-angle", 3, 1, 8
    problem, network, measured, _ = _measure_directly(key, level, seed, batch_size)
    masks = network.trainable_masks()
    layout = MeshLayout.create(N_MODES, "triangular")
    ideal = [RealisedMesh.ideal(layout, phases) for phases in problem.phases]
    nominal = exact_gradient(
        ideal, network.activation, network.loss, problem.x, problem.labels
    )
    masked_measured = np.concatenate([g[m] for g, m in zip(measured, masks)])
    masked_nominal = np.concatenate([g[m] for g, m in zip(nominal.gradients, masks)])
    expected = gradient_error(masked_measured, masked_nominal)

    errors = measure_point_errors(error_source(key), level, seed, problem)

    assert errors["nominal"] == expected
    # The coupler errors leave the measurement exact for the realised device.
    assert abs(errors["device"][0]) < 1e-9
    assert errors["device"][1] < 1e-9
    assert errors["nominal"][1] > 1e-3


@pytest.mark.parametrize("key", ["phase-noise", "monitor-noise", "drift"])
def test_nominal_equals_device_without_device_errors(key):
    # Per-pass noise and drift leave the devices before the first pass ideal, so the
    # two references are the same gradient.
    inputs, labels = encoded_moons()
    problem = make_problem(2, inputs, labels, 8)
    errors = measure_point_errors(error_source(key), 3, 2, problem)
    assert errors["nominal"] == errors["device"]
    assert errors["nominal"][0] > 1e-9


@pytest.mark.parametrize("reference", REFERENCES)
def test_measure_point_matches_measure_point_errors(reference):
    inputs, labels = encoded_moons()
    problem = make_problem(0, inputs, labels, 8)
    source = error_source("heater-gain")
    both = measure_point_errors(source, 2, 0, problem)
    assert measure_point(source, 2, 0, problem, reference) == both[reference]


def test_error_source_keys_are_unique():
    keys = [source.key for source in ERROR_SOURCES]
    assert len(keys) == len(set(keys))


def test_quantization_strengths_run_from_most_to_fewest_bits():
    assert error_source("quantization").strengths == (8, 6, 5, 4)


def test_summary_cell_shows_mean_and_sample_std():
    points = [
        PointResult("device", "mzi-loss", 0.05, "dB", seed, value, 0.0)
        for seed, value in enumerate((0.1, 0.3))
    ]
    table = format_summary_table(points)
    # mean 0.2, sample standard deviation 0.1·√2 = 0.141
    assert "| 0.05: 2.0e-01 ± 1e-01 |" in table
    assert table.splitlines()[2].startswith("| `mzi-loss` | MZI insertion loss | dB |")


def test_summary_table_of_mixed_references_needs_a_reference():
    points = [
        PointResult(reference, "mzi-loss", 0.05, "dB", 0, value, 0.0)
        for reference, value in zip(REFERENCES, (0.1, 0.3))
    ]
    with pytest.raises(ValueError, match="pass reference="):
        format_summary_table(points)
    assert "| 0.05: 3.0e-01 ± 0e+00 |" in format_summary_table(
        points, reference="nominal"
    )
    with pytest.raises(ValueError, match="no point has reference 'nominal'"):
        format_summary_table(points[:1], reference="nominal")


def test_cli_error_sources_prints_table_and_writes_folder(tmp_path, capsys):
    status = main(
        [
            "error-sources",
            "--seeds",
            "1",
            "--results-dir",
            str(tmp_path),
            "--no-progress",
            "-q",
        ]
    )
    assert status == 0
    output = capsys.readouterr().out
    assert output.startswith("gradient error 1 − ĝ·g, device reference:")
    assert output.count("| key | source | unit | strength 1 |") == 1
    for source in ERROR_SOURCES:
        assert f"| `{source.key}` |" in output
    (folder,) = tmp_path.iterdir()
    for name in (CSV_NAME, SUMMARY_NAME, PLOT_NAME):
        assert (folder / name).is_file()
    assert not (folder / PLOT_NAMES["nominal"]).exists()


def _row_means(table: str, key: str) -> list[float]:
    """Return the four means of the row of ``key`` in a printed summary table."""
    row = table.split(f"| `{key}` |")[1].splitlines()[0]
    cells = [cell.strip() for cell in row.strip(" |").split("|")][2:]
    return [float(cell.split(": ")[1].split(" ± ")[0]) for cell in cells]


def test_cli_reference_both_prints_two_tables(tmp_path, capsys):
    status = main(
        [
            "error-sources",
            "--seeds",
            "1",
            "--reference",
            "both",
            "--results-dir",
            str(tmp_path),
            "--no-progress",
            "-q",
        ]
    )
    assert status == 0
    output = capsys.readouterr().out
    assert output.count("| key | source | unit | strength 1 |") == 2
    device_at = output.index("device reference:")
    nominal_at = output.index("nominal reference:")
    assert device_at < nominal_at
    # Coupler errors leave the measurement exact for the device, not for its model.
    device_means = _row_means(output[device_at:nominal_at], "coupler-angle")
    nominal_means = _row_means(output[nominal_at:], "coupler-angle")
    assert max(abs(mean) for mean in device_means) < 1e-9
    assert min(nominal_means) > 1e-9
    (folder,) = tmp_path.iterdir()
    for reference in REFERENCES:
        assert (folder / PLOT_NAMES[reference]).is_file()


def test_cli_rejects_unknown_reference(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["error-sources", "--reference", "ideal", "--results-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "invalid choice: 'ideal'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_error_sources_rejects_zero_seeds(tmp_path, capsys):
    status = main(["error-sources", "--seeds", "0", "--results-dir", str(tmp_path)])
    assert status == 2
    assert "--seeds 0 is invalid" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_help_states_default_seeds(capsys):
    with pytest.raises(SystemExit):
        main(["error-sources", "--help"])
    assert f"(default: {DEFAULT_SEEDS})" in capsys.readouterr().out


def test_cli_reference_choices_match_module(capsys):
    with pytest.raises(SystemExit):
        main(["error-sources", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--reference {" + ",".join(REFERENCE_CHOICES) + "}" in help_text


def test_preset_table_has_one_row_per_parameter():
    table_rows = preset_table().splitlines()[2:]
    pass_fields = [
        f for f in fields(PassErrors) if f.name not in ("monitor", "output_detector")
    ]
    expected = (
        len(fields(StaticErrors))
        + len(fields(Programming))
        + len(fields(Drift))
        + len(pass_fields)
        + 2 * len(fields(DetectorConfig))
    )
    assert len(table_rows) == expected


def test_preset_table_matches_hardware_doc():
    doc = (ROOT / "docs" / "hardware.md").read_text(encoding="utf-8")
    assert preset_table() in doc


def test_preset_value_without_source_raises(monkeypatch):
    unsourced = HardwareConfig(static=StaticErrors(coupler_error_std=0.1))
    monkeypatch.setitem(error_sources.HARDWARE_PRESETS, "unsourced", unsourced)
    with pytest.raises(ValueError, match="static.coupler_error_std = 0.1"):
        preset_table()


def test_preset_table_splits_differing_passes(monkeypatch):
    split = HardwareConfig(adjoint=PassErrors(output_phase_error=0.02))
    monkeypatch.setitem(error_sources.HARDWARE_PRESETS, "split", split)
    table = preset_table()
    assert "| `adjoint.output_phase_error` |" in table
    assert "| `forward.output_phase_error` |" in table
    assert "| `passes.output_phase_error` |" not in table
    assert "| `passes.phase_noise_std` |" in table
