"""Gradient error by error source: the results folder, the physics of each source, the
command line and the preset table of docs/hardware.md."""

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
    PLOT_NAME,
    SUMMARY_NAME,
    ErrorSource,
    PointResult,
    encoded_moons,
    error_source,
    format_summary_table,
    make_problem,
    measure_point,
    preset_table,
    run_error_sources,
)
from photonic.detection import DetectorConfig
from photonic.hardware import (
    Drift,
    HardwareConfig,
    PassErrors,
    Programming,
    StaticErrors,
)

ROOT = Path(__file__).resolve().parent.parent
SEEDS = 2
LOSSLESS = (
    "coupler-angle",
    "coupler-ratio",
    "phase-offset",
    "heater-gain",
    "quantization",
    "crosstalk",
    "waveguide-loss-corrected",
)
SUBSET = (*LOSSLESS, "mzi-loss", "phase-noise", "drift")


def _column(points: list[PointResult], key: str, level: int, metric: str) -> np.ndarray:
    strength = error_source(key).strengths[level]
    return np.array(
        [
            getattr(p, metric)
            for p in points
            if p.source == key and p.strength == strength
        ]
    )


@pytest.fixture(scope="module")
def tiny_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> error_sources.ErrorSourcesResult:
    folder = tmp_path_factory.mktemp("tiny")
    return run_error_sources(folder, seeds=SEEDS, sources=SUBSET, progress=False)


def test_tiny_run_writes_csv_summary_and_plot(tiny_run):
    folder = tiny_run.folder
    with (folder / CSV_NAME).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) - 1 == len(SUBSET) * 4 * SEEDS
    summary = (folder / SUMMARY_NAME).read_text(encoding="utf-8")
    for key in SUBSET:
        assert summary.count(f"| `{key}` |") == 2
    image = (folder / PLOT_NAME).read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(image) < 150_000


def test_mzi_loss_error_increases_over_strengths(tiny_run):
    means = [
        _column(tiny_run.points, "mzi-loss", level, "cosine_distance").mean()
        for level in range(4)
    ]
    assert means[0] > 1e-6
    for weaker, stronger in itertools.pairwise(means):
        assert stronger > weaker


@pytest.mark.parametrize("key", LOSSLESS)
def test_lossless_source_gives_exact_gradient(tiny_run, key):
    for level in range(4):
        cosine = _column(tiny_run.points, key, level, "cosine_distance")
        relative = _column(tiny_run.points, key, level, "relative_error")
        assert cosine.size == SEEDS
        assert np.max(np.abs(cosine)) < 1e-9
        assert np.max(relative) < 1e-9


@pytest.mark.parametrize("key", ["phase-noise", "drift"])
def test_noise_and_drift_error_grows_from_weakest_to_strongest(tiny_run, key):
    weakest = _column(tiny_run.points, key, 0, "cosine_distance").mean()
    strongest = _column(tiny_run.points, key, 3, "cosine_distance").mean()
    assert weakest > 0
    assert strongest > 10 * weakest


def test_same_seeds_give_identical_csv(tiny_run, tmp_path):
    again = run_error_sources(tmp_path, seeds=SEEDS, sources=SUBSET, progress=False)
    first = (tiny_run.folder / CSV_NAME).read_bytes()
    second = (again.folder / CSV_NAME).read_bytes()
    assert first == second


def test_source_rows_do_not_depend_on_other_sources(tiny_run, tmp_path):
    alone = run_error_sources(
        tmp_path, seeds=SEEDS, sources=["mzi-loss"], progress=False
    )
    together = [p for p in tiny_run.points if p.source == "mzi-loss"]
    assert alone.points == together


def test_unknown_source_key_raises():
    with pytest.raises(ValueError, match="'no-such-source' does not exist"):
        run_error_sources("unused", seeds=1, sources=["no-such-source"])


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


def test_error_source_keys_are_unique():
    keys = [source.key for source in ERROR_SOURCES]
    assert len(keys) == len(set(keys))


def test_quantization_strengths_run_from_most_to_fewest_bits():
    assert error_source("quantization").strengths == (8, 6, 5, 4)


def test_summary_cell_shows_mean_and_sample_std():
    points = [
        PointResult("mzi-loss", 0.05, "dB", seed, value, 0.0)
        for seed, value in enumerate((0.1, 0.3))
    ]
    table = format_summary_table(points)
    # mean 0.2, sample standard deviation 0.1·√2 = 0.141
    assert "| 0.05: 2.0e-01 ± 1e-01 |" in table
    assert table.splitlines()[2].startswith("| `mzi-loss` | MZI insertion loss | dB |")


def test_cli_error_sources_prints_table_and_writes_folder(tmp_path, capsys):
    status = main(
        [
            "error-sources",
            "--seeds",
            "1",
            "--results-dir",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert status == 0
    output = capsys.readouterr().out
    assert output.startswith("| key | source | unit | strength 1 |")
    for source in ERROR_SOURCES:
        assert f"| `{source.key}` |" in output
    (folder,) = tmp_path.iterdir()
    for name in (CSV_NAME, SUMMARY_NAME, PLOT_NAME):
        assert (folder / name).is_file()


def test_cli_error_sources_rejects_zero_seeds(tmp_path, capsys):
    status = main(["error-sources", "--seeds", "0", "--results-dir", str(tmp_path)])
    assert status == 2
    assert "--seeds 0 is invalid" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_help_states_default_seeds(capsys):
    with pytest.raises(SystemExit):
        main(["error-sources", "--help"])
    assert f"(default: {DEFAULT_SEEDS})" in capsys.readouterr().out


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


def test_pass_parameter_that_differs_between_passes_gets_one_row_per_pass(monkeypatch):
    split = HardwareConfig(adjoint=PassErrors(output_phase_error=0.02))
    monkeypatch.setitem(error_sources.HARDWARE_PRESETS, "split", split)
    table = preset_table()
    assert "| `adjoint.output_phase_error` |" in table
    assert "| `forward.output_phase_error` |" in table
    assert "| `passes.output_phase_error` |" not in table
    assert "| `passes.phase_noise_std` |" in table
