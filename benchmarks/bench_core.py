"""Time the product's core operations beside the dense-matrix limits, in one process.

Every figure is a ratio against a baseline measured in the same run, because absolute times
drift on shared machines. Each row is the median of ``--repeats`` runs of the best of a few
calls, candidate and baseline timed side by side. BLAS runs on one thread (threadpoolctl) so
rows compare like with like.

Rows marked "sweep" use photonic.sweep: batch sums swept through layers of cells, with the
transfer matrix composed once per device. Their candidates start from a new device
instance, as after a phase update, so they pay for building the cells and composing U.

Usage:
    python benchmarks/bench_core.py              # N = 64, batch 1024; memory at N = 256
    python benchmarks/bench_core.py --smoke      # tiny sizes, one repeat: checks it runs
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import blas
from scipy.stats import unitary_group
from threadpoolctl import threadpool_info, threadpool_limits

from photonic.decompose import decompose
from photonic.detection import DetectorConfig
from photonic.hardware import Chip, HardwareConfig, PassErrors, StaticErrors
from photonic.insitu import measure_gradient
from photonic.losses import ComplexMSE
from photonic.mesh import MeshLayout, RealisedMesh
from photonic.network import IdentityActivation, PhotonicNetwork
from photonic.kernels import scale_rows
from photonic.reference import exact_gradient
from photonic.sweep import (
    MeshSweep,
    OpticalPass,
    adjoint_gain,
    batch_powers,
    exact_batch_gradient,
    interference_input,
    measured_batch_gradient,
    propagate,
    propagate_backward,
    same_device,
)

PAI_K = 0.005
"""Monitor noise K of the measured-gradient rows (the "bench" hardware preset)."""


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one run."""

    modes: int
    batch: int
    memory_modes: int
    memory_batch: int
    decomposition_modes: int
    accuracy_modes: tuple[int, ...]


FULL = Sizes(64, 1024, 256, 4096, 256, (64, 256))
SMOKE = Sizes(8, 32, 16, 64, 16, (8, 16))


