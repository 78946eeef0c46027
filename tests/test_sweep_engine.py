"""The sweep engine (experiments.sweep) and its built-in point functions."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from experiments import sweep
from experiments.sweep import (
    PointFailed,
    SweepExecutorError,
    SweepPoint,
    grid_points,
    point_key,
    read_records,
    run_points,
)
from experiments.sweep_tasks import check_train_params, experiment_config, train

ROOT = Path(__file__).resolve().parent.parent


def without_elapsed(records):
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in records]


def demo_points(n_x=3, seeds=2):
    return grid_points({"x": [float(i) for i in range(n_x)], "scale": [1, 2]}, seeds)


def free_port() -> int:
    """A local TCP port that nothing listens on (bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- grid_points ----------------------------------------------------------------------


def test_grid_points_row_major_with_seed_last():
    points = grid_points({"a": [1, 2], "b": ["u", "v", "w"]}, 2)

    assert len(points) == 12
    assert [p.index for p in points[:4]] == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)]
    assert points[-1].index == (1, 2, 1)
    assert points[5].params == {"a": 1, "b": "w", "seed_index": 1}
    assert list(points[5].params) == ["a", "b", "seed_index"]


def test_grid_points_seed_list_gives_indices():
    by_count = grid_points({"a": [1]}, 2)
    by_list = grid_points({"a": [1]}, [0, 1])
    extended = grid_points({"a": [1]}, [2, 3])

    assert by_count == by_list
    assert [p.index for p in extended] == [(0, 2), (0, 3)]
    assert [p.params["seed_index"] for p in extended] == [2, 3]


def test_grid_points_merges_constants_first():
    points = grid_points({"x": [5]}, 1, constants={"base": "moons-ideal"})

    assert points[0].params == {"base": "moons-ideal", "x": 5, "seed_index": 0}
    assert list(points[0].params) == ["base", "x", "seed_index"]


def test_grid_points_empty_grid():
    points = grid_points({}, 3)

    assert [p.index for p in points] == [(0,), (1,), (2,)]


@pytest.mark.parametrize(
    ("grid", "seeds", "constants", "message"),
    [
        ({"a": []}, 1, None, "'a' has an empty list"),
        ({"a": "abc"}, 1, None, "give a list of values"),
        ({"a": [1]}, 0, None, "seeds = 0 is invalid"),
        ({"a": [1]}, [], None, "empty list"),
        ({"a": [1]}, [-1], None, "seed index -1"),
        ({"a": [1]}, [1, 1], None, "repeats"),
        ({"a": [1]}, True, None, "seeds = True"),
        ({"a": [1, 2, 1]}, 1, None, "grid key 'a' repeats the value 1;"),
        ({"a": [0.1, 0.1]}, 1, None, "grid key 'a' repeats the value 0.1;"),
        ({"a": [1, 1.0]}, 1, None, "grid key 'a' repeats the value 1.0;"),
        ({"a": [[1, 2], [1, 2]]}, 1, None, r"repeats the value \[1, 2\]"),
        ({"seed_index": [1]}, 1, None, "reserved"),
        ({"a": [1]}, 1, {"a": 2}, "also a constant"),
    ],
)
def test_grid_points_rejects_invalid_input(grid, seeds, constants, message):
    with pytest.raises(ValueError, match=message):
        grid_points(grid, seeds, constants)


@pytest.mark.parametrize("seeds", [2.5, "2", {"a": 1}, None, 1.0])
def test_grid_points_rejects_seeds_of_wrong_type(seeds):
    with pytest.raises(ValueError) as raised:
        grid_points({"a": [1]}, seeds)

    message = str(raised.value)
    assert f"seeds = {seeds!r} is invalid" in message
    assert "give a count >= 1 or a list of seed indices" in message


def test_grid_points_mixed_types_are_distinct():
    points = grid_points({"a": [1, True, "1", [1], 2.5]}, 1)

    assert [p.params["a"] for p in points] == [1, True, "1", [1], 2.5]


def test_sweep_point_rejects_non_json_params():
    with pytest.raises(ValueError, match="SweepPoint.params"):
        SweepPoint(index=(0,), params={"x": {1, 2}})
    with pytest.raises(ValueError, match="SweepPoint.index"):
        SweepPoint(index=(-1,), params={})


