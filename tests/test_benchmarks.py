"""Smoke runs of the benchmark scripts at a tiny size; no timing is asserted."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("script", ["bench_core.py", "bench_schedule_overhead.py"])
def test_benchmark_smoke_run(script):
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "ratio" in completed.stdout
