"""Smoke runs of the benchmark scripts at a tiny size; no timing is asserted."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("bench_core.py", "ratio"),
        ("bench_schedule_overhead.py", "ratio"),
        ("bench_exact_steps.py", "blocks F_p·M·G_p of every cell"),
    ],
)
def test_benchmark_smoke_run(script, expected):
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert expected in completed.stdout