def test_point_key_is_sorted_json():
    assert point_key({"b": 1, "a": [1.5, "x"]}) == '{"a": [1.5, "x"], "b": 1}'


# --- run_points -----------------------------------------------------------------------


def test_demo_point_value_from_its_own_seed(tmp_path):
    points = demo_points()
    records = run_points(
        "demo", points, tmp_path / "p.jsonl", root_seed=7, progress=False
    )

    for point, record in zip(points, records):
        seed = np.random.SeedSequence(7, spawn_key=point.index)
        draws = np.random.default_rng(seed).standard_normal(4)
        expected = point.params["x"] + point.params["scale"] * float(draws.mean())
        assert record["result"]["value"] == expected
        assert record["index"] == list(point.index)
        assert record["params"] == point.params
        assert record["key"] == point.key
        assert record["task"] == "experiments.sweep_tasks:demo"


def test_results_independent_of_point_order(tmp_path):
    points = demo_points()
    forward = run_points("demo", points, tmp_path / "a.jsonl", progress=False)
    backward = run_points("demo", points[::-1], tmp_path / "b.jsonl", progress=False)

    assert without_elapsed(forward) == without_elapsed(backward[::-1])


def test_root_seed_changes_results(tmp_path):
    points = demo_points(n_x=1, seeds=1)
    first = run_points(
        "demo", points, tmp_path / "p.jsonl", root_seed=0, progress=False
    )
    second = run_points(
        "demo", points, tmp_path / "p.jsonl", root_seed=1, progress=False
    )

    assert first[0]["result"] != second[0]["result"]
    assert len(read_records(tmp_path / "p.jsonl")) == 2 * len(points)


def test_executors_give_identical_records(tmp_path):
    points = demo_points()
    in_process = run_points(
        "demo", points, tmp_path / "1.jsonl", root_seed=3, progress=False
    )
    pool = run_points(
        "demo", points, tmp_path / "2.jsonl", root_seed=3, workers=2, progress=False
    )

    assert without_elapsed(pool) == without_elapsed(in_process)
    assert sorted(read_records(tmp_path / "2.jsonl"), key=lambda r: r["index"]) == pool


def test_dask_local_gives_identical_records(tmp_path):
    pytest.importorskip("distributed")
    points = demo_points()
    in_process = run_points(
        "demo", points, tmp_path / "1.jsonl", root_seed=3, progress=False
    )
    dask = run_points(
        "demo",
        points,
        tmp_path / "d.jsonl",
        root_seed=3,
        workers=2,
        executor="dask-local",
        progress=False,
    )

    assert without_elapsed(dask) == without_elapsed(in_process)
    assert len(read_records(tmp_path / "d.jsonl")) == len(points)


def test_rerun_skips_finished_points(tmp_path):
    path = tmp_path / "p.jsonl"
    points = demo_points()
    first = run_points("demo", points, path, progress=False)
    before = path.read_bytes()

    second = run_points("demo", points, path, progress=False)

    assert second == first
    assert path.read_bytes() == before


def test_rerun_runs_only_new_points(tmp_path):
    path = tmp_path / "p.jsonl"
    run_points("demo", demo_points(n_x=2), path, progress=False)
    before = path.read_bytes()

    records = run_points("demo", demo_points(n_x=3), path, progress=False)

    assert path.read_bytes().startswith(before)
    assert len(read_records(path)) == 12
    assert [r["index"] for r in records] == [list(p.index) for p in demo_points(n_x=3)]


_KILLED_SWEEP = """
import sys
from experiments.sweep import grid_points, run_points

if __name__ == "__main__":
    points = grid_points({"x": [0.0, 1.0, 2.0, 3.0], "sleep_s": [0.1]}, 2)
    run_points("demo", points, sys.argv[1], root_seed=11, progress=False)
"""


