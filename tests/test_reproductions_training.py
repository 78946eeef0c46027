"""Training reproductions: the toy sets of Pai et al. (2023), the ring of Hughes et al.
(2018) and offline training against in situ training. Determinism and invariants of
their point functions and shared training pieces, and a smoke run of each."""

from __future__ import annotations

import json

import numpy as np
import pytest

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


# --- smoke runs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["pai2023-toy", "hughes2018-ring", "offline-vs-insitu"]
)
def test_smoke_run_writes_report(name, tmp_path):
    result, report = run_reproduction(name, tmp_path, size="smoke", progress=False)

    folder = tmp_path / "reproduce" / f"{name}-smoke"
    assert report == folder / "report.md"
    for file_name in ("report.md", "summary.json", "provenance.json", "points.jsonl"):
        assert (folder / file_name).is_file(), file_name
    assert (folder / f"{name}.png").is_file()
    assert result.figures == [folder / f"{name}.png"]
    assert f"photonic-backprop reproduce {name}" in report.read_text(encoding="utf-8")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["name"] == name
    assert all(check["met"] is None for check in summary["targets"])
