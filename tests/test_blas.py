"""The BLAS thread limit of runs, workers and tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from threadpoolctl import threadpool_info

from experiments.blas import limit_blas_threads


def test_session_blas_uses_one_thread() -> None:
    blas = [info for info in threadpool_info() if info["user_api"] == "blas"]
    assert blas, "numpy and scipy should have loaded a BLAS library"
    assert all(info["num_threads"] == 1 for info in blas)


def test_limit_can_be_raised_and_restored() -> None:
    limiter = limit_blas_threads(2)
    try:
        blas = [info for info in threadpool_info() if info["user_api"] == "blas"]
        assert all(info["num_threads"] <= 2 for info in blas)
    finally:
        limiter.restore_original_limits()
    blas = [info for info in threadpool_info() if info["user_api"] == "blas"]
    assert all(info["num_threads"] == 1 for info in blas)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_invalid_thread_count_is_rejected(threads: object) -> None:
    with pytest.raises(ValueError, match="BLAS threads"):
        limit_blas_threads(threads)  # type: ignore[arg-type]


def test_sweep_in_process_restores_blas_limit(tmp_path: Path) -> None:
    from experiments.sweep import grid_points, run_points

    limiter = limit_blas_threads(2)
    try:
        before = [info["num_threads"] for info in threadpool_info()]
        run_points(
            "demo",
            grid_points({"x": [1.0]}, 1),
            tmp_path / "points.jsonl",
            progress=False,
        )
        after = [info["num_threads"] for info in threadpool_info()]
    finally:
        limiter.restore_original_limits()
    assert after == before
