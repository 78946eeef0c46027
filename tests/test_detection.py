"""Photodetector and ADC model: noise statistics against closed forms, ADC grid, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.constants import e as ELEMENTARY_CHARGE

from photonic.detection import (
    DetectorConfig,
    adc_step,
    detect,
    effective_k,
    noise_std,
)

DRAWS = 100_000
# The sample variance of n Gaussian draws has relative standard error sqrt(2/n), 0.45 % for
# 1e5 draws, so a 3 % tolerance is more than 6 standard errors.
VARIANCE_TOLERANCE = 0.03

# A monitor tap: 1 mW launched, 2 % tap, 1 A/W, 1 GHz. The signal current at P = 1 is 20 µA.
TAP = {
    "launch_power_w": 1e-3,
    "tap_fraction": 0.02,
    "responsivity_a_per_w": 1.0,
    "bandwidth_hz": 1e9,
}
AMPS_PER_UNIT = 1e-3 * 0.02 * 1.0


def sample_variance(power: float, config: DetectorConfig, seed: int) -> float:
    readings = detect(np.full(DRAWS, power), config, np.random.default_rng(seed))
    return float(np.var(readings))


def test_ideal_returns_input_exactly() -> None:
    power = np.random.default_rng(0).uniform(0, 1, size=(7, 5))
    readings = detect(power, DetectorConfig.ideal(), np.random.default_rng(1))
    np.testing.assert_array_equal(readings, power)


def test_ideal_draws_nothing_from_rng() -> None:
    rng = np.random.default_rng(2)
    detect(np.ones(4), DetectorConfig.ideal(), rng)
    assert rng.standard_normal() == np.random.default_rng(2).standard_normal()


def test_default_config_is_ideal() -> None:
    assert DetectorConfig() == DetectorConfig.ideal()


def test_shot_variance_is_2qib() -> None:
    config = DetectorConfig(**TAP, shot_noise=True)
    power = 0.6
    current = AMPS_PER_UNIT * power
    expected = 2 * ELEMENTARY_CHARGE * current * 1e9 / AMPS_PER_UNIT**2

    variance = sample_variance(power, config, seed=3)

    assert variance == pytest.approx(expected, rel=VARIANCE_TOLERANCE)


def test_shot_variance_equals_effective_k_power() -> None:
    config = DetectorConfig(**TAP, shot_noise=True)
    power = 0.3

    variance = sample_variance(power, config, seed=4)

    assert variance == pytest.approx(
        effective_k(config) * power, rel=VARIANCE_TOLERANCE
    )


def test_effective_k_closed_form() -> None:
    config = DetectorConfig(**TAP)
    expected = 2 * 1.602176634e-19 * 1e9 / (1e-3 * 0.02 * 1.0)
    assert effective_k(config) == pytest.approx(expected, rel=1e-12)


def test_shot_std_matches_pai_model() -> None:
    shot = DetectorConfig(**TAP, shot_noise=True)
    pai = DetectorConfig.pai2023(effective_k(shot))
    power = np.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(
        noise_std(power, shot), noise_std(power, pai), rtol=1e-12
    )


def test_pai_variance_is_k_times_power() -> None:
    k = 0.01
    power = 0.4

    variance = sample_variance(power, DetectorConfig.pai2023(k), seed=5)

    assert variance == pytest.approx(k * power, rel=VARIANCE_TOLERANCE)


def test_pai_mean_is_true_power() -> None:
    k = 0.01
    power = 0.4
    readings = detect(
        np.full(DRAWS, power), DetectorConfig.pai2023(k), np.random.default_rng(6)
    )
    standard_error = math.sqrt(k * power / DRAWS)
    assert abs(readings.mean() - power) < 4 * standard_error


def test_pai_draws_equal_closed_form() -> None:
    k = 0.02
    power = np.random.default_rng(7).uniform(0, 1, size=(3, 4))

    readings = detect(power, DetectorConfig.pai2023(k), np.random.default_rng(8))

    expected = power + np.sqrt(k * power) * np.random.default_rng(8).standard_normal(
        power.shape
    )
    np.testing.assert_array_equal(readings, expected)


def test_pai2023_turns_physical_terms_off() -> None:
    config = DetectorConfig.pai2023(0.01)
    assert config.shot_noise is False
    assert config.thermal_noise_a_per_rthz == 0
    assert config.dark_current_a == 0
    assert config.adc_bits is None


def test_thermal_variance_independent_of_power() -> None:
    density = 5e-12
    config = DetectorConfig(**TAP, thermal_noise_a_per_rthz=density)
    expected = density**2 * 1e9 / AMPS_PER_UNIT**2

    dark_variance = sample_variance(0.0, config, seed=9)
    bright_variance = sample_variance(0.9, config, seed=10)

    assert dark_variance == pytest.approx(expected, rel=VARIANCE_TOLERANCE)
    assert bright_variance == pytest.approx(expected, rel=VARIANCE_TOLERANCE)


def test_noise_std_adds_all_variances() -> None:
    dark = 50e-9
    density = 3e-12
    k = 0.004
    config = DetectorConfig(
        **TAP,
        shot_noise=True,
        thermal_noise_a_per_rthz=density,
        dark_current_a=dark,
        pai_k=k,
    )
    power = 0.25
    current = AMPS_PER_UNIT * power + dark
    current_variance = 2 * ELEMENTARY_CHARGE * current * 1e9 + density**2 * 1e9
    expected = math.sqrt(current_variance / AMPS_PER_UNIT**2 + k * power)

    assert noise_std(power, config) == pytest.approx(expected, rel=1e-12)


def test_combined_variance_matches_noise_std() -> None:
    config = DetectorConfig(
        **TAP, shot_noise=True, thermal_noise_a_per_rthz=3e-12, pai_k=0.004
    )
    power = 0.5

    variance = sample_variance(power, config, seed=11)

    assert variance == pytest.approx(
        float(noise_std(power, config)) ** 2, rel=VARIANCE_TOLERANCE
    )


def test_dark_current_subtracted_from_reading() -> None:
    config = DetectorConfig(**TAP, dark_current_a=1e-7)
    power = np.array([0.0, 0.3, 1.0])
    readings = detect(power, config, np.random.default_rng(12))
    np.testing.assert_array_equal(readings, power)


def test_adc_step_closed_form() -> None:
    config = DetectorConfig(**TAP, adc_bits=8)
    # Full scale defaults to launch · tap, which is power 1.0.
    assert adc_step(config) == pytest.approx(1 / 255, rel=1e-12)
    assert adc_step(DetectorConfig()) is None


def test_adc_readings_on_code_grid() -> None:
    config = DetectorConfig(**TAP, adc_bits=6, thermal_noise_a_per_rthz=5e-12)
    step = 1 / 63
    power = np.random.default_rng(13).uniform(0, 1, size=1000)

    readings = detect(power, config, np.random.default_rng(14))

    codes = readings / step
    np.testing.assert_allclose(codes, np.rint(codes), atol=1e-9)
    assert readings.min() >= 0
    assert readings.max() <= 1 + 1e-12


def test_adc_grid_offset_by_dark_current() -> None:
    dark = 2e-7
    config = DetectorConfig(**TAP, adc_bits=5, dark_current_a=dark)
    step_a = (AMPS_PER_UNIT * 1.0 + dark) / 31
    power = np.linspace(0, 1, 50)

    readings = detect(power, config, np.random.default_rng(15))

    codes = (readings * AMPS_PER_UNIT + dark) / step_a
    np.testing.assert_allclose(codes, np.rint(codes), atol=1e-9)


def test_adc_clips_above_full_scale() -> None:
    full_scale_w = 10e-6
    config = DetectorConfig(**TAP, adc_bits=8, adc_full_scale_w=full_scale_w)
    full_scale_reading = full_scale_w / (1e-3 * 0.02)

    readings = detect(np.array([0.6, 2.0, 5.0]), config, np.random.default_rng(16))

    np.testing.assert_allclose(readings, full_scale_reading, rtol=1e-12)


def test_adc_clips_negative_readings_at_zero() -> None:
    config = DetectorConfig(**TAP, adc_bits=8, thermal_noise_a_per_rthz=2e-11)
    readings = detect(np.zeros(1000), config, np.random.default_rng(17))
    assert readings.min() == 0.0
    assert readings.max() > 0.0


def test_adc_8_bits_error_within_half_lsb() -> None:
    config = DetectorConfig(**TAP, adc_bits=8)
    half_step = 0.5 / 255
    power = np.linspace(0, 1, 10_001)

    readings = detect(power, config, np.random.default_rng(18))

    error = np.abs(readings - power)
    assert error.max() <= half_step * (1 + 1e-9)
    assert error.max() > 0.9 * half_step


def test_noise_std_has_shape_of_power() -> None:
    config = DetectorConfig(**TAP, shot_noise=True)
    assert noise_std(np.ones((2, 3)), config).shape == (2, 3)


# Each case: how to build the bad config, and a pattern that names the bad value.
INVALID_CONFIGS = {
    "zero_adc_bits": (lambda: DetectorConfig(adc_bits=0), r"adc_bits = 0\b"),
    "fractional_adc_bits": (lambda: DetectorConfig(adc_bits=8.0), r"adc_bits = 8\.0"),
    "too_many_adc_bits": (lambda: DetectorConfig(adc_bits=33), r"adc_bits = 33"),
    "negative_bandwidth": (
        lambda: DetectorConfig(bandwidth_hz=-1e9),
        r"bandwidth_hz = -1000000000\.0",
    ),
    "zero_bandwidth": (lambda: DetectorConfig(bandwidth_hz=0.0), r"bandwidth_hz = 0"),
    "zero_tap_fraction": (
        lambda: DetectorConfig(tap_fraction=0.0),
        r"tap_fraction = 0",
    ),
    "tap_fraction_above_one": (
        lambda: DetectorConfig(tap_fraction=1.5),
        r"tap_fraction = 1\.5.*<= 1",
    ),
    "zero_launch_power": (
        lambda: DetectorConfig(launch_power_w=0.0),
        r"launch_power_w = 0",
    ),
    "zero_responsivity": (
        lambda: DetectorConfig(responsivity_a_per_w=0.0),
        r"responsivity_a_per_w = 0",
    ),
    "negative_thermal_noise": (
        lambda: DetectorConfig(thermal_noise_a_per_rthz=-1e-12),
        r"thermal_noise_a_per_rthz = -1e-12",
    ),
    "negative_dark_current": (
        lambda: DetectorConfig(dark_current_a=-1e-9),
        r"dark_current_a = -1e-09",
    ),
    "zero_full_scale": (
        lambda: DetectorConfig(adc_bits=8, adc_full_scale_w=0.0),
        r"adc_full_scale_w = 0",
    ),
    "negative_pai_k": (lambda: DetectorConfig.pai2023(-0.1), r"pai_k = -0\.1"),
    "nan_pai_k": (lambda: DetectorConfig(pai_k=math.nan), r"pai_k = nan"),
    "string_shot_noise": (
        lambda: DetectorConfig(shot_noise="yes"),
        r"shot_noise = 'yes'",
    ),
}


@pytest.mark.parametrize("case", INVALID_CONFIGS, ids=list(INVALID_CONFIGS))
def test_invalid_config_names_value(case: str) -> None:
    build, pattern = INVALID_CONFIGS[case]
    with pytest.raises(ValueError, match=pattern):
        build()


def test_detect_rejects_negative_power() -> None:
    power = np.array([0.2, -0.5, 0.1])
    with pytest.raises(ValueError, match=r"power\[1\] = -0\.5"):
        detect(power, DetectorConfig.ideal(), np.random.default_rng(19))


def test_detect_rejects_nan_power() -> None:
    power = np.array([[0.2, 0.3], [math.nan, 0.1]])
    with pytest.raises(ValueError, match=r"power\[1, 0\] = nan"):
        detect(power, DetectorConfig.pai2023(0.01), np.random.default_rng(20))


def test_noise_std_rejects_negative_power() -> None:
    with pytest.raises(ValueError, match=r"^power = -0\.1"):
        noise_std(-0.1, DetectorConfig.ideal())
