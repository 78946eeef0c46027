"""Time each step of one exact-gradient step on a new device, in the benchmark's order.

The steps are those of the "exact gradient, sweep" row of ``bench_core.py``: a new
device instance, its cells, U with the kept partial products, y = U·x, the adjoint
source δ = conj(y − t)/B, Uᵀ·δ, Xᵀ·Δ, the cells' blocks of F_p·M·G_p and the values at
the phase shifters. Each step is timed with ``time.perf_counter`` inside the sequence,
so the small arrays of the sweep meet the cache as the full step leaves it. Prints the
median over the calls of every step in ms. BLAS runs on one thread.

Usage:
    python benchmarks/bench_exact_steps.py [--calls 300] [--smoke]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from photonic.hardware import Chip, HardwareConfig, StaticErrors
from photonic.mesh import MeshLayout
from photonic.sweep import MeshSweep, _batch_product

STEPS = (
    "new device instance",
    "MZI blocks, site blocks and cells (MeshSweep)",
    "compose U, keeping the partial products",
    "y = U·x",
    "δ = conj(y − t)/B",
    "Uᵀ·δ",
    "Xᵀ·Δ",
    "blocks F_p·M·G_p of every cell",
    "values at the phase shifters",
)


def step_times(n: int, batch: int, calls: int) -> np.ndarray:
    """Return the median time in ms of every step over ``calls`` calls, after 30 warm-ups."""
    static = StaticErrors(coupler_error_std=0.02, mzi_loss_db=0.2, phase_offset_std=0.05)
    chip = Chip(MeshLayout.create(n, "rectangular"), HardwareConfig(static=static), seed=1)
    device = chip.device()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))
    targets = rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))

    def one_step() -> list[float]:
        marks = [time.perf_counter()]
        layer = device.with_phases(device.phases)
        marks.append(time.perf_counter())
        sweep = MeshSweep(layer)
        marks.append(time.perf_counter())
        u = sweep.matrix()
        marks.append(time.perf_counter())
        y = x @ u.T
        marks.append(time.perf_counter())
        delta = np.conj(y - targets) / batch
        marks.append(time.perf_counter())
        delta @ u
        marks.append(time.perf_counter())
        outer = _batch_product(x, delta, sweep.dtype, conjugate=False)
        marks.append(time.perf_counter())
        blocks, output = sweep._exact_blocks(outer, sweep._partials)
        marks.append(time.perf_counter())
        sweep._values("exact", blocks, output)
        marks.append(time.perf_counter())
        return np.diff(marks).tolist()

    for _ in range(30):
        one_step()
    return np.median([one_step() for _ in range(calls)], axis=0) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="timed calls")
    parser.add_argument("--smoke", action="store_true", help="N = 8, batch 32, 5 calls")
    args = parser.parse_args()
    if args.calls < 1:
        parser.error(f"--calls {args.calls} is invalid; it must be at least 1")
    n, batch, calls = (8, 32, 5) if args.smoke else (64, 1024, args.calls)
    with threadpool_limits(limits=1, user_api="blas"):
        times = step_times(n, batch, calls)
    print(f"N = {n}, batch {batch}, median of {calls} calls")
    for name, value in zip(STEPS, times, strict=True):
        print(f"{name:48} {value:7.3f} ms")
    print(f"{'total':48} {times.sum():7.3f} ms")


if __name__ == "__main__":
    main()
