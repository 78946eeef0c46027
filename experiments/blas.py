"""One BLAS thread per process for runs, sweep workers and tests.

The products in a mesh simulation are small: N×N blocks with N up to a few hundred, and
8×8 cell blocks. On such shapes a multithreaded OpenBLAS spends longer waking and joining
its threads than multiplying. On a 2-core machine a 64×64 complex product took 0.03 ms on
one thread and 1 to 15 ms with two, and one exact-gradient step at N = 64 took about
30 ms instead of 4.5 ms. Sweeps get their parallelism from worker processes instead, one BLAS thread
each, so that the workers do not also compete for the cores through BLAS threads.
"""

from __future__ import annotations

from typing import Any

from threadpoolctl import threadpool_limits


def limit_blas_threads(threads: int = 1) -> Any:
    """Limit every BLAS library loaded by numpy and scipy to ``threads`` threads.

    threadpoolctl changes only the libraries already loaded, and numpy and scipy each load
    their own OpenBLAS, so both are imported first. Returns the threadpoolctl limiter,
    whose ``restore_original_limits()`` undoes the change.

    Raises:
        ValueError: for a thread count below 1.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"BLAS threads {threads!r} is invalid; give an integer >= 1")
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401

    return threadpool_limits(limits=threads, user_api="blas")
