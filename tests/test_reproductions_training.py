"""Training reproductions: the toy sets of Pai et al. (2023), the ring of Hughes et al.
(2018) and offline training against in situ training. Determinism and invariants of
their point functions and shared training pieces, and a smoke run of each."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from experiments.config import ExperimentConfig
from experiments.datasets import Dataset
from experiments.reproduce import run_reproduction
from experiments.reproductions import hughes2018_ring, offline_vs_insitu, pai2023_toy
from experiments.reproductions.training import (
    PointSeeds,
    accuracy,
    build_config,
    deploy,
    load_encoded,
    merge_mappings,
    network_on,
    spread,
    train_in_situ,
    train_offline,
)
from experiments.train import resolve_config
from photonic.hardware import HardwareConfig, hardware_preset


def seed(*key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(11, spawn_key=key)


def toy_params(arm: str, chip_preset: str = "bench") -> dict:
    config = pai2023_toy.base_config(pai2023_toy.SIZES["smoke"])
    return {
        "dataset": "moons",
        "arm": arm,
        "chip_preset": chip_preset,
        "config": config,
        "seed_index": 0,
    }


def ring_params(preset: str) -> dict:
    config = hughes2018_ring.base_config(hughes2018_ring.SIZES["smoke"])
    return {"preset": preset, "config": config, "seed_index": 0}


def recovery_params(strength: float) -> dict:
    size = offline_vs_insitu.SIZES["smoke"]
    return {
        "strength": strength,
        "in_situ_epochs": size.in_situ_epochs,
        "config": offline_vs_insitu.base_config(size),
        "seed_index": 0,
    }


def moons_setup(epochs: int = 2):
    values = pai2023_toy.base_config(pai2023_toy.SIZES["smoke"])
    values = merge_mappings(
        values, {"data": {"name": "moons"}, "training": {"epochs": epochs}}
    )
    seeds = PointSeeds.spawn(seed(0))
    config, data = load_encoded(build_config(values, seeds.data_seed))
    return config, data, seeds


# --- determinism ------------------------------------------------------------------------


@pytest.mark.parametrize("arm", pai2023_toy.ARMS)
def test_toy_point_is_bitwise_deterministic(arm):
    first = pai2023_toy.point(toy_params(arm), seed(1, 2))
    second = pai2023_toy.point(toy_params(arm), seed(1, 2))

    assert json.dumps(first) == json.dumps(second)


def test_toy_point_depends_on_seed():
    first = pai2023_toy.point(toy_params("in-situ"), seed(1, 2))
    second = pai2023_toy.point(toy_params("in-situ"), seed(1, 3))

    assert json.dumps(first) != json.dumps(second)


def test_ring_point_is_bitwise_deterministic():
    first = hughes2018_ring.point(ring_params("bench"), seed(4))
    second = hughes2018_ring.point(ring_params("bench"), seed(4))

    assert json.dumps(first) == json.dumps(second)


def test_recovery_point_is_bitwise_deterministic():
    first = offline_vs_insitu.point(recovery_params(2.0), seed(5))
    second = offline_vs_insitu.point(recovery_params(2.0), seed(5))

    assert json.dumps(first) == json.dumps(second)


def test_recovery_final_accuracy_is_last_curve_point():
    result = offline_vs_insitu.point(recovery_params(4.0), seed(5))

    curve = result["in_situ_test_accuracy_by_epoch"]
    assert len(curve) == offline_vs_insitu.SIZES["smoke"].in_situ_epochs
    assert result["in_situ_test_accuracy"] == curve[-1]


def test_recovery_table_mean_matches_curve_end(tmp_path):
    result, _ = run_reproduction(
        "offline-vs-insitu", tmp_path, size="smoke", progress=False
    )

    folder = tmp_path / "reproduce" / "offline-vs-insitu-smoke"
    records = [
        json.loads(line)
        for line in (folder / "points.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    for index, strength in enumerate(result.summary["strengths"]):
        ends = [
            r["result"]["in_situ_test_accuracy_by_epoch"][-1]
            for r in records
            if r["params"]["strength"] == strength
        ]
        assert result.summary["by_strength"]["in_situ"][index]["mean"] == np.mean(ends)


# --- deployment and training invariants -------------------------------------------------


def test_deploy_on_ideal_chip_keeps_outputs():
    config, data, seeds = moons_setup()
    nominal = network_on(config, HardwareConfig(), seeds)
    train_offline(nominal, data, config, seeds.shuffle)

    deployed = deploy(nominal.get_phases(), config, HardwareConfig(), seeds)

    nominal_out = nominal.infer(data.x_test, noisy=True)
    deployed_out = deployed.infer(data.x_test, noisy=True)
    assert np.array_equal(nominal_out, deployed_out)
    assert accuracy(deployed, data.x_test, data.y_test) == accuracy(
        nominal, data.x_test, data.y_test
    )


def test_toy_in_silico_on_ideal_chip_keeps_accuracy():
    result = pai2023_toy.point(toy_params("in-silico", chip_preset="ideal"), seed(6))

    assert result["chip_test_accuracy"] == result["simulation_test_accuracy"]


def test_deploy_programs_phases_unchanged():
    config, data, seeds = moons_setup()
    nominal = network_on(config, HardwareConfig(), seeds)
    train_offline(nominal, data, config, seeds.shuffle)

    chip = deploy(nominal.get_phases(), config, hardware_preset("bench"), seeds)

    for trained, programmed in zip(nominal.get_phases(), chip.get_phases()):
        assert np.array_equal(trained, programmed)


def test_chip_sequence_rebuilds_same_chips():
    config, _, seeds = moons_setup()
    bench = hardware_preset("bench")

    first = network_on(config, bench, seeds)
    second = network_on(config, bench, seeds)

    for a, b in zip(first.chips, second.chips):
        assert np.array_equal(a.phases, b.phases)
        assert np.array_equal(a.coupler_angles, b.coupler_angles)
        assert np.array_equal(a.phase_offsets, b.phase_offsets)


def test_initial_phases_independent_of_hardware():
    config, _, seeds = moons_setup()

    ideal = network_on(config, HardwareConfig(), seeds)
    bench = network_on(config, hardware_preset("bench"), seeds)

    for a, b in zip(ideal.get_phases(), bench.get_phases()):
        assert np.array_equal(a, b)


def test_in_situ_on_ideal_chip_follows_offline():
    # On an ideal chip the measured gradient equals the exact one up to rounding, so
    # with the same batch order both trainings take the same steps.
    config, data, seeds = moons_setup(epochs=2)
    offline = network_on(config, HardwareConfig(), seeds)
    in_situ = network_on(config, HardwareConfig(), seeds)

    train_offline(offline, data, config, seeds.shuffle)
    train_in_situ(in_situ, data, config, seeds.shuffle)

    for a, b in zip(offline.get_phases(), in_situ.get_phases()):
        assert np.max(np.abs(a - b)) < 1e-8


def test_offline_training_lowers_loss():
    config, data, seeds = moons_setup(epochs=5)
    network = network_on(config, HardwareConfig(), seeds)
    before = network.loss.value_and_adjoint(
        network.infer(data.x_train, noisy=False), data.y_train
    )[0]

    train_offline(network, data, config, seeds.shuffle)

    after = network.loss.value_and_adjoint(
        network.infer(data.x_train, noisy=False), data.y_train
    )[0]
    assert after < before


# --- parameters and helpers -------------------------------------------------------------


def test_chip_hardware_scales_bench_static_errors():
    reference = hardware_preset("bench").static

    doubled = offline_vs_insitu.chip_hardware(2.0)

    assert doubled.static.coupler_ratio_std == 2 * reference.coupler_ratio_std
    assert doubled.static.phase_offset_std == 2 * reference.phase_offset_std
    assert doubled.static.mzi_loss_db == 2 * reference.mzi_loss_db
    assert doubled.static.mzi_loss_db_std == 2 * reference.mzi_loss_db_std
    assert doubled.forward == hardware_preset("bench").forward
    assert doubled.programming == hardware_preset("bench").programming


def test_chip_hardware_zero_strength_has_no_static_errors():
    static = offline_vs_insitu.chip_hardware(0.0).static

    assert static.coupler_ratio_std == 0.0
    assert static.phase_offset_std == 0.0
    assert static.mzi_loss_db == 0.0


def test_chip_hardware_rejects_negative_strength():
    with pytest.raises(ValueError, match="-1"):
        offline_vs_insitu.chip_hardware(-1.0)


def test_toy_check_params_rejects_unknown_arm():
    params = toy_params("in-silico") | {"arm": "hybrid"}

    with pytest.raises(ValueError, match="hybrid"):
        pai2023_toy.check_params(params)


def test_toy_check_params_rejects_unknown_dataset():
    params = toy_params("in-silico") | {"dataset": "iris"}

    with pytest.raises(ValueError, match="iris"):
        pai2023_toy.check_params(params)


def test_ring_check_params_rejects_unknown_preset():
    with pytest.raises(ValueError, match="lab"):
        hughes2018_ring.check_params(ring_params("lab"))


def test_recovery_check_params_rejects_zero_epochs():
    params = recovery_params(1.0) | {"in_situ_epochs": 0}

    with pytest.raises(ValueError, match="in_situ_epochs"):
        offline_vs_insitu.check_params(params)


def test_merge_mappings_leaves_base_unchanged():
    base = {"data": {"name": "moons", "noise": 0.2}, "network": {"n_modes": 4}}

    merged = merge_mappings(base, {"data": {"name": "ring"}})

    assert merged == {"data": {"name": "ring", "noise": 0.2}, "network": {"n_modes": 4}}
    assert base["data"]["name"] == "moons"


def test_spread_of_three_values():
    stats = spread([1.0, 2.0, 3.0])

    assert stats == {"mean": 2.0, "std": 1.0, "min": 1.0, "max": 3.0}


def test_spread_of_one_value_has_zero_std():
    assert spread([0.5])["std"] == 0.0


# --- unused output ports ----------------------------------------------------------------


def two_class_dataset() -> Dataset:
    rng = np.random.default_rng(3)
    return Dataset(
        name="two-class",
        x_train=rng.normal(size=(8, 2)),
        y_train=np.array([0, 1] * 4),
        x_test=rng.normal(size=(4, 2)),
        y_test=np.array([0, 1] * 2),
        n_classes=2,
        n_features=2,
    )


def unused_port_records(caplog, network: dict) -> list[logging.LogRecord]:
    config = ExperimentConfig.from_mapping({"network": network})
    with caplog.at_level(logging.INFO, logger="experiments.train"):
        resolve_config(config, two_class_dataset())
    return [r for r in caplog.records if "belong to no group" in r.getMessage()]


def test_explicit_groups_log_unused_ports_at_info(caplog):
    network = {"n_modes": 4, "output_groups": [[0], [1]]}

    records = unused_port_records(caplog, network)

    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    assert "[2, 3]" in records[0].getMessage()


def test_derived_groups_warn_about_unused_ports(caplog):
    # Five ports split between two classes give groups of two and leave port 4 out.
    records = unused_port_records(caplog, {"n_modes": 5})

    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert "[4]" in records[0].getMessage()


def test_ring_config_logs_no_warning(caplog):
    values = hughes2018_ring.base_config(hughes2018_ring.SIZES["smoke"])

    with caplog.at_level(logging.INFO, logger="experiments.train"):
        load_encoded(build_config(values, data_seed=0))

    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("belong to no group" in r.getMessage() for r in caplog.records)


# --- smoke runs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["pai2023-toy", "hughes2018-ring", "offline-vs-insitu"]
)
def test_smoke_run_writes_report(name, tmp_path):
    result, report = run_reproduction(name, tmp_path, size="smoke", progress=False)

    folder = tmp_path / "reproduce" / f"{name}-smoke"
    assert report == folder / "report.md"
    for file_name in ("report.md", "summary.json", "provenance.jsonl", "points.jsonl"):
        assert (folder / file_name).is_file(), file_name
    assert (folder / f"{name}.png").is_file()
    assert result.figures == [folder / f"{name}.png"]
    assert f"photonic-backprop reproduce {name}" in report.read_text(encoding="utf-8")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["name"] == name
    assert all(check["met"] is None for check in summary["targets"])