def test_killed_sweep_resumes_to_same_results(tmp_path):
    path = tmp_path / "points.jsonl"
    script = tmp_path / "killed_sweep.py"
    script.write_text(_KILLED_SWEEP, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, str(script), str(path)], cwd=ROOT, env=dict(os.environ)
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if path.exists() and path.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    before = path.read_bytes()
    whole_lines = before[: before.rfind(b"\n") + 1]
    assert 3 <= whole_lines.count(b"\n") < 8

    points = grid_points({"x": [0.0, 1.0, 2.0, 3.0], "sleep_s": [0.1]}, 2)
    resumed = run_points("demo", points, path, root_seed=11, progress=False)
    fresh = run_points(
        "demo", points, tmp_path / "fresh.jsonl", root_seed=11, progress=False
    )

    keys = [(r["key"], tuple(r["index"])) for r in read_records(path)]
    assert len(keys) == 8
    assert len(set(keys)) == 8
    assert path.read_bytes().startswith(whole_lines)
    assert without_elapsed(resumed) == without_elapsed(fresh)


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None
    if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def descendants(pid: int) -> dict[int, str]:
    """Every descendant of a process with its start time (clock ticks after boot)."""
    children: dict[int, list[int]] = {}
    start_times: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = proc_stat(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            start_times[int(entry.name)] = fields[19]
    found: dict[int, str] = {}
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found[child] = start_times[child]
            stack.append(child)
    return found


def still_running(processes: dict[int, str]) -> list[int]:
    """The processes that have not ended; a zombie, or a new process that reuses the
    pid, counts as ended."""
    running = []
    for pid, start_time in processes.items():
        fields = proc_stat(pid)
        if fields is not None and fields[0] not in "ZX" and fields[19] == start_time:
            running.append(pid)
    return running


_SLOW_DEMO_SWEEP = """
[sweep]
name = "slow-demo"
task = "demo"
seeds = 4

[grid]
x = [0.0, 1.0, 2.0, 3.0]
sleep_s = [0.3]
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the process tree in /proc"
)
def test_killed_sweep_leaves_no_processes(tmp_path):
    config = tmp_path / "slow.toml"
    config.write_text(_SLOW_DEMO_SWEEP, encoding="utf-8")
    results = tmp_path / "results"
    points = results / "sweeps" / "slow-demo" / "points.jsonl"
    command = [sys.executable, "-m", "experiments.cli", "-q", "sweep", str(config)]
    process = subprocess.Popen(
        [*command, "--workers", "2", "--results-dir", str(results)],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            if points.exists() and points.read_bytes().count(b"\n") >= 1:
                break
            time.sleep(0.02)
        # The forkserver, two workers and the resource tracker.
        started = descendants(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
        assert len(started) >= 3

        deadline = time.monotonic() + 5
        while still_running(started) and time.monotonic() < deadline:
            time.sleep(0.1)

        assert still_running(started) == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in still_running(started):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads process states in /proc"
)
def test_zombie_process_counts_as_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while proc_stat(child.pid)[0] != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)

        assert sweep._process_alive(os.getpid())
        assert not sweep._process_alive(child.pid)
    finally:
        child.wait()
    assert not sweep._process_alive(child.pid)


def test_damaged_last_line_is_dropped_and_rerun(tmp_path, caplog):
    path = tmp_path / "p.jsonl"
    points = demo_points()
    complete = run_points("demo", points, tmp_path / "complete.jsonl", progress=False)
    lines = (tmp_path / "complete.jsonl").read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:5]) + lines[5][:40])

    with caplog.at_level(logging.WARNING, logger="experiments.sweep"):
        records = run_points("demo", points, path, progress=False)

    assert "damaged last line 6" in caplog.text
    assert without_elapsed(records) == without_elapsed(complete)
    assert path.read_bytes().startswith(b"".join(lines[:5]))
    assert [json.loads(line)["index"] for line in path.read_bytes().splitlines()] == [
        list(p.index) for p in points
    ]


def test_whole_unterminated_last_line_is_kept(tmp_path):
    path = tmp_path / "p.jsonl"
    points = demo_points()
    run_points("demo", points[:3], path, progress=False)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))

    run_points("demo", points, path, progress=False)

    lines = path.read_bytes().splitlines()
    assert len(lines) == len(points)
    assert [json.loads(line)["index"] for line in lines] == [
        list(p.index) for p in points
    ]


def test_damaged_middle_line_raises_and_keeps_file(tmp_path):
    path = tmp_path / "p.jsonl"
    points = demo_points()
    run_points("demo", points[:3], path, progress=False)
    lines = path.read_bytes().splitlines(keepends=True)
    damaged = lines[0] + b"{not json\n" + lines[1]
    path.write_bytes(damaged)

    with pytest.raises(ValueError, match="line 2 of"):
        run_points("demo", points, path, progress=False)
    assert path.read_bytes() == damaged


def test_point_failure_keeps_finished_points(tmp_path):
    path = tmp_path / "p.jsonl"
    points = grid_points({"fail": [False, True]}, 2)

    with pytest.raises(PointFailed, match="failed with params") as raised:
        run_points("demo", points, path, progress=False)

    assert isinstance(raised.value.__cause__, RuntimeError)
    assert raised.value.index == (1, 0)
    assert [r["index"] for r in read_records(path)] == [[0, 0], [0, 1]]


def test_point_failure_logs_traceback_at_debug(tmp_path, caplog):
    points = grid_points({"fail": [True]}, 1)

    with (
        caplog.at_level(logging.DEBUG, logger="experiments.sweep"),
        pytest.raises(PointFailed),
    ):
        run_points("demo", points, tmp_path / "p.jsonl", progress=False)

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    tracebacks = [
        r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info
    ]
    assert len(errors) == 1
    assert errors[0].exc_info is None
    assert len(tracebacks) == 1
    assert tracebacks[0].exc_info[0] is RuntimeError
    assert "sweep_tasks.py" in caplog.text
    assert 'raise RuntimeError(f"demo point' in caplog.text


def test_worker_failure_logs_worker_traceback(tmp_path, caplog):
    points = grid_points({"fail": [True]}, 1)

    with (
        caplog.at_level(logging.DEBUG, logger="experiments.sweep"),
        pytest.raises(PointFailed),
    ):
        run_points("demo", points, tmp_path / "p.jsonl", workers=2, progress=False)

    # The traceback of the worker process is the cause of the error the pool raises.
    assert "Traceback" in caplog.text
    assert 'raise RuntimeError(f"demo point' in caplog.text


def test_point_failure_in_worker_process(tmp_path):
    path = tmp_path / "p.jsonl"
    points = grid_points({"fail": [True]}, 1)

    with pytest.raises(PointFailed) as raised:
        run_points("demo", points, path, workers=2, progress=False)

    assert isinstance(raised.value.__cause__, RuntimeError)
    assert not path.exists()


# --- errors leave the points file as it was -------------------------------------------


@pytest.fixture
def existing_points_file(tmp_path):
    path = tmp_path / "points.jsonl"
    run_points("demo", demo_points(n_x=1), path, progress=False)
    return path, path.read_bytes()


@pytest.mark.parametrize(
    ("task", "points", "options", "message"),
    [
        ("nowhere.module:f", demo_points(), {}, "module 'nowhere.module' not found"),
        ("experiments.sweep_tasks:nothing", demo_points(), {}, "no function 'nothing'"),
        ("just-a-name", demo_points(), {}, "task 'just-a-name' is unknown"),
        ("demo", grid_points({"y": [1]}, 1), {}, "'y' is unknown to the demo task"),
        (
            "train",
            grid_points({"training.epochz": [1]}, 1, {"base": "moons-ideal"}),
            {},
            "'training.epochz' is not a field of the experiment config",
        ),
        ("demo", demo_points(), {"workers": 0}, "workers 0 is invalid"),
        ("demo", demo_points(), {"executor": "threads"}, "executor 'threads'"),
        ("demo", demo_points(), {"root_seed": -1}, "root_seed -1"),
    ],
)
def test_invalid_run_keeps_points_file(
    existing_points_file, task, points, options, message
):
    path, before = existing_points_file
    # A damaged last line is repaired only by a run that starts, never by a failed call.
    path.write_bytes(before + b'{"key": "cut')

    with pytest.raises(ValueError, match=message):
        run_points(task, points, path, progress=False, **options)

    assert path.read_bytes() == before + b'{"key": "cut'


def test_unreachable_scheduler_keeps_points_file(existing_points_file, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(sweep, "SCHEDULER_CONNECT_TIMEOUT_S", 1.0)
    path, before = existing_points_file
    address = f"tcp://127.0.0.1:{free_port()}"

    with pytest.raises(SweepExecutorError, match=f"scheduler at '{address}'"):
        run_points("demo", demo_points(n_x=2), path, scheduler=address, progress=False)

    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "address",
    [
        "",
        "127.0.0.1:8786",
        "tcp://",
        "tcp://host",
        "tcp://:8786",
        "tcp://host:port",
        "tcp://host:0",
        "tcp://host:70000",
        "tcp://host:8786/path",
        "tls://host:8786",
        "tcp://host: 8786",
        "http://host:8786",
    ],
)
def test_malformed_scheduler_rejected_at_once(existing_points_file, address):
    path, before = existing_points_file
    started = time.monotonic()

    with pytest.raises(ValueError) as raised:
        run_points("demo", demo_points(), path, scheduler=address, progress=False)

    assert time.monotonic() - started < 1.0
    assert f"scheduler address {address!r} is invalid" in str(raised.value)
    assert "tcp://host:port" in str(raised.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [
        ("tcp://10.0.0.5:8786", "10.0.0.5", 8786),
        ("tcp://scheduler.local:1", "scheduler.local", 1),
        ("tcp://[::1]:8786", "::1", 8786),
    ],
)
def test_scheduler_address_gives_host_and_port(address, host, port):
    assert sweep.check_scheduler_address(address) == (host, port)


@pytest.mark.parametrize("n_x", [1, 2], ids=["nothing-pending", "points-pending"])
def test_refused_scheduler_fails_at_once(existing_points_file, capsys, n_x):
    pytest.importorskip("distributed")
    path, before = existing_points_file
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()

    with pytest.raises(SweepExecutorError, match=f"scheduler at '{address}'"):
        run_points("demo", demo_points(n_x=n_x), path, scheduler=address)

    assert time.monotonic() - started < 2.0
    assert path.read_bytes() == before
    assert "point/s" not in capsys.readouterr().err


def test_missing_dask_names_the_extra(existing_points_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    path, before = existing_points_file

    with pytest.raises(SweepExecutorError, match=r"pip install -e '\.\[dask\]'"):
        run_points("demo", demo_points(), path, executor="dask-local", progress=False)

    assert path.read_bytes() == before


def test_locked_points_file_rejects_second_run(existing_points_file):
    fcntl = pytest.importorskip("fcntl")
    path, before = existing_points_file

    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        with pytest.raises(BlockingIOError, match="another run is writing"):
            run_points("demo", demo_points(n_x=2), path, progress=False)

    assert path.read_bytes() == before
    assert len(run_points("demo", demo_points(n_x=2), path, progress=False)) == 8


# --- the train task -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"hardware.static.bogus": 0.1}, "'bogus' is not in hardware.static"),
        ({"data.name.sub": 1}, "'data.name' is a value, not a table"),
        ({"seed": 3}, "'seed' cannot be swept"),
        ({"hardware.passes.monitor.pai_k": -1.0}, "pai_k = -1.0"),
        ({"base": "no-such-config"}, "base config 'no-such-config' not found"),
        ({"base": "iris-ideal", "network.n_modes": 3}, "too small for 4 features"),
    ],
)
def test_train_params_rejected(params, message):
    with pytest.raises(ValueError, match=message):
        check_train_params(params)


def test_train_dotted_keys_apply_over_preset():
    config = experiment_config(
        {
            "base": "moons-ideal",
            "hardware.static.coupler_error_std": 0.02,
            "hardware.passes.phase_noise_std": 0.01,
            "training.epochs": 3,
            "seed_index": 4,
        }
    )

    assert config.hardware.static.coupler_error_std == 0.02
    assert config.hardware.static.mzi_loss_db == 0.0
    assert config.hardware.adjoint.phase_noise_std == 0.01
    assert config.training.epochs == 3
    assert config.network.output_groups == ((0, 1), (2, 3))


def test_train_point_matches_train_command(tmp_path):
    from experiments.train import run_training

    params = {
        "base": "moons-bench",
        "training.epochs": 2,
        "data.n_samples": 60,
        "seed_index": 0,
    }
    result = train(params, np.random.SeedSequence(3, spawn_key=(1, 0)))
    config = experiment_config(params).with_overrides(seed=result["run_seed"])
    run = run_training(config, tmp_path, progress=False)

    summary = run.summary
    assert result["test_accuracy"] == summary["photonic"]["test_accuracy"]
    assert result["train_accuracy"] == summary["photonic"]["train_accuracy"]
    assert result["test_loss"] == summary["photonic"]["test_loss"]
    assert result["train_loss"] == run.photonic[-1]["train_loss"]
    assert (
        result["cosine_distance_median"]
        == summary["gradient_error"]["cosine_distance_median"]
    )
    assert result["step_time_s"] == summary["hardware_step"]["step_time_s"]
    assert result["step_energy_j"] == summary["hardware_step"]["energy_j"]
    assert result["steps"] == summary["steps"]
