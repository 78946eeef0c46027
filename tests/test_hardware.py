"""Hardware error model: config validation, phase quantization, chip draws and passivity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from photonic.detection import DetectorConfig, detect
from photonic.hardware import (
    HARDWARE_PRESETS,
    Chip,
    Drift,
    HardwareConfig,
    PassErrors,
    Programming,
    StaticErrors,
    hardware_preset,
)
from photonic.programming import quantize_phase
from photonic.mesh import TOPOLOGIES, MeshLayout

STEP_8_BITS = 2 * np.pi / 256

EVERY_ERROR = HardwareConfig(
    static=StaticErrors(
        coupler_error_std=0.1,
        phase_offset_std=0.1,
        mzi_loss_db=0.5,
        mzi_loss_db_std=0.3,
        arm_imbalance_db_std=0.2,
        waveguide_loss_db=0.05,
        heater_gain_std=0.01,
    ),
    programming=Programming(phase_bits=6, rounding="stochastic", crosstalk=0.01),
    drift=Drift(model="random-walk", std=0.01),
    forward=PassErrors(phase_noise_std=0.05, monitor=DetectorConfig.pai2023(0.01)),
    adjoint=PassErrors(phase_noise_std=0.05, input_phase_error=0.02),
    interference=PassErrors(phase_noise_std=0.05, output_amplitude_error=0.02),
)


# Each case: how to build the bad config, and a pattern that names the bad value.
INVALID_CONFIGS = {
    "negative_loss_db": (
        lambda: StaticErrors(mzi_loss_db=-0.5),
        r"mzi_loss_db = -0\.5",
    ),
    "negative_loss_spread": (
        lambda: StaticErrors(mzi_loss_db_std=-0.1),
        r"mzi_loss_db_std = -0\.1",
    ),
    "coupler_std_above_quarter_pi": (
        lambda: StaticErrors(coupler_error_std=0.8),
        r"coupler_error_std = 0\.8",
    ),
    "nan_phase_offset": (
        lambda: StaticErrors(phase_offset_std=math.nan),
        r"phase_offset_std = nan",
    ),
    "zero_phase_bits": (lambda: Programming(phase_bits=0), r"phase_bits = 0\b"),
    "fractional_phase_bits": (
        lambda: Programming(phase_bits=4.5),
        r"phase_bits = 4\.5",
    ),
    "negative_phase_noise": (
        lambda: PassErrors(phase_noise_std=-0.01),
        r"phase_noise_std = -0\.01",
    ),
    "negative_monitor_noise": (
        lambda: DetectorConfig(pai_k=-1.0),
        r"pai_k = -1\.0",
    ),
    "unknown_preset": (lambda: hardware_preset("cryogenic"), r"'cryogenic'"),
    "unknown_preset_in_mapping": (
        lambda: HardwareConfig.from_mapping({"preset": "cryogenic"}),
        r"'cryogenic'",
    ),
    "unknown_key_in_mapping": (
        lambda: HardwareConfig.from_mapping({"static": {"coupler_std": 0.01}}),
        r"'coupler_std'",
    ),
    "unknown_section_in_mapping": (
        lambda: HardwareConfig.from_mapping({"noise": {}}),
        r"'noise'",
    ),
    "out_of_range_value_in_mapping": (
        lambda: HardwareConfig.from_mapping({"static": {"mzi_loss_db": -2.0}}),
        r"mzi_loss_db = -2\.0",
    ),
}


@pytest.mark.parametrize("case", INVALID_CONFIGS)
def test_invalid_config_raises_naming_value(case: str) -> None:
    build, pattern = INVALID_CONFIGS[case]
    with pytest.raises(ValueError, match=pattern):
        build()


def test_coupler_std_at_quarter_pi_is_accepted() -> None:
    assert StaticErrors(coupler_error_std=np.pi / 4).coupler_error_std == np.pi / 4


def test_default_config_is_ideal_preset() -> None:
    assert hardware_preset("ideal") == HardwareConfig()


def test_mapping_overrides_preset_fields() -> None:
    config = HardwareConfig.from_mapping(
        {"preset": "bench", "static": {"mzi_loss_db": 0.7}}
    )
    bench = HARDWARE_PRESETS["bench"]
    assert config.static.mzi_loss_db == 0.7
    assert config.static.coupler_error_std == bench.static.coupler_error_std
    assert config.programming == bench.programming


@pytest.mark.parametrize("name", HARDWARE_PRESETS)
def test_config_survives_dict_round_trip(name: str) -> None:
    config = HARDWARE_PRESETS[name]
    assert HardwareConfig.from_mapping(config.to_dict()) == config


def test_quantize_just_below_two_pi_wraps_to_zero() -> None:
    assert quantize_phase(np.array([2 * np.pi - 1e-9]), 8)[0] == 0.0


def test_small_update_keeps_quantized_level() -> None:
    # 0.01 rad is less than half the 8-bit step 2π/256 ≈ 0.0245 rad.
    levels = np.arange(256) * STEP_8_BITS
    before = quantize_phase(levels, 8)
    np.testing.assert_array_equal(quantize_phase(levels + 0.01, 8), before)
    np.testing.assert_array_equal(quantize_phase(levels - 0.01, 8), before)
    changed = quantize_phase(levels + 0.6 * STEP_8_BITS, 8)
    assert np.all(changed != before)


def test_quantized_phases_are_multiples_of_step() -> None:
    phases = np.random.default_rng(1).uniform(-20, 20, 10_000)
    quantized = quantize_phase(phases, 8)
    index = quantized / STEP_8_BITS
    np.testing.assert_allclose(index, np.rint(index), rtol=0, atol=1e-9)
    assert np.all((quantized >= 0) & (quantized < 2 * np.pi))
    wrapped_error = np.angle(np.exp(1j * (quantized - phases)))
    assert np.max(np.abs(wrapped_error)) <= STEP_8_BITS / 2 + 1e-9


def test_continuous_programming_only_wraps() -> None:
    phases = np.array([-0.5, 7.0, 3.0])
    np.testing.assert_allclose(
        quantize_phase(phases, None), np.mod(phases, 2 * np.pi), rtol=0, atol=0
    )


def test_chip_applies_quantized_phases() -> None:
    layout = MeshLayout.create(4, "rectangular")
    config = HardwareConfig(programming=Programming(phase_bits=8))
    chip = Chip(layout, config, seed=2)
    index = chip.applied_phases() / STEP_8_BITS
    np.testing.assert_allclose(index, np.rint(index), rtol=0, atol=1e-9)


def test_chip_ignores_update_below_half_step() -> None:
    layout = MeshLayout.create(4, "rectangular")
    config = HardwareConfig(programming=Programming(phase_bits=8))
    chip = Chip(layout, config, seed=2)
    chip.phases = np.arange(layout.n_phases) * 7 * STEP_8_BITS
    applied = chip.applied_phases()
    chip.phases = chip.phases + 0.01
    np.testing.assert_array_equal(chip.applied_phases(), applied)


def test_same_seed_gives_same_static_draws() -> None:
    layout = MeshLayout.create(5, "triangular")
    first = Chip(layout, EVERY_ERROR, seed=42)
    second = Chip(layout, EVERY_ERROR, seed=42)
    other = Chip(layout, EVERY_ERROR, seed=43)
    for name in (
        "coupler_angles",
        "phase_offsets",
        "arm_amplitude",
        "heater_gain",
        "phases",
    ):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
        assert not np.array_equal(getattr(first, name), getattr(other, name)), name


def test_same_seed_gives_same_noise_sequence() -> None:
    layout = MeshLayout.create(5, "rectangular")
    first = Chip(layout, EVERY_ERROR, seed=42)
    second = Chip(layout, EVERY_ERROR, seed=42)
    power = np.linspace(0.0, 1.0, 30)
    for _ in range(3):
        np.testing.assert_array_equal(
            first.pass_device().phases, second.pass_device().phases
        )
        np.testing.assert_array_equal(
            first.read_monitors(power), second.read_monitors(power)
        )


def test_noise_differs_between_passes() -> None:
    layout = MeshLayout.create(5, "rectangular")
    chip = Chip(layout, EVERY_ERROR, seed=42)
    assert not np.array_equal(chip.pass_device().phases, chip.pass_device().phases)


def test_passes_without_phase_noise_share_one_device() -> None:
    layout = MeshLayout.create(6, "rectangular")
    chip = Chip(layout, HardwareConfig(static=EVERY_ERROR.static), seed=3)
    forward = chip.pass_device("forward")
    assert chip.pass_device("adjoint") is forward
    assert chip.device() is forward
    # Equal phases give the same device; new phases a new one with the new transfer.
    chip.phases = chip.phases.copy()
    assert chip.pass_device("interference") is forward
    old_matrix = forward.transfer_matrix
    chip.phases = chip.phases + 0.1
    updated = chip.pass_device("forward")
    assert updated is not forward
    np.testing.assert_array_equal(updated.phases, chip.applied_phases())
    assert not np.allclose(updated.transfer_matrix, old_matrix)
    np.testing.assert_allclose(updated.transfer_matrix, updated.matrix(), atol=1e-12)


@pytest.mark.parametrize("time_s", [float("nan"), float("inf"), "1", True])
def test_pass_device_rejects_invalid_time(time_s: object) -> None:
    chip = Chip(MeshLayout.create(4, "rectangular"), EVERY_ERROR, seed=3)
    with pytest.raises(ValueError, match="time_s .* is invalid"):
        chip.pass_device("forward", time_s)
    with pytest.raises(ValueError, match="time_s .* is invalid"):
        chip.program(chip.phases, time_s)


def test_passes_with_phase_noise_get_their_own_device() -> None:
    layout = MeshLayout.create(6, "rectangular")
    chip = Chip(layout, EVERY_ERROR, seed=3)
    assert chip.pass_device("forward") is not chip.pass_device("forward")


def test_static_draws_ignore_other_sources() -> None:
    # Every static quantity is drawn even at zero spread, so switching loss on must not
    # shift the coupler draws of the same seed.
    layout = MeshLayout.create(6, "rectangular")
    couplers_only = HardwareConfig(static=StaticErrors(coupler_error_std=0.05))
    with_loss = HardwareConfig(
        static=StaticErrors(
            coupler_error_std=0.05, mzi_loss_db=0.3, mzi_loss_db_std=0.1
        )
    )
    first = Chip(layout, couplers_only, seed=9)
    second = Chip(layout, with_loss, seed=9)
    np.testing.assert_array_equal(first.coupler_angles, second.coupler_angles)
    np.testing.assert_array_equal(first.phases, second.phases)


@pytest.mark.parametrize("power", [0.01, 0.3, 2.0])
def test_monitor_noise_variance_is_k_times_power(power: float) -> None:
    k = 0.02
    n_draws = 100_000
    readings = detect(
        np.full(n_draws, power), DetectorConfig.pai2023(k), np.random.default_rng(5)
    )
    # With 1e5 draws the sample variance has a relative standard error of sqrt(2/1e5),
    # about 0.45 %, so the 5 % tolerance is more than ten standard errors.
    variance = np.var(readings)
    assert abs(variance / (k * power) - 1) < 0.05, (
        f"variance {variance}, K·P {k * power}"
    )
    mean_tolerance = 10 * np.sqrt(k * power / n_draws)
    assert abs(np.mean(readings) - power) < mean_tolerance


def test_monitors_without_noise_read_true_power() -> None:
    power = np.linspace(0.0, 1.0, 11)
    readings = detect(power, DetectorConfig(), np.random.default_rng(0))
    np.testing.assert_array_equal(readings, power)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    n_modes=st.integers(min_value=2, max_value=8),
    topology=st.sampled_from(TOPOLOGIES),
)
def test_realised_device_is_passive(seed: int, n_modes: int, topology: str) -> None:
    layout = MeshLayout.create(n_modes, topology)
    chip = Chip(layout, EVERY_ERROR, seed=seed)
    for device in (chip.device(), chip.pass_device()):
        singular_values = np.linalg.svd(device.matrix(), compute_uv=False)
        assert singular_values.max() <= 1 + 1e-12, singular_values
