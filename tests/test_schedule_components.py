"""Tests of the hardware components, their presets and the settling model."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from simulator.components import (
    SYSTEM_PRESETS,
    CameraMonitors,
    Controller,
    Detectors,
    Laser,
    Modulators,
    OperationCounts,
    PhaseShifters,
    SystemConfig,
    TapMonitors,
    system_preset,
)
from simulator.settling import FULL_PHASE_RANGE_RAD, settle_time_ps, settling_residual

# Presets


def test_required_presets_exist():
    for name in ("thermo-optic-chip", "electro-optic-chip", "pai2023-bench"):
        assert system_preset(name).name == name


def test_thermo_optic_time_constant_from_bandwidth():
    shifters = system_preset("thermo-optic-chip").phase_shifters
    tau_s = 1 / (2 * math.pi * 130e3)

    assert shifters.kind == "thermo-optic"
    assert shifters.rise_time_constant_ps == round(tau_s * 1e12, -3)
    assert shifters.p_pi_w == 24.8e-3
    assert shifters.holding_power_w == pytest.approx(12.4e-3)


def test_fast_heater_rise_and_fall():
    shifters = system_preset("thermo-optic-fast-heater").phase_shifters

    assert shifters.rise_time_constant_ps == 1_150_000
    assert shifters.fall_time_constant_ps == 2_180_000
    assert shifters.settle_time_constant_ps == 2_180_000


def test_electro_optic_holds_without_power():
    shifters = system_preset("electro-optic-chip").phase_shifters

    assert shifters.kind == "electro-optic"
    assert shifters.holding_power_w == 0.0
    assert shifters.settle_time_constant_ps < 1_000


def test_bench_uses_camera_and_settle_wait():
    bench = system_preset("pai2023-bench")

    assert isinstance(bench.monitors, CameraMonitors)
    assert bench.monitors.exposure_ps == 20 * 10**9
    assert bench.phase_shifters.min_settle_ps == 20 * 10**9
    assert bench.controller.stream_elementwise is False


def test_unknown_preset_lists_known_names():
    with pytest.raises(ValueError, match="'optical-ram'") as error:
        system_preset("optical-ram")

    for name in SYSTEM_PRESETS:
        assert repr(name) in str(error.value)


# Derived quantities


def test_write_time_rounds_up_channels():
    shifters = PhaseShifters(dac_channels=64, dac_write_ps=100)

    assert shifters.write_time_ps(64) == 100
    assert shifters.write_time_ps(65) == 200
    assert shifters.write_time_ps(1) == 100


def test_tap_readout_rounds_up_channels():
    monitors = TapMonitors(adc_channels=4, adc_sample_period_ps=10)

    assert monitors.readout_ps(16) == 40
    assert monitors.readout_ps(17) == 50


def test_compute_time_rounds_up():
    controller = Controller(ops_per_s=3e11)

    assert controller.compute_time_ps(3) == 10
    assert controller.compute_time_ps(4) == 14


def test_laser_electrical_power():
    assert Laser(
        optical_power_w=0.01, wall_plug_efficiency=0.25
    ).electrical_power_w == (pytest.approx(0.04))


def test_symbol_rate_is_inverse_period():
    assert Modulators(symbol_period_ps=50).symbol_rate_hz == 2e10


# Validation


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (Laser, "wall_plug_efficiency", 0.0),
        (Laser, "wall_plug_efficiency", 1.5),
        (Laser, "optical_power_w", -1.0),
        (Modulators, "symbol_period_ps", 0),
        (Modulators, "symbol_period_ps", 2.5),
        (Modulators, "dac_energy_j", math.nan),
        (PhaseShifters, "kind", "magneto-optic"),
        (PhaseShifters, "rise_time_constant_ps", 0),
        (PhaseShifters, "dac_channels", True),
        (PhaseShifters, "mean_phase_rad", 7.0),
        (Detectors, "quadratures", 0),
        (Detectors, "adc_energy_j", math.inf),
        (TapMonitors, "adc_channels", 0),
        (CameraMonitors, "exposure_ps", 0),
        (CameraMonitors, "frame_per_sample", 1),
        (Controller, "ops_per_s", 0.0),
        (Controller, "stream_elementwise", "yes"),
        (OperationCounts, "activation", -1),
    ],
)
def test_component_rejects_invalid_field(cls, field, value):
    with pytest.raises(ValueError, match=field) as error:
        cls(**{field: value})

    assert repr(value) in str(error.value)


def test_system_rejects_negative_transit():
    with pytest.raises(ValueError, match="transit_time_ps"):
        SystemConfig(transit_time_ps=-1)


def test_system_rejects_wrong_component_type():
    with pytest.raises(ValueError, match="Laser"):
        SystemConfig(laser=Modulators())


# Mapping


def test_from_mapping_overrides_preset():
    system = SystemConfig.from_mapping(
        {"preset": "electro-optic-chip", "phase_shifters": {"dac_channels": 32}}
    )

    assert system.phase_shifters.dac_channels == 32
    assert system.phase_shifters.kind == "electro-optic"
    assert system.name == "electro-optic-chip"


def test_from_mapping_switches_monitor_kind():
    system = SystemConfig.from_mapping(
        {"monitors": {"kind": "camera", "exposure_ps": 1000}}
    )

    assert isinstance(system.monitors, CameraMonitors)
    assert system.monitors.exposure_ps == 1000


def test_from_mapping_round_trips_to_dict():
    for system in SYSTEM_PRESETS.values():
        assert SystemConfig.from_mapping(system.to_dict()) == system


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"lasers": {}}, "'lasers'"),
        ({"laser": {"power_w": 1.0}}, "'power_w'"),
        ({"monitors": {"kind": "scope"}}, "'scope'"),
        ({"preset": "optical-ram"}, "'optical-ram'"),
    ],
)
def test_from_mapping_rejects_unknown(values, key):
    with pytest.raises(ValueError, match=key):
        SystemConfig.from_mapping(values)


def test_from_mapping_lists_allowed_keys():
    with pytest.raises(ValueError) as error:
        SystemConfig.from_mapping({"laser": {"power_w": 1.0}})

    assert "optical_power_w" in str(error.value)


# Settling


def test_settle_time_closed_form():
    shifters = PhaseShifters(rise_time_constant_ps=1000, fall_time_constant_ps=400)

    assert settle_time_ps(shifters, 1.0, 0.01) == math.ceil(1000 * math.log(100))
    assert settle_time_ps(shifters, -1.0, 0.01) == math.ceil(1000 * math.log(100))


def test_settle_time_zero_within_tolerance():
    shifters = PhaseShifters(rise_time_constant_ps=1000, fall_time_constant_ps=1000)

    assert settle_time_ps(shifters, 0.005, 0.01) == 0


def test_settle_time_never_below_minimum():
    shifters = PhaseShifters(min_settle_ps=5000)

    assert settle_time_ps(shifters, 0.0, 0.01) == 5000
    assert settle_time_ps(shifters, FULL_PHASE_RANGE_RAD, 0.01) > 5000


def test_settle_time_rejects_bad_tolerance():
    with pytest.raises(ValueError, match="tolerance_rad"):
        settle_time_ps(PhaseShifters(), 1.0, 0.0)


def test_residual_decays_by_e_per_time_constant():
    residual = settling_residual([1.0, 0.5], elapsed_s=2e-6, rise_time_constant_s=1e-6)

    np.testing.assert_allclose(residual, [math.exp(-2), 0.5 * math.exp(-2)], rtol=1e-15)


def test_residual_uses_fall_constant_for_decrease():
    residual = settling_residual(
        [1.0, -1.0],
        elapsed_s=1e-6,
        rise_time_constant_s=1e-6,
        fall_time_constant_s=2e-6,
    )

    np.testing.assert_allclose(residual, [math.exp(-1), -math.exp(-0.5)], rtol=1e-15)


def test_residual_at_zero_is_change():
    change = np.array([0.3, -1.2, 0.0])

    np.testing.assert_array_equal(settling_residual(change, 0.0, 1e-6), change)


def test_residual_reaches_tolerance_at_settle_time():
    shifters = PhaseShifters()
    wait_ps = settle_time_ps(shifters, FULL_PHASE_RANGE_RAD, 0.01)
    residual = settling_residual(
        FULL_PHASE_RANGE_RAD,
        wait_ps * 1e-12,
        shifters.rise_time_constant_ps * 1e-12,
    )

    assert residual <= 0.01
    assert residual > 0.01 * 0.999


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("elapsed_s", -1.0),
        ("rise_time_constant_s", 0.0),
        ("fall_time_constant_s", -2.0),
    ],
)
def test_residual_rejects_invalid(argument, value):
    arguments = {
        "phase_change_rad": 1.0,
        "elapsed_s": 1.0,
        "rise_time_constant_s": 1.0,
        argument: value,
    }

    with pytest.raises(ValueError, match=argument):
        settling_residual(**arguments)


def test_replace_revalidates():
    with pytest.raises(ValueError, match="dac_write_ps"):
        dataclasses.replace(PhaseShifters(), dac_write_ps=-5)
