"""Tests of the schedule model: engine, architectures, methods, analysis and rooflines."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import simpy

from simulator import (
    ARCHITECTURES,
    METHODS,
    Scheduler,
    ScheduleSettings,
    ScheduleShape,
    bottleneck,
    critical_path,
    energy_by_phase,
    latency_breakdown,
    pass_count,
    simulate_schedule,
    system_preset,
    utilisation,
)
from simulator.architecture import stream_lag_ps
from simulator.components import (
    Controller,
    Detectors,
    Laser,
    Modulators,
    PhaseShifters,
    SystemConfig,
    TapMonitors,
)
from simulator.settling import FULL_PHASE_RANGE_RAD, settle_time_ps

# Small, distinct integer durations so that a wrong term in a time cannot cancel out.
# N = 2 modes gives P = 4 phases per layer: a write takes 4 × 3 ps, a readout
# ⌈4 / 2⌉ × 11 ps, a pass batch × 7 ps + 13 ps, an operation 1 ps.
TINY = SystemConfig(
    name="tiny",
    laser=Laser(optical_power_w=0.01, wall_plug_efficiency=0.25),
    modulators=Modulators(
        symbol_period_ps=7, latency_ps=0, dac_energy_j=3e-13, modulator_energy_j=2e-13
    ),
    phase_shifters=PhaseShifters(
        kind="electro-optic",
        rise_time_constant_ps=10,
        fall_time_constant_ps=10,
        p_pi_w=0.0,
        dac_channels=1,
        dac_write_ps=3,
        program_energy_j=1e-12,
    ),
    detectors=Detectors(sample_period_ps=5, latency_ps=0, adc_energy_j=5e-13),
    monitors=TapMonitors(adc_channels=2, adc_sample_period_ps=11, adc_energy_j=7e-13),
    controller=Controller(ops_per_s=1e12, energy_per_op_j=1e-12, stream_latency_ps=0),
    transit_time_ps=13,
)


def run_tiny(architecture="time-multiplexed", method="in-situ", n_layers=1, **kwargs):
    return simulate_schedule(
        TINY, architecture, method, ScheduleShape(2, n_layers, 1), **kwargs
    )


def spans(result):
    return [(a.name, a.start_ps, a.end_ps) for a in result.trace.activities]


# Pinned trace of the smallest schedule


def test_tiny_schedule_pinned_timestamps():
    result = run_tiny()

    # The mesh holds layer 0 before its update: write 4 × 3 ps, settle
    # ⌈10 ps · ln(0.1 / 0.01)⌉ = 24 ps. Passes last 7 + 13 ps; the three readouts of
    # 22 ps queue on the monitor ADCs; the gradient is 4 phases × 3 readings × 4 ops
    # and the optimizer 4 × 2 ops, at 1 ps per operation.
    assert spans(result) == [
        ("load-write", 0, 12),
        ("settle", 12, 36),
        ("forward", 36, 56),
        ("monitor-readout", 56, 78),
        ("adjoint", 56, 76),
        ("interference", 76, 96),
        ("monitor-readout", 78, 100),
        ("monitor-readout", 100, 122),
        ("gradient", 122, 170),
        ("optimizer", 170, 178),
    ]
    assert result.trace.makespan_ps == 178


def test_tiny_schedule_pinned_event_count():
    assert run_tiny().trace.n_events == 70
    assert run_tiny("pipelined", n_layers=2).trace.n_events == 146


def test_tiny_schedule_pinned_digest():
    assert (
        run_tiny().trace.digest()
        == "0c90b569ce3d6ebe730973c3134a0446fb4a1701f673500d422bffd71f2f56c7"
    )


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("method", METHODS)
def test_same_config_same_digest(architecture, method):
    shape = ScheduleShape(4, 2, 3)
    system = system_preset("thermo-optic-chip")
    first = simulate_schedule(system, architecture, method, shape, n_steps=2)
    second = simulate_schedule(system, architecture, method, shape, n_steps=2)

    assert first.trace.digest() == second.trace.digest()
    assert first.trace == second.trace


def test_digest_changes_with_one_duration():
    changed = dataclasses.replace(TINY, transit_time_ps=14)
    shape = ScheduleShape(2, 1, 1)

    first = simulate_schedule(TINY, "time-multiplexed", "in-situ", shape)
    second = simulate_schedule(changed, "time-multiplexed", "in-situ", shape)

    assert first.trace.digest() != second.trace.digest()


def test_times_are_integer_ps():
    result = run_tiny("pipelined", n_layers=2)

    for activity in result.trace.activities:
        assert type(activity.start_ps) is int
        assert type(activity.end_ps) is int


# Engine


def test_interrupted_waiter_releases_request():
    env = simpy.Environment()
    scheduler = Scheduler(env, {"mesh": 1})
    starts = {}

    def user(name, delay, duration):
        yield env.timeout(delay)
        activity = yield from scheduler.occupy(["mesh"], name, duration, phase="test")
        starts[name] = activity.start_ps

    def interrupted_user():
        yield env.timeout(10)
        try:
            yield from scheduler.occupy(["mesh"], "waiter", 5, phase="test")
        except simpy.Interrupt:
            starts["waiter interrupted"] = env.now

    env.process(user("holder", 0, 100))
    waiter = env.process(interrupted_user())
    env.process(user("next", 20, 5))

    def interrupter():
        yield env.timeout(50)
        waiter.interrupt("give up")

    env.process(interrupter())
    env.run()

    assert starts == {"holder": 0, "waiter interrupted": 50, "next": 100}
    assert [a.name for a in scheduler.activities] == ["holder", "next"]
    (cancelled,) = scheduler.cancelled
    assert cancelled.name == "waiter"
    assert cancelled.ready_ps == 10
    assert cancelled.cancelled_ps == 50


def test_interrupt_while_holding_records_truncated_activity():
    env = simpy.Environment()
    scheduler = Scheduler(env, {"mesh": 1})

    def holder():
        try:
            yield from scheduler.occupy(["mesh"], "pass", 100, phase="test")
        except simpy.Interrupt:
            pass

    process = env.process(holder())
    env.process(scheduler.occupy(["mesh"], "next", 5, phase="test"))

    def interrupter():
        yield env.timeout(30)
        process.interrupt()

    env.process(interrupter())
    env.run()

    cut, following = scheduler.activities
    assert (cut.start_ps, cut.end_ps, cut.interrupted) == (0, 30, True)
    assert (following.start_ps, following.end_ps) == (30, 35)
    assert following.cause == cut.index


def test_waiting_requests_served_by_step_then_time():
    env = simpy.Environment()
    scheduler = Scheduler(env, {"controller": 1})

    def user(name, delay, step):
        yield env.timeout(delay)
        yield from scheduler.occupy(["controller"], name, 10, phase="test", step=step)

    env.process(user("holder", 0, 0))
    env.process(user("late step", 1, 1))
    env.process(user("early step, later request", 2, 0))
    env.process(user("late step, later request", 3, 1))
    env.run()

    assert [a.name for a in scheduler.activities] == [
        "holder",
        "early step, later request",
        "late step",
        "late step, later request",
    ]


def test_release_hands_over_at_same_picosecond():
    env = simpy.Environment()
    scheduler = Scheduler(env, {"mesh": 1})
    env.process(scheduler.occupy(["mesh"], "first", 25, phase="test"))
    env.process(scheduler.occupy(["mesh"], "second", 5, phase="test"))
    env.run()

    first, second = scheduler.activities
    assert second.start_ps == first.end_ps == 25
    assert second.ready_ps == 0
    assert second.cause == first.index


def test_scheduler_rejects_bad_capacity():
    with pytest.raises(ValueError, match="'mesh'.*0"):
        Scheduler(simpy.Environment(), {"mesh": 0})


def test_occupy_rejects_negative_duration():
    env = simpy.Environment()
    scheduler = Scheduler(env, {"mesh": 1})
    env.process(scheduler.occupy(["mesh"], "pass", -1, phase="test"))

    with pytest.raises(ValueError, match="-1"):
        env.run()


# Architectures and methods


def test_time_multiplexed_load_count():
    n_layers = 3
    result = run_tiny(n_layers=n_layers, n_steps=2)
    loads = [a for a in result.trace.activities if a.name == "load-write"]

    assert len(loads) == 2 * (2 * n_layers - 1)


def test_time_multiplexed_settles_full_range_between_layers():
    result = run_tiny(n_layers=2)
    settles = [a.duration_ps for a in result.trace.activities if a.name == "settle"]
    full = settle_time_ps(TINY.phase_shifters, FULL_PHASE_RANGE_RAD, 0.01)
    update = settle_time_ps(TINY.phase_shifters, 0.1, 0.01)

    # Update of layer 0, load of layer 1, load of layer 0 for its backward passes.
    assert settles == [update, full, full]


def test_pipelined_forward_streams_with_lag():
    result = run_tiny("pipelined", n_layers=3)
    forward = [p for p in result.trace.passes if p.kind == "forward"]
    lag = stream_lag_ps(TINY)

    assert [p.start_ps for p in forward] == [0, lag, 2 * lag]


def test_pipelined_step_writes_every_mesh_once():
    result = run_tiny("pipelined", n_layers=3, n_steps=2)
    writes = [(a.step, a.layer) for a in result.trace.activities if "write" in a.name]

    assert sorted(writes) == [(step, layer) for step in (0, 1) for layer in range(3)]


def test_steps_are_alike():
    one = run_tiny("pipelined", n_layers=2, n_steps=1)
    three = run_tiny("pipelined", n_layers=2, n_steps=3)

    assert three.trace.makespan_ps == 3 * one.trace.makespan_ps
    assert three.step_time_s == one.step_time_s
    assert three.energy_per_step_j == pytest.approx(one.energy_per_step_j, rel=1e-12)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_on_pass_matches_pass_records(architecture):
    calls = []
    result = run_tiny(
        architecture,
        n_layers=3,
        on_pass=lambda kind, layer, time_ps: calls.append((kind, layer, time_ps)),
    )

    assert calls == [(p.kind, p.layer, p.start_ps) for p in result.trace.passes]


def test_pipelined_on_pass_interleaves_layers():
    calls = []
    run_tiny(
        "pipelined",
        n_layers=2,
        on_pass=lambda kind, layer, time_ps: calls.append((kind, layer)),
    )

    assert calls == [
        ("forward", 0),
        ("forward", 1),
        ("adjoint", 1),
        ("adjoint", 0),
        ("interference", 1),
        ("interference", 0),
    ]


def test_on_pass_exception_stops_simulation():
    def failing(kind, layer, time_ps):
        raise KeyError("physics failed")

    with pytest.raises(KeyError, match="physics failed"):
        run_tiny(on_pass=failing)


def test_pass_residual_is_first_order_decay():
    settings = ScheduleSettings(settle_tolerance_rad=0.05)
    result = run_tiny(n_layers=2, settings=settings)
    tau_ps = TINY.phase_shifters.settle_time_constant_ps

    for record in result.trace.passes:
        expected = record.write_change_rad * math.exp(-record.since_write_ps / tau_ps)
        assert record.residual_rad == pytest.approx(expected, rel=1e-12)
    first = result.trace.passes[0]
    assert first.residual_rad <= 0.05
    assert first.residual_rad > 0.05 * math.exp(-0.1)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_in_situ_passes_three_per_layer_in_trace(n_layers):
    result = run_tiny(n_layers=n_layers)

    assert result.mesh_passes_per_step == 3 * n_layers
    assert result.counts.optical_passes == 3 * n_layers


def test_analog_subtraction_four_passes_one_readout():
    result = run_tiny("pipelined", "in-situ-4", n_layers=2)
    readouts = [a for a in result.trace.activities if a.name == "monitor-readout"]

    assert result.mesh_passes_per_step == 8
    assert len(readouts) == 2


def test_hybrid_one_pass_per_layer_no_monitors():
    result = run_tiny(method="hybrid", n_layers=2)
    names = {a.name for a in result.trace.activities}

    assert result.mesh_passes_per_step == 2
    assert "monitor-readout" not in names
    assert {"model-forward", "model-adjoint"} <= names


def test_finite_difference_counts_small_mesh():
    shape = ScheduleShape(2, 2, 1)
    result = simulate_schedule(TINY, "pipelined", "finite-difference", shape)
    perturbs = [a for a in result.trace.activities if a.name == "perturb-write"]

    # 4 phases per layer: 8 evaluations per layer, each + and − write, and a final
    # restore per layer.
    assert len(perturbs) == 2 * (2 * 4 + 1)
    # Nominal pass of layer 0; layer 0 evaluations pass both meshes, layer 1 one.
    assert result.mesh_passes_per_step == 1 + 8 * 2 + 8


def test_streaming_off_puts_elementwise_on_controller():
    system = dataclasses.replace(
        TINY, controller=dataclasses.replace(TINY.controller, stream_elementwise=False)
    )
    result = simulate_schedule(system, "pipelined", "in-situ", ScheduleShape(2, 2, 3))
    activation = [a for a in result.trace.activities if a.name == "activation"]
    forward = [p for p in result.trace.passes if p.kind == "forward"]

    (computed,) = activation
    assert computed.resources == ("controller",)
    assert computed.duration_ps == 3 * 2 * TINY.operations.activation
    assert forward[1].start_ps >= computed.end_ps


def test_camera_frame_per_sample_sets_pass_length():
    system = system_preset("pai2023-bench")
    result = simulate_schedule(
        system, "time-multiplexed", "in-situ", ScheduleShape(2, 1, 3)
    )
    forward = next(a for a in result.trace.activities if a.name == "forward")
    camera = system.monitors
    per_sample = (
        max(system.modulators.symbol_period_ps, camera.frame_readout_ps)
        + camera.exposure_ps
    )

    assert forward.duration_ps == 3 * per_sample + system.transit_time_ps
    assert "monitors" in forward.resources


def test_simulate_rejects_unknown_architecture():
    with pytest.raises(ValueError, match="'ring'"):
        simulate_schedule(TINY, "ring", "in-situ", ScheduleShape(2, 1, 1))


def test_simulate_rejects_unknown_method():
    with pytest.raises(ValueError, match="'guess'"):
        simulate_schedule(TINY, "pipelined", "guess", ScheduleShape(2, 1, 1))


def test_simulate_rejects_non_system():
    with pytest.raises(TypeError, match="SystemConfig"):
        simulate_schedule({}, "pipelined", "in-situ", ScheduleShape(2, 1, 1))


@pytest.mark.parametrize(
    ("field", "value"), [("n_modes", 1), ("n_layers", 0), ("batch_size", 2.0)]
)
def test_shape_rejects_invalid_field(field, value):
    values = {"n_modes": 4, "n_layers": 2, "batch_size": 3, field: value}

    with pytest.raises(ValueError, match=field):
        ScheduleShape(**values)


# Acceptance: rooflines


def test_electro_optic_large_batch_reaches_symbol_rate_roofline():
    system = system_preset("electro-optic-chip")
    n_layers, batch = 2, 2**20
    result = simulate_schedule(
        system, "time-multiplexed", "in-situ", ScheduleShape(8, n_layers, batch)
    )
    roofline = system.modulators.symbol_rate_hz / (3 * n_layers)

    assert result.throughput_samples_per_s <= roofline
    assert result.throughput_samples_per_s >= 0.95 * roofline


def test_electro_optic_small_batch_far_below_roofline():
    system = system_preset("electro-optic-chip")
    result = simulate_schedule(
        system, "time-multiplexed", "in-situ", ScheduleShape(8, 2, 1)
    )
    roofline = system.modulators.symbol_rate_hz / 6

    assert result.throughput_samples_per_s < 0.01 * roofline


def test_pipelined_large_batch_reaches_per_mesh_roofline():
    system = system_preset("electro-optic-chip")
    result = simulate_schedule(
        system, "pipelined", "in-situ", ScheduleShape(8, 3, 2**20)
    )
    # Every mesh carries three passes per sample, whatever the number of layers.
    roofline = system.modulators.symbol_rate_hz / 3

    assert result.throughput_samples_per_s <= roofline
    assert result.throughput_samples_per_s >= 0.95 * roofline


def test_thermo_optic_small_batch_settling_bound_time_multiplexed():
    system = system_preset("thermo-optic-chip")
    shifters = system.phase_shifters
    shape = ScheduleShape(4, 2, 1)
    result = simulate_schedule(system, "time-multiplexed", "in-situ", shape)

    write = shifters.write_time_ps(shape.phases_per_layer)
    full = settle_time_ps(shifters, FULL_PHASE_RANGE_RAD, 0.01)
    update = settle_time_ps(shifters, 0.1, 0.01)
    # Layer 0 after its update, layer 1, then layer 0 again for its backward passes.
    bound_ps = 3 * write + update + 2 * full

    assert result.trace.makespan_ps >= bound_ps
    assert result.trace.makespan_ps <= 1.05 * bound_ps


def test_thermo_optic_small_batch_settling_bound_pipelined():
    system = system_preset("thermo-optic-chip")
    shifters = system.phase_shifters
    shape = ScheduleShape(4, 2, 1)
    result = simulate_schedule(system, "pipelined", "in-situ", shape)

    bound_ps = shifters.write_time_ps(shape.phases_per_layer) + settle_time_ps(
        shifters, 0.1, 0.01
    )

    assert result.trace.makespan_ps >= bound_ps
    assert result.trace.makespan_ps <= 1.05 * bound_ps


# Acceptance: capacity


CAPACITY_CASES = [
    (preset, architecture, method)
    for preset in ("thermo-optic-chip", "electro-optic-chip", "pai2023-bench")
    for architecture in ARCHITECTURES
    for method in METHODS
]


@pytest.mark.parametrize(("preset", "architecture", "method"), CAPACITY_CASES)
def test_busy_time_within_capacity(preset, architecture, method):
    result = simulate_schedule(
        system_preset(preset), architecture, method, ScheduleShape(4, 2, 5), n_steps=2
    )
    trace = result.trace

    for resource, capacity in trace.capacities.items():
        assert trace.busy_time_ps(resource) <= capacity * trace.makespan_ps
    for load in utilisation(trace).values():
        assert 0.0 <= load <= 1.0


def test_busy_time_within_capacity_with_cores():
    system = dataclasses.replace(
        TINY, controller=dataclasses.replace(TINY.controller, cores=3)
    )
    result = simulate_schedule(
        system, "pipelined", "hybrid", ScheduleShape(4, 3, 2), n_steps=2
    )
    trace = result.trace

    assert trace.capacities["controller"] == 3
    assert trace.busy_time_ps("controller") <= 3 * trace.makespan_ps
    overlapping = [
        (a, b)
        for a, b in itertools.combinations(trace.activities, 2)
        if "controller" in a.resources
        and "controller" in b.resources
        and a.start_ps < b.end_ps
        and b.start_ps < a.end_ps
    ]
    assert overlapping


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_unit_resources_never_overlap(architecture):
    result = run_tiny(architecture, "in-situ-4", n_layers=2, n_steps=2)
    trace = result.trace

    for resource, capacity in trace.capacities.items():
        if capacity != 1:
            continue
        held = sorted(
            (a.start_ps, a.end_ps) for a in trace.activities if resource in a.resources
        )
        for (_, previous_end), (start, _) in itertools.pairwise(held):
            assert start >= previous_end


# Acceptance: passes per gradient at N = 64, two layers


@pytest.fixture(scope="module")
def n64_results():
    system = system_preset("thermo-optic-chip")
    shape = ScheduleShape(64, 2, 32)
    return {
        method: simulate_schedule(system, "pipelined", method, shape)
        for method in ("in-situ", "finite-difference")
    }


def test_passes_per_gradient_n64(n64_results):
    shape = ScheduleShape(64, 2, 32)

    assert pass_count("in-situ", shape).optical_passes == 3 * 2
    assert pass_count("finite-difference", shape).optical_passes == 2 * 2 * 64**2
    assert n64_results["in-situ"].counts.optical_passes == 6
    assert n64_results["finite-difference"].counts.optical_passes == 16384


def test_mesh_passes_in_trace_n64(n64_results):
    evaluations = 2 * 64**2

    assert n64_results["in-situ"].mesh_passes_per_step == 6
    # Nominal pass, layer-0 evaluations through two meshes, layer-1 through one.
    assert n64_results["finite-difference"].mesh_passes_per_step == (
        1 + 2 * evaluations + evaluations
    )


def test_finite_difference_ratio_n64(n64_results):
    in_situ, finite = n64_results["in-situ"], n64_results["finite-difference"]
    shifters = system_preset("thermo-optic-chip").phase_shifters
    perturbation_settles = settle_time_ps(shifters, 0.1, 0.01) + settle_time_ps(
        shifters, 0.2, 0.01
    )
    time_ratio = finite.step_time_s / in_situ.step_time_s
    energy_ratio = finite.energy_per_step_j / in_situ.energy_per_step_j

    # Every phase's +h and −h writes settle one after another on its mesh.
    assert finite.trace.makespan_ps >= 2 * 64**2 * perturbation_settles
    assert time_ratio > 1000
    assert energy_ratio > 1000


# Analysis


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("method", METHODS)
def test_critical_path_covers_makespan(architecture, method):
    result = simulate_schedule(
        system_preset("thermo-optic-chip"),
        architecture,
        method,
        ScheduleShape(4, 2, 3),
        n_steps=2,
    )
    path = critical_path(result.trace)

    assert path[0].start_ps == 0
    assert path[-1].end_ps == result.trace.makespan_ps
    for previous, segment in itertools.pairwise(path):
        assert segment.start_ps == previous.end_ps
    assert sum(latency_breakdown(result.trace).values()) == result.trace.makespan_ps


def test_tiny_latency_breakdown():
    assert latency_breakdown(run_tiny().trace) == {
        "monitor-readout": 66,
        "gradient": 48,
        "settle": 24,
        "forward": 20,
        "load-write": 12,
        "optimizer": 8,
    }


def test_bottleneck_is_most_utilised():
    result = simulate_schedule(
        system_preset("thermo-optic-chip"),
        "time-multiplexed",
        "in-situ",
        ScheduleShape(16, 2, 1),
    )
    name, load = bottleneck(result.trace)

    assert name == "mesh"
    assert load == max(utilisation(result.trace).values())


@pytest.mark.parametrize("method", METHODS)
def test_energy_by_phase_sums_to_total(method):
    result = simulate_schedule(
        system_preset("pai2023-bench"), "pipelined", method, ScheduleShape(2, 2, 2)
    )
    table = energy_by_phase(result.trace)

    assert sum(table.values()) == pytest.approx(
        sum(result.energy_by_component_j.values()), rel=1e-12
    )
    for component in {component for component, _ in table}:
        assert sum(
            energy for (name, _), energy in table.items() if name == component
        ) == pytest.approx(result.energy_by_component_j[component], rel=1e-12)


def test_tiny_energy_closed_form():
    result = run_tiny()
    energy = result.energy_by_component_j
    elements = 1 * 2  # batch × modes
    makespan_s = 178e-12

    assert energy["modulators"] == pytest.approx(3 * elements * 2e-13, rel=1e-12)
    assert energy["input_dacs"] == pytest.approx(3 * elements * 3e-13, rel=1e-12)
    # Forward and adjoint outputs, two quadratures each.
    assert energy["detector_adcs"] == pytest.approx(2 * elements * 2 * 5e-13, rel=1e-12)
    assert energy["monitor_readout"] == pytest.approx(3 * 4 * 7e-13, rel=1e-12)
    assert energy["phase_programming"] == pytest.approx(4 * 1e-12, rel=1e-12)
    # Streamed loss and interference input (10 + 2 per element), gradient 48, optimizer 8.
    assert energy["controller"] == pytest.approx(
        (elements * (10 + 2) + 48 + 8) * 1e-12, rel=1e-12
    )
    assert energy["laser"] == pytest.approx(0.01 / 0.25 * makespan_s, rel=1e-12)
    assert energy["heater_holding"] == 0.0


def test_pipelined_static_power_scales_with_meshes():
    system = system_preset("thermo-optic-chip")
    shape = ScheduleShape(4, 3, 1)
    single = simulate_schedule(system, "time-multiplexed", "in-situ", shape)
    per_layer = simulate_schedule(system, "pipelined", "in-situ", shape)
    holding = 16 * system.phase_shifters.holding_power_w

    assert single.trace.static_power_w["heater_holding"] == pytest.approx(holding)
    assert per_layer.trace.static_power_w["heater_holding"] == pytest.approx(
        3 * holding
    )