def best_time(function: Callable[[], object], calls: int) -> float:
    """Return the shortest wall time in s of ``calls`` calls."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def median_ratio(
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    repeats: int,
    calls: int,
) -> tuple[float, float, float]:
    """Return the median over ``repeats`` of candidate / baseline time, and both times.

    Both run ``calls`` times untimed first, so that neither pays for what the row before
    left behind (a heap grown by the recorded-field rows slows the first calls after
    them by about 5 %).
    """
    best_time(baseline, calls)
    best_time(candidate, calls)
    ratios, candidate_times, baseline_times = [], [], []
    for _ in range(repeats):
        base = best_time(baseline, calls)
        cand = best_time(candidate, calls)
        ratios.append(cand / base)
        candidate_times.append(cand)
        baseline_times.append(base)
    return (
        statistics.median(ratios),
        statistics.median(candidate_times),
        statistics.median(baseline_times),
    )


def lossy_chip(n: int, hardware: HardwareConfig | None = None, seed: int = 1) -> Chip:
    """Build a rectangular chip with coupler errors, 0.2 dB MZI loss and phase offsets."""
    static = StaticErrors(
        coupler_error_std=0.02, mzi_loss_db=0.2, phase_offset_std=0.05
    )
    hardware = HardwareConfig(static=static) if hardware is None else hardware
    return Chip(MeshLayout.create(n, "rectangular"), hardware, seed=seed)


def fresh(device: RealisedMesh) -> RealisedMesh:
    """Return an equal device with empty caches, as a chip returns after a phase update."""
    return device.with_phases(device.phases)


def random_fields(rng: np.random.Generator, batch: int, n: int) -> np.ndarray:
    return rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))


def timing_rows(sizes: Sizes) -> list[tuple[str, Callable, Callable, str, str]]:
    """Build the rows (operation, candidate, baseline, baseline label, target)."""
    rng = np.random.default_rng(0)
    n, batch = sizes.modes, sizes.batch
    chip = lossy_chip(n)
    device = chip.device()
    network = PhotonicNetwork([chip], IdentityActivation(), ComplexMSE())
    x = random_fields(rng, batch, n)
    targets = random_fields(rng, batch, n)
    u = device.matrix()
    warm = fresh(device)
    propagate(warm, x)

    monitor = DetectorConfig.pai2023(PAI_K)
    noisy_chip = lossy_chip(
        n,
        HardwareConfig(
            static=StaticErrors(
                coupler_error_std=0.02, mzi_loss_db=0.2, phase_offset_std=0.05
            ),
            forward=PassErrors(monitor=monitor),
            adjoint=PassErrors(monitor=monitor),
            interference=PassErrors(monitor=monitor),
        ),
    )
    noise = np.random.default_rng(1)

    def dense_forward() -> object:
        return x @ u.T

    def compose_and_forward() -> object:
        return x @ device.matrix().T

    def mesh_forward() -> object:
        return device.forward(x)

    def sweep_forward_composed() -> object:
        return propagate(fresh(device), x)

    def sweep_forward_cached() -> object:
        return propagate(warm, x)

    def dense_reference() -> object:
        # The digital reference with dense matrices: forward, adjoint, and the outer
        # product δᵀx that holds every weight gradient.
        y = x @ u.T
        delta = np.conj(y - targets) / batch
        adjoint = delta @ u
        return delta.T @ x, adjoint

    def mesh_exact() -> object:
        # The straightforward computation: every sample's fields recorded at every
        # shifter in both directions, then −Im Σ_b a·b.
        layer = fresh(device)
        y, forward = layer.forward(x, record=True)
        delta = np.conj(y - targets) / batch
        adjoint, backward = layer.backward(delta, record=True)
        gradient = -np.imag(np.sum(forward.stacked() * backward.stacked(), axis=0))
        return gradient, adjoint

    def sweep_exact_cached() -> object:
        # The same on a device whose U and cells are already built: phases unchanged,
        # as for several batches through one device.
        return exact_gradient([device], network.activation, network.loss, x, targets)

    def sweep_exact() -> object:
        # The same steps as the dense reference on a device met for the first time:
        # compose U, forward, adjoint source, adjoint output, every phase's gradient.
        layer = fresh(device)
        y = propagate(layer, x)
        delta = np.conj(y - targets) / batch
        adjoint = propagate_backward(layer, delta)
        return exact_batch_gradient(layer, x, delta), adjoint

    def mesh_measured() -> object:
        return measure_gradient(network, x, targets, summed_monitors=False)

    def sweep_measured() -> object:
        # One layer of the three-pass protocol with Pai monitors, the passes' devices
        # from the chip as InSituStep gets them, monitor readings drawn as batch sums.
        # The chip hands out one device while its phases stay put. A copy of it plays
        # the new device that the first pass after a phase update meets.
        forward = fresh(noisy_chip.pass_device("forward"))
        y = propagate(forward, x)
        delta = np.conj(y - targets) / batch
        gain, weight = adjoint_gain(x, delta)
        source = scale_rows(delta, gain)
        adjoint = noisy_chip.pass_device("adjoint")
        if same_device(adjoint, forward):
            adjoint = forward
        adjoint_out = propagate_backward(adjoint, source)
        interference = noisy_chip.pass_device("interference")
        if same_device(interference, forward):
            interference = forward
        return measured_batch_gradient(
            OpticalPass(forward, x, monitor),
            OpticalPass(adjoint, source, monitor),
            OpticalPass(interference, interference_input(x, adjoint_out), monitor),
            weight,
            noise,
        )

    return [
        (
            "forward, column by column",
            mesh_forward,
            compose_and_forward,
            "compose U + U@X",
            "",
        ),
        ("forward, column by column", mesh_forward, dense_forward, "one U@X", ""),
        (
            "forward, sweep, U composed",
            sweep_forward_composed,
            compose_and_forward,
            "compose U + U@X",
            "<= 1.3",
        ),
        (
            "forward, sweep, U composed",
            sweep_forward_composed,
            dense_forward,
            "one U@X",
            "",
        ),
        (
            "forward, sweep, U cached",
            sweep_forward_cached,
            dense_forward,
            "one U@X",
            "<= 1.1",
        ),
        (
            "exact gradient, recorded fields",
            mesh_exact,
            dense_reference,
            "dense reference",
            "",
        ),
        (
            "exact gradient, sweep",
            sweep_exact,
            dense_reference,
            "dense reference",
            "<= 2",
        ),
        (
            "exact gradient, sweep, cells cached",
            sweep_exact_cached,
            dense_reference,
            "dense reference",
            "",
        ),
        (
            "measured gradient, per sample",
            mesh_measured,
            dense_reference,
            "dense reference",
            "",
        ),
        (
            "measured gradient, sweep, Pai K",
            sweep_measured,
            dense_reference,
            "dense reference",
            "<= 4",
        ),
    ]


def gemm_row(sizes: Sizes, repeats: int, calls: int) -> tuple[float, float, float]:
    """Time the BLAS call photonic.sweep uses for Xᵀ·Δ against numpy's matmul.

    The sweep rows compute their batch products Xᵀ·Δ and Xᵀ·diag(w)·X̄ this way; the
    dense reference computes δᵀ·X with numpy's matmul.
    """
    rng = np.random.default_rng(4)
    x = random_fields(rng, sizes.batch, sizes.modes)
    delta = random_fields(rng, sizes.batch, sizes.modes)
    return median_ratio(
        lambda: blas.zgemm(1.0, x.T, delta.T, trans_b=1),
        lambda: delta.T @ x,
        repeats,
        calls,
    )


def decomposition_row(n: int, repeats: int) -> tuple[float, float, float]:
    """Time the Clements decomposition against numpy.linalg.qr of the same unitary."""
    unitary = unitary_group.rvs(n, random_state=3)
    return median_ratio(
        lambda: decompose(unitary, "rectangular"),
        lambda: np.linalg.qr(unitary),
        repeats,
        1,
    )


def exact_step_memory(n: int, batch: int) -> tuple[int, int]:
    """Measure the peak bytes traced during one sweep exact-gradient step.

    Returns the peak and the bytes of the step's input, output and adjoint arrays.
    """
    rng = np.random.default_rng(0)
    device = lossy_chip(n).device()
    x = random_fields(rng, batch, n)
    targets = random_fields(rng, batch, n)
    # Build the cached cell geometry of this layout first, as every step after the
    # first one finds it built.
    MeshSweep(fresh(device))

    tracemalloc.start()
    tracemalloc.reset_peak()
    layer = fresh(device)
    y = propagate(layer, x)
    _, delta = ComplexMSE().value_and_adjoint(y, targets)
    adjoint = propagate_backward(layer, delta)
    gradient = exact_batch_gradient(layer, x, delta)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del adjoint, gradient
    return peak, x.nbytes + y.nbytes + delta.nbytes


def complex64_errors(n: int, batch: int) -> tuple[float, float]:
    """Compute the relative L2 error of complex64 against complex128 results.

    Returns the errors of the exact gradient and of the forward power sums of a batch.
    """
    rng = np.random.default_rng(5)
    device = lossy_chip(n, seed=2).device()
    x = random_fields(rng, batch, n)
    delta = random_fields(rng, batch, n)
    weights = rng.uniform(0.5, 1.5, batch)
    errors = []
    for function in (
        lambda dtype: exact_batch_gradient(device, x, delta, dtype),
        lambda dtype: batch_powers(device, x, "forward", weights, dtype),
    ):
        double = function(np.complex128)
        single = function(np.complex64)
        errors.append(float(np.linalg.norm(single - double) / np.linalg.norm(double)))
    return errors[0], errors[1]


def describe_machine() -> list[str]:
    blas = [
        f"{info.get('internal_api')} {info.get('version')} "
        f"({info.get('num_threads')} thread, {info.get('filepath', '').split('/')[-1]})"
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]
    return [
        f"machine: {platform.machine()} {platform.processor() or ''}".rstrip()
        + f", Python {platform.python_version()}, numpy {np.__version__}",
        f"BLAS: {'; '.join(blas)}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per row")
    parser.add_argument("--calls", type=int, default=3, help="calls per run")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes and one repeat"
    )
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else FULL
    repeats = 1 if args.smoke else args.repeats
    calls = 1 if args.smoke else args.calls

    with threadpool_limits(limits=1, user_api="blas"):
        for line in describe_machine():
            print(line)
        print(f"N = {sizes.modes}, batch {sizes.batch}, complex128")
        print(
            f"{'operation':34} {'baseline':18} {'ratio':>7} {'ours (ms)':>10} "
            f"{'base (ms)':>10}  target"
        )
        for name, candidate, baseline, label, target in timing_rows(sizes):
            ratio, ours, base = median_ratio(candidate, baseline, repeats, calls)
            print(
                f"{name:34} {label:18} {ratio:7.2f} {ours * 1e3:10.3f} "
                f"{base * 1e3:10.3f}  {target}"
            )

        ratio, ours, base = gemm_row(sizes, repeats, calls)
        print(
            f"{'Xᵀ·Δ by scipy zgemm (in sweep)':34} {'numpy matmul':18} {ratio:7.2f} "
            f"{ours * 1e3:10.3f} {base * 1e3:10.3f}"
        )

        ratio, ours, base = decomposition_row(sizes.decomposition_modes, repeats)
        print(
            f"{'Clements decomposition, N = ' + str(sizes.decomposition_modes):34} "
            f"{'numpy.linalg.qr':18} {ratio:7.2f} {ours * 1e3:10.3f} "
            f"{base * 1e3:10.3f}  <= 50"
        )

        peak, arrays = exact_step_memory(sizes.memory_modes, sizes.memory_batch)
        print(
            f"peak memory of one exact-gradient step (sweep), N = {sizes.memory_modes}, "
            f"batch {sizes.memory_batch}: {peak / 1e6:.1f} MB = {peak / arrays:.2f} x "
            f"the {arrays / 1e6:.1f} MB of x, y and delta"
            + ("" if args.smoke else "  (target <= 3)")
        )

        for n in sizes.accuracy_modes:
            gradient_error, power_error = complex64_errors(n, sizes.batch)
            print(
                f"complex64 vs complex128, N = {n}, batch {sizes.batch}: relative "
                f"error {gradient_error:.1e} (exact gradient), {power_error:.1e} "
                "(forward power sums)"
            )


if __name__ == "__main__":
    main()
