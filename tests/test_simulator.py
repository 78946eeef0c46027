"""Tests of the SimPy timing and energy model of one training step."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import pytest
import simpy

from simulator import (
    PASS_KINDS,
    TIMING_PRESETS,
    StepModel,
    StepShape,
    TimingConfig,
    mesh_resource,
    plot_energy_breakdown,
    plot_timeline,
    resource_names,
    simulate_training_step,
    timing_preset,
)
from simulator.step import COHERENT_QUADRATURES

# Small, distinct durations so that a wrong term in the step time cannot cancel out.
TINY = TimingConfig(
    settle_time_ps=1_000,
    phase_dac_write_ps=300,
    symbol_period_ps=7,
    transit_time_ps=11,
    detector_integration_ps=5,
    monitor_readout_ps=130,
    digital_op_ps=3,
    ops_per_activation=4,
    ops_per_interference_input=2,
    ops_per_gradient_term=4,
    ops_per_phase_update=2,
    modulator_energy_j=2e-13,
    adc_energy_j=1e-12,
    phase_program_energy_j=1e-10,
    heater_power_w=0.0124,
    laser_power_w=0.01,
    laser_wall_plug_efficiency=0.25,
    digital_energy_per_op_j=1e-12,
)

SHAPE = {"n_modes": 4, "batch_size": 3, "phases_per_layer": 12}


def critical_path_ps(
    timing: TimingConfig,
    n_layers: int,
    n_modes: int,
    batch_size: int,
    phases_per_layer: int,
) -> int:
    """Return the step time of the sequential schedule, summed stage by stage."""
    op = timing.digital_op_ps
    optical_pass = batch_size * timing.symbol_period_ps + timing.transit_time_ps
    detection = batch_size * timing.detector_integration_ps
    activation = batch_size * n_modes * timing.ops_per_activation * op

    forward = optical_pass + timing.monitor_readout_ps + detection + activation

    adjoint_input = activation
    interference_input = batch_size * n_modes * timing.ops_per_interference_input * op
    gradient = batch_size * phases_per_layer * timing.ops_per_gradient_term * op
    backward = (
        adjoint_input
        + optical_pass
        + timing.monitor_readout_ps
        + detection
        + interference_input
        + optical_pass
        + timing.monitor_readout_ps
        + gradient
    )

    optimizer = n_layers * phases_per_layer * timing.ops_per_phase_update * op
    programming = n_layers * (timing.phase_dac_write_ps + timing.settle_time_ps)

    return n_layers * forward + n_layers * backward + optimizer + programming


def record_passes(n_layers: int, timing: TimingConfig = TINY):
    calls: list[tuple[str, int, int]] = []
    report = simulate_training_step(
        timing,
        n_layers=n_layers,
        on_pass=lambda kind, layer, time_ps: calls.append((kind, layer, time_ps)),
        **SHAPE,
    )
    return report, calls


# Exact times


def test_equal_passes_end_at_multiple_of_duration():
    env = simpy.Environment()
    model = StepModel(env, TINY, StepShape(1, 4, 3, 12))
    duration_ps = 3 * TINY.symbol_period_ps + TINY.transit_time_ps

    def passes(k):
        for _ in range(k):
            yield from model.optical_pass("forward", 0)

    env.process(passes(5))
    env.run()

    ends = [
        interval.end_ps for interval in model.intervals if interval.resource == "mesh-1"
    ]
    assert ends == [duration_ps * k for k in range(1, 6)]
    assert env.now == 5 * duration_ps


def test_forward_pass_lasts_batch_symbols_plus_transit():
    report = simulate_training_step(TINY, n_layers=1, **SHAPE)
    forward = [i for i in report.intervals if i.activity == "forward"]

    assert [i.resource for i in forward] == ["modulators", "mesh-1"]
    for interval in forward:
        assert interval.start_ps == 0
        assert interval.end_ps == 3 * 7 + 11


@pytest.mark.parametrize("n_layers", [1, 3])
def test_step_time_equals_critical_path(n_layers):
    report = simulate_training_step(TINY, n_layers=n_layers, **SHAPE)

    assert report.step_time_ps == critical_path_ps(TINY, n_layers, **SHAPE)


def test_step_time_default_preset_three_layers():
    timing = timing_preset("thermo-optic")
    report = simulate_training_step(timing, n_layers=3, **SHAPE)

    assert report.step_time_ps == critical_path_ps(timing, 3, **SHAPE)
    assert report.step_time_s == report.step_time_ps / 1e12


def test_step_time_is_integer_ps():
    report = simulate_training_step(TINY, n_layers=2, **SHAPE)

    assert type(report.step_time_ps) is int
    for interval in report.intervals:
        assert type(interval.start_ps) is int
        assert type(interval.end_ps) is int


def test_stages_never_overlap_in_time():
    report = simulate_training_step(TINY, n_layers=2, **SHAPE)
    stages = sorted({(i.start_ps, i.end_ps) for i in report.intervals})

    for (_, previous_end), (start, _) in itertools.pairwise(stages):
        assert start >= previous_end


def test_last_interval_ends_at_step_time():
    report = simulate_training_step(TINY, n_layers=2, **SHAPE)
    last = max(report.intervals, key=lambda interval: interval.end_ps)

    assert last.end_ps == report.step_time_ps
    assert last.activity == "settle"
    assert last.resource == mesh_resource(1)


# Order of simultaneous events


def test_simultaneous_requests_served_in_request_order():
    env = simpy.Environment()
    model = StepModel(env, TINY, StepShape(1, 4, 3, 12))
    starts: dict[str, int] = {}

    for name in ("first", "second", "third"):
        env.process(
            model.occupy(
                ["controller"],
                name,
                None,
                10,
                on_start=lambda t, name=name: starts.__setitem__(name, t),
            )
        )
    env.run()

    assert starts == {"first": 0, "second": 10, "third": 20}
    assert [i.activity for i in model.intervals] == ["first", "second", "third"]


def test_release_hands_over_without_gap():
    env = simpy.Environment()
    model = StepModel(env, TINY, StepShape(1, 4, 3, 12))

    def late_request():
        yield env.timeout(25)
        yield from model.occupy(["mesh-1"], "late", 0, 5)

    env.process(model.occupy(["mesh-1"], "early", 0, 25))
    env.process(late_request())
    env.run()

    early, late = model.intervals
    assert early.end_ps == 25
    assert late.start_ps == 25


def test_same_time_timeouts_in_schedule_order():
    env = simpy.Environment()
    order: list[str] = []

    def wait(name, delay):
        yield env.timeout(delay)
        order.append(name)

    env.process(wait("a", 5))
    env.process(wait("b", 3))
    env.process(wait("c", 5))
    env.run()

    assert order == ["b", "a", "c"]


def test_process_start_is_urgent():
    env = simpy.Environment()
    order: list[str] = []

    def started():
        order.append("started")
        yield env.timeout(0)

    def launcher():
        env.timeout(0).callbacks.append(lambda _: order.append("normal event"))
        env.process(started())
        yield env.timeout(0)

    env.process(launcher())
    env.run()

    # The process created second starts before the timeout scheduled first.
    assert order == ["started", "normal event"]


# on_pass callback


def test_on_pass_order_and_layers():
    _, calls = record_passes(n_layers=3)

    expected = [("forward", 0), ("forward", 1), ("forward", 2)]
    for layer in (2, 1, 0):
        expected += [("adjoint", layer), ("interference", layer)]
    assert [(kind, layer) for kind, layer, _ in calls] == expected


def test_on_pass_times_strictly_increase():
    _, calls = record_passes(n_layers=3)
    times = [time_ps for _, _, time_ps in calls]

    for earlier, later in itertools.pairwise(times):
        assert later > earlier


def test_on_pass_times_match_interval_starts():
    report, calls = record_passes(n_layers=3)
    pass_intervals = [
        (i.activity, i.layer, i.start_ps)
        for i in report.intervals
        if i.activity in PASS_KINDS and i.resource.startswith("mesh-")
    ]

    assert calls == pass_intervals


def test_on_pass_sees_simulated_time():
    times = []

    def on_pass(kind, layer, time_ps):
        times.append(time_ps)

    report = simulate_training_step(TINY, n_layers=1, on_pass=on_pass, **SHAPE)

    assert times[0] == 0
    assert len(times) == report.optical_passes


def test_on_pass_exception_propagates():
    def failing(kind, layer, time_ps):
        raise KeyError("physics failed")

    with pytest.raises(KeyError, match="physics failed"):
        simulate_training_step(TINY, n_layers=2, on_pass=failing, **SHAPE)


def test_optical_passes_three_per_layer():
    report = simulate_training_step(TINY, n_layers=4, **SHAPE)

    assert report.optical_passes == 12


# Resources and utilisation


def test_report_lists_every_resource():
    report = simulate_training_step(TINY, n_layers=3, **SHAPE)

    assert tuple(report.utilisation) == resource_names(3)
    assert resource_names(3) == (
        "phase-dac",
        "modulators",
        "mesh-1",
        "mesh-2",
        "mesh-3",
        "monitors",
        "detectors",
        "controller",
    )


@pytest.mark.parametrize("preset", sorted(TIMING_PRESETS))
def test_busy_time_within_step_time(preset):
    report = simulate_training_step(timing_preset(preset), n_layers=3, **SHAPE)

    for resource, utilisation in report.utilisation.items():
        busy_ps = report.busy_time_ps(resource)
        assert busy_ps <= report.step_time_ps
        assert 0.0 <= utilisation <= 1.0
        assert utilisation == busy_ps / report.step_time_ps


def test_resource_intervals_never_overlap():
    report = simulate_training_step(TINY, n_layers=3, **SHAPE)

    for resource in report.utilisation:
        spans = sorted(
            (i.start_ps, i.end_ps) for i in report.intervals if i.resource == resource
        )
        for (_, previous_end), (start, _) in itertools.pairwise(spans):
            assert start >= previous_end


def test_monitor_busy_time_closed_form():
    report = simulate_training_step(TINY, n_layers=3, **SHAPE)

    assert report.busy_time_ps("monitors") == 3 * 3 * TINY.monitor_readout_ps


def test_event_count_grows_with_layers():
    first = simulate_training_step(TINY, n_layers=2, **SHAPE)
    larger = simulate_training_step(TINY, n_layers=3, **SHAPE)

    assert first.n_events > 0
    assert larger.n_events > first.n_events


# Energy


def test_energy_total_is_sum_of_components():
    report = simulate_training_step(timing_preset("thermo-optic"), n_layers=3, **SHAPE)

    assert report.energy_j == sum(report.energy_by_component.values())
    assert list(report.energy_by_component) == [
        "laser",
        "modulators",
        "detector_adc",
        "monitor_adc",
        "phase_programming",
        "heater_holding",
        "controller",
    ]


def test_modulator_energy_closed_form():
    report = simulate_training_step(TINY, n_layers=3, **SHAPE)
    expected = report.optical_passes * 3 * 4 * TINY.modulator_energy_j

    assert report.energy_by_component["modulators"] == pytest.approx(
        expected, rel=1e-15
    )


def test_adc_energies_closed_form():
    report = simulate_training_step(TINY, n_layers=2, **SHAPE)
    detections = 2 * 2  # forward outputs and adjoint outputs of each layer
    readouts = 3 * 2  # one per pass
    expected_detector = detections * 3 * 4 * COHERENT_QUADRATURES * TINY.adc_energy_j
    expected_monitor = readouts * 3 * 12 * TINY.adc_energy_j

    assert report.energy_by_component["detector_adc"] == pytest.approx(
        expected_detector, rel=1e-15
    )
    assert report.energy_by_component["monitor_adc"] == pytest.approx(
        expected_monitor, rel=1e-15
    )


def test_time_based_energies_closed_form():
    report = simulate_training_step(TINY, n_layers=2, **SHAPE)
    step_time_s = report.step_time_ps * 1e-12

    assert report.energy_by_component["laser"] == pytest.approx(
        0.01 / 0.25 * step_time_s, rel=1e-12
    )
    assert report.energy_by_component["heater_holding"] == pytest.approx(
        0.0124 * 2 * 12 * step_time_s, rel=1e-12
    )


def test_counted_energies_closed_form():
    n_layers, batch, modes, phases = 2, 3, 4, 12
    report = simulate_training_step(TINY, n_layers=n_layers, **SHAPE)
    ops_per_layer = (
        2 * batch * modes * TINY.ops_per_activation
        + batch * modes * TINY.ops_per_interference_input
        + batch * phases * TINY.ops_per_gradient_term
    )
    ops = n_layers * ops_per_layer + n_layers * phases * TINY.ops_per_phase_update

    assert report.energy_by_component["controller"] == pytest.approx(
        ops * TINY.digital_energy_per_op_j, rel=1e-12
    )
    assert report.energy_by_component["phase_programming"] == pytest.approx(
        n_layers * phases * TINY.phase_program_energy_j, rel=1e-12
    )


def test_electro_optic_has_no_heater_energy():
    report = simulate_training_step(timing_preset("electro-optic"), n_layers=2, **SHAPE)

    assert report.energy_by_component["heater_holding"] == 0.0


def test_electro_optic_step_faster_than_thermo_optic():
    thermo = simulate_training_step(timing_preset("thermo-optic"), n_layers=2, **SHAPE)
    electro = simulate_training_step(
        timing_preset("electro-optic"), n_layers=2, **SHAPE
    )

    assert electro.step_time_ps < thermo.step_time_ps
    assert electro.energy_j < thermo.energy_j


# Reports


def test_runs_are_deterministic():
    first = simulate_training_step(TINY, n_layers=3, **SHAPE)
    second = simulate_training_step(TINY, n_layers=3, **SHAPE)

    assert first == second
    assert first.to_dict() == second.to_dict()


def test_to_dict_is_json_ready():
    report = simulate_training_step(TINY, n_layers=2, **SHAPE)
    loaded = json.loads(json.dumps(report.to_dict()))

    assert loaded["step_time_ps"] == report.step_time_ps
    assert loaded["energy_j"] == report.energy_j
    assert len(loaded["intervals"]) == len(report.intervals)
    assert loaded["intervals"][0] == dataclasses.asdict(report.intervals[0])


# Validation


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("settle_time_ps", -1),
        ("symbol_period_ps", 0),
        ("detector_integration_ps", 0),
        ("transit_time_ps", 2.5),
        ("digital_op_ps", True),
        ("modulator_energy_j", -1e-15),
        ("adc_energy_j", math.nan),
        ("heater_power_w", math.inf),
        ("laser_wall_plug_efficiency", 0.0),
        ("laser_wall_plug_efficiency", 1.5),
    ],
)
def test_timing_rejects_invalid_field(field, value):
    with pytest.raises(ValueError, match=field) as error:
        TimingConfig(**{field: value})

    assert repr(value) in str(error.value)


def test_timing_accepts_zero_where_meaningful():
    timing = TimingConfig(settle_time_ps=0, transit_time_ps=0, heater_power_w=0)

    assert timing.settle_time_ps == 0
    assert timing.heater_power_w == 0.0


def test_timing_efficiency_one_allowed():
    assert TimingConfig(laser_wall_plug_efficiency=1).laser_electrical_power_w == 0.01


def test_unknown_preset_lists_known_names():
    with pytest.raises(ValueError, match="'optical-ram'") as error:
        timing_preset("optical-ram")

    for name in TIMING_PRESETS:
        assert repr(name) in str(error.value)


def test_presets_include_thermo_and_electro_optic():
    assert timing_preset("thermo-optic") == TimingConfig()
    assert timing_preset("electro-optic").heater_power_w == 0.0
    assert timing_preset("electro-optic").settle_time_ps < 10_000


def test_from_mapping_overrides_preset():
    timing = TimingConfig.from_mapping(
        {"preset": "electro-optic", "symbol_period_ps": 50}
    )

    assert timing.symbol_period_ps == 50
    assert timing.settle_time_ps == timing_preset("electro-optic").settle_time_ps


def test_from_mapping_round_trips_to_dict():
    assert TimingConfig.from_mapping(TINY.to_dict()) == TINY


def test_from_mapping_rejects_unknown_key():
    with pytest.raises(ValueError, match="'settle_ps'") as error:
        TimingConfig.from_mapping({"settle_ps": 10})

    assert "'settle_time_ps'" in str(error.value)


def test_from_mapping_rejects_invalid_value():
    with pytest.raises(ValueError, match="symbol_period_ps"):
        TimingConfig.from_mapping({"symbol_period_ps": -100})


@pytest.mark.parametrize(
    ("argument", "value"),
    [("n_layers", 0), ("n_modes", -2), ("batch_size", 1.5), ("phases_per_layer", True)],
)
def test_step_rejects_invalid_shape(argument, value):
    arguments = {"n_layers": 2, **SHAPE, argument: value}

    with pytest.raises(ValueError, match=argument) as error:
        simulate_training_step(TINY, **arguments)

    assert repr(value) in str(error.value)


def test_step_rejects_non_config_timing():
    with pytest.raises(TypeError, match="TimingConfig"):
        simulate_training_step({"settle_time_ps": 1}, n_layers=1, **SHAPE)


def test_optical_pass_rejects_unknown_kind():
    env = simpy.Environment()
    model = StepModel(env, TINY, StepShape(1, 4, 3, 12))
    env.process(model.optical_pass("sideways", 0))

    with pytest.raises(ValueError, match="'sideways'"):
        env.run()


# Plots


def test_plot_timeline_writes_png(tmp_path):
    report = simulate_training_step(TINY, n_layers=2, **SHAPE)
    path = plot_timeline(report, tmp_path / "timeline.png")

    assert path == tmp_path / "timeline.png"
    assert path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_energy_breakdown_writes_png(tmp_path):
    report = simulate_training_step(timing_preset("electro-optic"), n_layers=2, **SHAPE)
    path = plot_energy_breakdown(report, tmp_path / "energy.png")

    assert path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
