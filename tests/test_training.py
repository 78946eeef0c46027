"""The train experiment end to end: accuracy on real data, results folder, determinism."""

import json
from dataclasses import replace

import numpy as np
import pytest

from experiments.config import load_config
from experiments.train import run_training

from experiments.config import BUNDLED_CONFIGS as CONFIGS


def run(config, tmp_path):
    return run_training(config, tmp_path, progress=False)


@pytest.fixture(scope="module")
def moons_runs(tmp_path_factory):
    config = load_config(str(CONFIGS / "moons-ideal.toml"))
    root = tmp_path_factory.mktemp("moons")
    return [run(config.with_overrides(seed=seed), root) for seed in range(5)]


def test_moons_ideal_mean_test_accuracy(moons_runs):
    photonic = [r.summary["photonic"]["test_accuracy"] for r in moons_runs]
    digital = [r.summary["digital"]["test_accuracy"] for r in moons_runs]
    print(f"photonic {photonic}, digital {digital}")
    assert np.mean(photonic) >= 0.92, f"photonic test accuracies {photonic}"


def test_moons_ideal_measured_gradient_is_exact(moons_runs):
    # The ideal chip is lossless and noiseless, so the three-pass gradient equals the
    # exact one up to rounding.
    for result in moons_runs:
        assert result.summary["gradient_error"]["relative_error_median"] < 1e-9


def test_iris_ideal_test_accuracy(tmp_path):
    result = run(load_config(str(CONFIGS / "iris-ideal.toml")), tmp_path)
    assert result.summary["photonic"]["test_accuracy"] >= 0.90
    assert result.summary["digital"]["test_accuracy"] > 0


def test_results_folder_contents(moons_runs):
    folder = moons_runs[0].folder
    for name in [
        "config.toml",
        "provenance.json",
        "metrics.jsonl",
        "steps.jsonl",
        "baseline.jsonl",
        "summary.json",
        "checkpoint.npz",
        "step_report.json",
        "training.png",
        "gradient_error.png",
        "timeline.png",
        "energy.png",
    ]:
        assert (folder / name).is_file(), name
    epochs = (folder / "metrics.jsonl").read_text().splitlines()
    assert len(epochs) == 61  # epoch 0 and 60 training epochs
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["seed"] == 0
    assert "numpy" in provenance["packages"]


def test_resolved_config_reruns_identically(moons_runs, tmp_path):
    first = moons_runs[0]
    config = load_config(first.folder / "config.toml").with_overrides(epochs=3)
    a = run(config, tmp_path / "a")
    b = run(config, tmp_path / "b")
    strip = ("wall_time_s",)
    rows_a = [{k: v for k, v in r.items() if k not in strip} for r in a.photonic]
    rows_b = [{k: v for k, v in r.items() if k not in strip} for r in b.photonic]
    assert rows_a == rows_b
    assert a.digital == b.digital


def test_summary_reports_hardware_time_and_energy(moons_runs):
    step = moons_runs[0].summary["hardware_step"]
    assert step["optical_passes"] == 9
    assert step["step_time_s"] > 0
    assert step["energy_j"] == pytest.approx(
        sum(step["energy_by_component_j"].values())
    )


def test_bench_preset_gradient_error_is_reported(tmp_path):
    config = load_config(str(CONFIGS / "moons-bench.toml")).with_overrides(epochs=2)
    result = run(config, tmp_path)
    cosine = result.summary["gradient_error"]["cosine_distance_median"]
    assert cosine > 1e-3, (
        "loss and noise on the chip must make the measured gradient deviate"
    )


def test_mesh_too_small_for_features_is_rejected(tmp_path):
    config = load_config(str(CONFIGS / "iris-ideal.toml"))
    config = replace(
        config, network=replace(config.network, n_modes=4, output_groups=None)
    )
    with pytest.raises(ValueError, match="n_modes = 4 is too small"):
        run(config, tmp_path)


def test_interrupt_during_baseline_marks_summary(tmp_path, monkeypatch):
    import experiments.train as train_module

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train_digital_baseline", interrupt)
    config = load_config(str(CONFIGS / "moons-ideal.toml")).with_overrides(epochs=2)
    with pytest.raises(train_module.RunInterrupted) as caught:
        run(config, tmp_path)
    summary = json.loads((caught.value.folder / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["stage"] == "digital baseline"
    assert summary["completed_epochs"] == 2
    assert len((caught.value.folder / "metrics.jsonl").read_text().splitlines()) == 3


def test_output_phases_before_magnitudes_are_not_trained(moons_runs):
    summary = moons_runs[0].summary["photonic"]
    # Three 4-port layers: 16 phases each, of which the 4 output phases only rotate fields
    # that are then detected as magnitudes or powers.
    assert summary["n_phases"] == 48
    assert summary["n_trained_phases"] == 36
