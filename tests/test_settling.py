"""Phase shifters that have not finished settling when a pass runs."""

import math

import numpy as np
import pytest

from photonic.hardware import Chip, HardwareConfig, Programming
from photonic.mesh import MeshLayout

TAU = 1.22e-6


def settling_chip():
    hardware = HardwareConfig(programming=Programming(settling_time_constant_s=TAU))
    return Chip(MeshLayout.create(4, "rectangular"), hardware, seed=0)


@pytest.mark.parametrize("elapsed", [0.0, 0.5e-6, 1.22e-6, 6e-6])
def test_pass_sees_exponential_lag(elapsed):
    chip = settling_chip()
    old = chip.phases.copy()
    new = old + 0.3
    chip.program(new, time_s=1e-3)
    seen = chip.pass_device("forward", time_s=1e-3 + elapsed).phases
    expected = new - 0.3 * math.exp(-elapsed / TAU)
    np.testing.assert_allclose(seen, np.mod(expected, 2 * np.pi), atol=1e-12)


def test_device_after_settling_equals_programmed():
    chip = settling_chip()
    chip.program(chip.phases + 0.3, time_s=0.0)
    late = chip.pass_device("forward", time_s=1.0).phases
    np.testing.assert_allclose(late, chip.applied_phases(), atol=1e-12)


def test_program_without_time_applies_at_once():
    chip = settling_chip()
    chip.program(chip.phases + 0.3)
    np.testing.assert_array_equal(
        chip.pass_device("forward", time_s=0.0).phases, chip.applied_phases()
    )


def test_negative_time_constant_is_rejected():
    with pytest.raises(ValueError, match="settling_time_constant_s = -1"):
        Programming(settling_time_constant_s=-1.0)
