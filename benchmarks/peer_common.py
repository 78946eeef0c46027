"""Parts shared by the peer comparisons (``peer_neuroptica.py``, ``peer_neurophox.py``).

Both drivers give a peer package the same ideal rectangular mesh, batch and targets as
ours, time our operations in this process next to the peer's worker, and reduce the
repeats to medians. Import this module after the thread variables are set, because it
imports numpy.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info

from photonic.hardware import Chip, HardwareConfig
from photonic.insitu import measure_gradient
from photonic.losses import ComplexMSE
from photonic.mesh import MeshLayout, RealisedMesh
from photonic.network import IdentityActivation, PhotonicNetwork
from photonic.reference import exact_gradient
from photonic.sweep import propagate


@dataclass(frozen=True)
class Problem:
    """The mesh, network and data that both packages receive."""

    network: PhotonicNetwork
    device: RealisedMesh
    x: np.ndarray
    targets: np.ndarray


@dataclass(frozen=True)
class Row:
    """One line of a report: an operation, the keys of its times, the peer's option.

    ``option`` None picks the peer's fastest option by median.
    """

    operation: str
    theirs: str
    ours: str
    option: str | None = None


@dataclass(frozen=True)
class RowResult:
    """Medians over the repeats of one report line; times in s."""

    row: Row
    option: str
    theirs: float
    ours: float
    speed_up: float


def build_problem(modes: int, batch: int, seed: int) -> Problem:
    """Build an ideal rectangular chip with random phases, a batch and targets."""
    chip_seed, data_seed = np.random.SeedSequence(seed).spawn(2)
    layout = MeshLayout.create(modes, "rectangular")
    chip = Chip(layout, HardwareConfig(), seed=chip_seed)
    network = PhotonicNetwork([chip], IdentityActivation(), ComplexMSE())
    rng = np.random.default_rng(data_seed)
    shape = (batch, modes)
    x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    targets = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    return Problem(network=network, device=chip.device(), x=x, targets=targets)


def write_problem(problem: Problem, path: Path) -> None:
    """Save the phases (θ, φ, ψ in rad), MZI positions, inputs and targets for a worker."""
    layout = problem.device.layout
    theta, phi, psi = layout.split_phases(problem.device.phases)
    np.savez(
        path,
        n_modes=layout.n_modes,
        theta=theta,
        phi=phi,
        psi=psi,
        column_lengths=np.array([len(column) for column in layout.columns]),
        top_modes=layout.mzi_top_modes,
        x=problem.x,
        targets=problem.targets,
    )


def best_time(function: Callable[[], object], calls: int) -> float:
    """Return the shortest wall time in s of ``calls`` calls of ``function``.

    One untimed call comes first, so compiling or loading code is not timed.
    """
    function()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def time_ours(problem: Problem, calls: int, fields: bool = False) -> dict[str, float]:
    """Time our operations, best of ``calls`` calls each, in s.

    The forward pass and both gradients start from a new device, as after a phase
    update: a device keeps its transfer matrix and cells, and so does a chip while its
    phases stay put. For the measured gradient the chip is reprogrammed inside the
    timed call, alternately with phases 1e-9 rad apart, so it also pays for programming.
    With ``fields`` the forward pass that records every shifter's fields is timed too.
    """
    device, network = problem.device, problem.network
    x, targets = problem.x, problem.targets
    chip = network.chips[0]
    settings = [chip.phases.copy(), chip.phases + 1e-9]

    def measured_after_update() -> object:
        settings.reverse()
        chip.phases = settings[0]
        return measure_gradient(network, x, targets)

    times = {
        "forward": best_time(
            lambda: propagate(device.with_phases(device.phases), x), calls
        ),
        "exact_gradient": best_time(
            lambda: exact_gradient(
                [device.with_phases(device.phases)],
                network.activation,
                network.loss,
                x,
                targets,
            ),
            calls,
        ),
        "measured_gradient": best_time(measured_after_update, calls),
    }
    if fields:
        times["forward_fields"] = best_time(
            lambda: device.forward(x, record=True), calls
        )
    return times


def summarise(
    rows: tuple[Row, ...],
    theirs_runs: list[dict[str, dict[str, float]]],
    ours_runs: list[dict[str, float]],
) -> list[RowResult]:
    """Reduce the repeats to medians, picking the peer's fastest option where asked."""
    results = []
    for row in rows:
        options = theirs_runs[0][row.theirs]
        option = row.option
        if option is None:
            option = min(
                options,
                key=lambda name: statistics.median(
                    run[row.theirs][name] for run in theirs_runs
                ),
            )
        theirs = [run[row.theirs][option] for run in theirs_runs]
        ours = [run[row.ours] for run in ours_runs]
        results.append(
            RowResult(
                row=row,
                option=option,
                theirs=statistics.median(theirs),
                ours=statistics.median(ours),
                speed_up=statistics.median(t / o for t, o in zip(theirs, ours)),
            )
        )
    return results


def machine_description() -> str:
    """Return the CPU model and the number of logical cores of this machine."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} logical cores"


def our_environment() -> str:
    """Describe Python, numpy and BLAS in this process, with BLAS's thread count."""
    blas = [
        f"{info.get('internal_api')} {info.get('version')} "
        f"({info.get('num_threads')} thread)"
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]
    return (
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"BLAS {', '.join(blas)}"
    )
