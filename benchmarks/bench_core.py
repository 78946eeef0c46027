"""Time the product's core operations beside the dense-matrix limits, in one process.

Every figure is a ratio against a baseline measured in the same run, because absolute times
drift on shared machines. Each row is the median of ``--repeats`` runs of the best of a few
calls. BLAS runs on one thread (threadpoolctl) so rows compare like with like.

Usage:
    python benchmarks/bench_core.py                # N = 64, batch 1024
    python benchmarks/bench_core.py --modes 8 --batch 16 --repeats 2   # smoke run
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from photonic.hardware import Chip, HardwareConfig, StaticErrors
from photonic.losses import ComplexMSE
from photonic.mesh import MeshLayout
from photonic.network import IdentityActivation, PhotonicNetwork
from photonic.insitu import measure_gradient
from photonic.reference import exact_gradient


def best_time(function: Callable[[], object], calls: int) -> float:
    """Shortest wall time in s of ``calls`` calls."""
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
    """Median over ``repeats`` of candidate time / baseline time, timed side by side."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n, batch = args.modes, args.batch
    hardware = HardwareConfig(
        static=StaticErrors(
            coupler_error_std=0.02, mzi_loss_db=0.2, phase_offset_std=0.05
        )
    )
    layout = MeshLayout.create(n, "rectangular")
    chip = Chip(layout, hardware, seed=1)
    device = chip.device()
    network = PhotonicNetwork([chip], IdentityActivation(), ComplexMSE())
    x = rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))
    targets = rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))
    u = device.matrix()

    def dense_forward() -> object:
        return x @ u.T

    def compose_and_forward() -> object:
        return x @ device.matrix().T

    def mesh_forward() -> object:
        return device.forward(x)

    def dense_reference() -> object:
        # The digital reference with dense matrices: forward, adjoint, and the outer
        # product δᵀx that holds every weight gradient.
        y = x @ u.T
        delta = np.conj(y - targets) / batch
        adjoint = delta @ u
        return delta.T @ x, adjoint

    def mesh_exact() -> object:
        return exact_gradient([device], network.activation, network.loss, x, targets)

    def mesh_measured() -> object:
        return measure_gradient(network, x, targets)

    rows = [
        (
            "forward pass, realised mesh",
            mesh_forward,
            compose_and_forward,
            "compose U + U@X",
        ),
        ("forward pass, realised mesh", mesh_forward, dense_forward, "one U@X"),
        (
            "exact gradient (every phase)",
            mesh_exact,
            dense_reference,
            "dense reference",
        ),
        (
            "measured three-pass gradient",
            mesh_measured,
            dense_reference,
            "dense reference",
        ),
    ]
    with threadpool_limits(limits=1, user_api="blas"):
        blas = [
            f"{info.get('internal_api')} {info.get('version')} ({info.get('num_threads')} thread)"
            for info in threadpool_info()
            if info.get("user_api") == "blas"
        ]
        print(
            f"N = {n}, batch {batch}, complex128; {platform.processor() or platform.machine()}"
        )
        print(f"BLAS: {', '.join(blas)}")
        print(
            f"{'operation':32} {'baseline':18} {'ratio':>8} {'ours (ms)':>10} {'base (ms)':>10}"
        )
        for name, candidate, baseline, label in rows:
            ratio, ours, base = median_ratio(
                candidate, baseline, args.repeats, args.calls
            )
            print(
                f"{name:32} {label:18} {ratio:8.2f} {ours * 1e3:10.3f} {base * 1e3:10.3f}"
            )


if __name__ == "__main__":
    main()
