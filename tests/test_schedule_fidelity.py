"""Tests of the gradient error of each method from the physics model."""

from __future__ import annotations

import numpy as np
import pytest

from photonic.hardware import HardwareConfig, StaticErrors, hardware_preset
from simulator import ScheduleShape, simulate_schedule, system_preset
from simulator.fidelity import (
    build_problem,
    finite_difference_gradient_error,
    hybrid_gradient_error,
    in_situ_gradient_error,
)

COUPLER_ERRORS = HardwareConfig(static=StaticErrors(coupler_error_std=0.05))


def test_ideal_chip_in_situ_exact():
    problem = build_problem(4, 2, 6, HardwareConfig(), seed=3)
    error = in_situ_gradient_error(problem)

    assert error.cosine_distance < 1e-12
    assert error.relative_error < 1e-12
    # Two layers of 16 phases; the output phases of both layers cannot change the loss.
    assert error.n_compared == 2 * 12


def test_ideal_chip_hybrid_exact():
    error = hybrid_gradient_error(build_problem(4, 2, 6, HardwareConfig(), seed=3))

    assert error.relative_error < 1e-12


def test_ideal_chip_finite_difference_truncation_order():
    problem = build_problem(4, 2, 6, HardwareConfig(), seed=3)
    coarse = finite_difference_gradient_error(problem, 1e-2)
    fine = finite_difference_gradient_error(problem, 1e-3)

    # Central differences err by O(h²): ten times smaller h, about 100 times less.
    assert fine.relative_error < coarse.relative_error / 50
    assert fine.relative_error < 1e-4


def test_hybrid_misses_static_errors():
    problem = build_problem(4, 2, 6, COUPLER_ERRORS, seed=3)

    assert hybrid_gradient_error(problem).cosine_distance > 1e-4
    assert in_situ_gradient_error(problem).cosine_distance < 1e-10


def test_finite_difference_sees_static_errors():
    problem = build_problem(4, 2, 6, COUPLER_ERRORS, seed=3)
    error = finite_difference_gradient_error(problem, 1e-3)

    assert error.relative_error < 1e-4


def test_finite_difference_subset_count():
    problem = build_problem(4, 2, 4, hardware_preset("bench"), seed=1)
    error = finite_difference_gradient_error(problem, 0.1, n_parameters=5, seed=2)

    assert error.n_compared == 5


def test_finite_difference_restores_phases():
    problem = build_problem(4, 2, 4, hardware_preset("bench"), seed=1)
    before = [chip.phases.copy() for chip in problem.network.chips]
    finite_difference_gradient_error(problem, 0.1)

    for chip, phases in zip(problem.network.chips, before):
        np.testing.assert_array_equal(chip.phases, phases)


def test_finite_difference_rejects_bad_step():
    problem = build_problem(4, 1, 2, HardwareConfig(), seed=0)

    with pytest.raises(ValueError, match="step_rad"):
        finite_difference_gradient_error(problem, 0.0)


def test_noisy_chip_errors_positive():
    problem = build_problem(4, 2, 8, hardware_preset("bench"), seed=0)

    assert in_situ_gradient_error(problem).cosine_distance > 0
    assert finite_difference_gradient_error(problem, 0.1).cosine_distance > 0


@pytest.mark.parametrize("architecture", ["time-multiplexed", "pipelined"])
def test_in_situ_runs_at_scheduled_times(architecture):
    times = []
    simulate_schedule(
        system_preset("thermo-optic-chip"),
        architecture,
        "in-situ",
        ScheduleShape(4, 3, 8),
        on_pass=lambda kind, layer, time_ps: times.append(
            (kind, layer, time_ps * 1e-12)
        ),
    )
    hardware = hardware_preset("thermo-optic-si")
    scheduled = in_situ_gradient_error(build_problem(4, 3, 8, hardware, 5), times)
    frozen = in_situ_gradient_error(build_problem(4, 3, 8, hardware, 5))

    assert scheduled.n_compared == frozen.n_compared
    assert np.isfinite(scheduled.cosine_distance)


def test_drift_follows_pass_times():
    hardware = hardware_preset("thermo-optic-si")
    order = [("forward", 0, 0.0), ("adjoint", 0, 0.0), ("interference", 0, 0.0)]
    late = [("forward", 0, 0.0), ("adjoint", 0, 50.0), ("interference", 0, 50.0)]
    on_time = in_situ_gradient_error(build_problem(4, 1, 8, hardware, 5), order)
    delayed = in_situ_gradient_error(build_problem(4, 1, 8, hardware, 5), late)

    assert delayed.cosine_distance != on_time.cosine_distance


def test_build_problem_rejects_small_mesh():
    with pytest.raises(ValueError, match="n_modes"):
        build_problem(1, 1, 1, HardwareConfig(), 0)
