"""Tests of the schedule experiment: its config, results folder, plots and command."""

from __future__ import annotations

import csv
import json

import pytest

from experiments.cli import main
from experiments.schedule import ScheduleConfig, load_schedule_config
from simulator import (
    ScheduleShape,
    energy_by_phase,
    plot_batch_sweep,
    plot_energy_by_phase,
    plot_trace_timeline,
    simulate_schedule,
    system_preset,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SMALL_CONFIG = """\
name = "small"
n_modes = 4
n_layers = 2
batch_size = 4
n_steps = 2
batch_sweep = [1, 16]

[system]
preset = "electro-optic-chip"

[system.controller]
cores = 2

[physics]
hardware = "bench"
batch_size = 4
fd_parameters = 6
"""


# Config


def test_config_defaults():
    config = ScheduleConfig()

    assert (config.n_modes, config.n_layers) == (64, 2)
    assert config.methods == ("in-situ", "in-situ-4", "finite-difference", "hybrid")
    assert config.architectures == ("time-multiplexed", "pipelined")


def test_config_reads_toml(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL_CONFIG, encoding="utf-8")
    config = load_schedule_config(path)

    assert config.system.name == "electro-optic-chip"
    assert config.system.controller.cores == 2
    assert config.physics.hardware == "bench"
    assert config.shape == ScheduleShape(4, 2, 4)


def test_config_round_trips_toml(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL_CONFIG, encoding="utf-8")
    config = load_schedule_config(path)
    again = tmp_path / "again.toml"
    again.write_text(config.to_toml(), encoding="utf-8")

    assert load_schedule_config(again) == config


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"batch": 4}, "'batch'"),
        ({"settings": {"tolerance": 0.1}}, "'tolerance'"),
        ({"physics": {"hardwre": "bench"}}, "'hardwre'"),
        ({"system": {"laser": {"watts": 1}}}, "'watts'"),
        ({"methods": ["in-situ", "guess"]}, "'guess'"),
        ({"architectures": []}, "architectures"),
        ({"n_modes": 1}, "n_modes"),
        ({"physics": {"hardware": "quantum"}}, "'quantum'"),
        ({"settings": {"fd_step_rad": -0.1}}, "fd_step_rad"),
    ],
)
def test_config_rejects_invalid(values, message):
    with pytest.raises(ValueError, match=message):
        ScheduleConfig.from_mapping(values)


def test_unknown_key_message_lists_allowed():
    with pytest.raises(ValueError) as error:
        ScheduleConfig.from_mapping({"batch": 4})

    assert "batch_size" in str(error.value)


def test_documented_example_loads(tmp_path):
    import experiments.schedule

    example = experiments.schedule.__doc__.split("```toml\n")[1].split("```")[0]
    path = tmp_path / "example.toml"
    path.write_text(example, encoding="utf-8")
    config = load_schedule_config(path)

    assert config.system.phase_shifters.dac_channels == 128
    assert config.physics.fd_parameters == 256
    assert config.settings.settle_tolerance_rad == 0.01


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.toml"):
        load_schedule_config(tmp_path / "missing.toml")


# Command


def test_schedule_command_writes_results(tmp_path, capsys):
    config_path = tmp_path / "small.toml"
    config_path.write_text(SMALL_CONFIG, encoding="utf-8")

    status = main(["-q", "schedule", str(config_path), "--results-dir", str(tmp_path)])
    output = capsys.readouterr().out

    assert status == 0
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    for name in (
        "config.toml",
        "provenance.json",
        "summary.json",
        "energy.csv",
        "latency.csv",
        "batch_sweep.csv",
        "batch_sweep.png",
        "timeline-pipelined-in-situ.png",
        "energy-time-multiplexed-finite-difference.png",
    ):
        assert (folder / name).is_file(), name
    assert "pipelined/in-situ" in output
    assert "finite differences / in situ" in output

    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    in_situ = summary["results"]["pipelined/in-situ"]
    finite = summary["results"]["pipelined/finite-difference"]
    assert in_situ["optical_passes_per_gradient"] == 6
    assert finite["optical_passes_per_gradient"] == 2 * 2 * 16
    assert finite["gradient_error"]["n_compared"] == 6
    four_pass = summary["results"]["pipelined/in-situ-4"]["gradient_error"]
    assert four_pass["n_compared"] == in_situ["gradient_error"]["n_compared"]
    assert four_pass["relative_error"] >= 0
    ratio = summary["finite_difference_over_in_situ"]["pipelined"]
    assert ratio["step_time"] == pytest.approx(
        finite["step_time_s"] / in_situ["step_time_s"]
    )

    with (folder / "energy.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    total = sum(
        float(row["energy_per_step_j"])
        for row in rows
        if row["label"] == "pipelined/in-situ"
    )
    assert total == pytest.approx(in_situ["energy_per_step_j"], rel=1e-12)


def test_schedule_command_rejects_unknown_key(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nbatchsize = 3\n', encoding="utf-8")

    status = main(["-q", "schedule", str(path), "--results-dir", str(tmp_path)])

    assert status == 2
    assert "'batchsize'" in capsys.readouterr().err
    assert not list(tmp_path.glob("x-*"))


def test_schedule_command_rejects_invalid_toml(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("name = \n", encoding="utf-8")

    assert main(["-q", "schedule", str(path)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


# Plots


@pytest.fixture(scope="module")
def small_result():
    return simulate_schedule(
        system_preset("thermo-optic-chip"),
        "pipelined",
        "in-situ",
        ScheduleShape(4, 2, 3),
        n_steps=2,
    )


def test_plot_trace_timeline_writes_png(tmp_path, small_result):
    path = plot_trace_timeline(small_result.trace, tmp_path / "timeline.png")

    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_plot_energy_by_phase_writes_png(tmp_path, small_result):
    table = energy_by_phase(small_result.trace)
    path = plot_energy_by_phase(table, tmp_path / "energy.png")

    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_plot_batch_sweep_writes_png(tmp_path):
    curves = {"a": [(1, 10.0, 1e-3), (4, 40.0, 3e-4)], "b": [(1, 5.0, 2e-3)]}
    path = plot_batch_sweep(curves, tmp_path / "sweep.png")

    assert path.read_bytes()[:8] == PNG_SIGNATURE
