"""The ``sweep`` and ``reproduce`` commands, run through experiments.cli.main."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from experiments import sweep
from experiments.cli import main
from experiments.reproduce import (
    REPRODUCTIONS,
    Reproduction,
    ReproductionContext,
    TargetCheck,
)
from experiments.sweep import (
    SweepConfig,
    check_points,
    grid_points,
    load_sweep_config,
    read_records,
    run_points,
)

ROOT = Path(__file__).resolve().parent.parent

DEMO_SWEEP = """
[sweep]
name = "demo-sweep"
task = "demo"
seeds = 2
root_seed = 5

[grid]
x = [0.0, 1.0]
scale = [1, 2]
"""


def write_config(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def run_cli(*args):
    return main(["sweep", *map(str, args), "--no-progress"])


def provenance_runs(folder):
    """The runs recorded in a sweep folder's provenance.jsonl, oldest first."""
    text = (folder / "provenance.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def folder_files(folder):
    """The bytes of every file in a folder, by name."""
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.fixture(scope="module")
def finished_demo(tmp_path_factory):
    """A demo sweep run once through the command line, for the tests to copy."""
    root = tmp_path_factory.mktemp("finished")
    config = write_config(root, DEMO_SWEEP)
    assert run_cli(config, "--results-dir", root / "results") == 0
    return root


@pytest.fixture
def demo_run(tmp_path, finished_demo):
    """A copy of the finished demo sweep: its config path, results folder and points
    file bytes."""
    shutil.copytree(finished_demo, tmp_path, dirs_exist_ok=True)
    results = tmp_path / "results"
    folder = results / "sweeps" / "demo-sweep"
    return (
        str(tmp_path / "sweep.toml"),
        results,
        folder,
        (folder / "points.jsonl").read_bytes(),
    )


def test_sweep_command_writes_folder(demo_run):
    _, _, folder, points = demo_run

    names = {path.name for path in folder.iterdir()}
    assert {
        "points.jsonl",
        "config.toml",
        "provenance.jsonl",
        "points.csv",
        "summary.csv",
        "summary.md",
        "results.png",
    } <= names
    assert "provenance.json" not in names
    assert points.count(b"\n") == 8
    assert (folder / "config.toml").read_text(encoding="utf-8") == DEMO_SWEEP
    runs = provenance_runs(folder)
    assert len(runs) == 1
    assert runs[0]["sweep"]["points"] == 8
    assert runs[0]["sweep"]["pending"] == 8
    assert runs[0]["sweep"]["config"] == DEMO_SWEEP
    assert (folder / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_summary_is_mean_and_std_over_seeds(demo_run):
    _, _, folder, _ = demo_run
    records = read_records(folder / "points.jsonl")

    with (folder / "summary.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))

    assert len(rows) == 4
    for row in rows:
        x, scale = float(row["x"]), int(row["scale"])
        values = [
            r["result"]["value"]
            for r in records
            if r["params"]["x"] == x and r["params"]["scale"] == scale
        ]
        assert int(row["seeds"]) == 2
        assert float(row["value_mean"]) == float(np.mean(values))
        assert float(row["value_std"]) == float(np.std(values, ddof=1))


def test_sweep_points_csv_has_one_row_per_point(demo_run):
    _, _, folder, _ = demo_run

    with (folder / "points.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))

    assert len(rows) == 8
    assert list(rows[0]) == [
        "x",
        "scale",
        "seed_index",
        "value",
        "draw",
        "sum_squares",
        "elapsed_s",
    ]
    assert [row["seed_index"] for row in rows[:2]] == ["0", "1"]


def test_sweep_prints_markdown_table(tmp_path, capsys):
    config = write_config(tmp_path, DEMO_SWEEP)

    status = run_cli(config, "--results-dir", tmp_path / "results")

    output = capsys.readouterr().out
    assert status == 0
    assert "| x | scale | seeds | value | draw | sum_squares |" in output
    assert sum(line.startswith("| ") for line in output.splitlines()) == 5
    assert "results written to" in output


def test_sweep_rerun_adds_nothing(demo_run):
    config, results, folder, points = demo_run

    assert run_cli(config, "--results-dir", results) == 0

    assert (folder / "points.jsonl").read_bytes() == points


def test_sweep_rerun_keeps_earlier_provenance(tmp_path, demo_run):
    _, results, folder, _ = demo_run
    first_run = (folder / "provenance.jsonl").read_bytes()
    wider = DEMO_SWEEP.replace("x = [0.0, 1.0]", "x = [0.0, 1.0, 2.0]")
    config = write_config(tmp_path, wider, "wider.toml")

    assert run_cli(config, "--results-dir", results) == 0

    assert (folder / "provenance.jsonl").read_bytes().startswith(first_run)
    runs = provenance_runs(folder)
    assert len(runs) == 2
    assert runs[0]["sweep"]["config"] == DEMO_SWEEP
    assert runs[1]["sweep"]["config"] == wider
    assert runs[1]["sweep"]["pending"] == 4
    assert (folder / "config.toml").read_text(encoding="utf-8") == wider


def test_sweep_workers_option_gives_same_points(tmp_path, demo_run):
    config, _, _, points = demo_run
    other = tmp_path / "other"

    assert run_cli(config, "--results-dir", other, "--workers", "2") == 0

    records = read_records(other / "sweeps" / "demo-sweep" / "points.jsonl")
    strip = [{k: v for k, v in r.items() if k != "elapsed_s"} for r in records]
    expected = [
        {k: v for k, v in json.loads(line).items() if k != "elapsed_s"}
        for line in points.splitlines()
    ]
    assert sorted(strip, key=lambda r: r["index"]) == expected


def test_sweep_collect_rewrites_tables_only(demo_run):
    config, results, folder, points = demo_run
    (folder / "summary.csv").unlink()

    assert run_cli(config, "--results-dir", results, "--collect") == 0

    assert (folder / "summary.csv").is_file()
    assert (folder / "points.jsonl").read_bytes() == points


def test_sweep_collect_counts_missing_points(tmp_path, capsys):
    config = write_config(tmp_path, DEMO_SWEEP)
    folder = tmp_path / "results" / "sweeps" / "demo-sweep"
    points = load_sweep_config(config)[0].points()
    run_points("demo", points[:3], folder / "points.jsonl", root_seed=5, progress=False)

    status = run_cli(config, "--results-dir", tmp_path / "results", "--collect")

    assert status == 0
    assert "5 points have no result yet" in capsys.readouterr().out
    assert (folder / "points.jsonl").read_bytes().count(b"\n") == 3


def test_sweep_collect_without_points_fails(tmp_path, capsys):
    config = write_config(tmp_path, DEMO_SWEEP)

    status = run_cli(config, "--results-dir", tmp_path / "results", "--collect")

    assert status == 2
    assert "no points file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('task = "demo"', 'task = "train"\n'),
            "is not a field of the experiment config",
        ),
        (("x = [0.0, 1.0]", "x = []"), "'x' has an empty list of values"),
        (("seeds = 2", "seeds = 0"), "seeds = 0 is invalid"),
        (('task = "demo"', 'task = "nowhere:run"'), "module 'nowhere' not found"),
        (('task = "demo"', 'task = "no-colon"'), "task 'no-colon' is unknown"),
        (("[grid]", "[grids]"), "unknown key 'grids'"),
        (("seeds = 2", "seeds = 2.5"), "seeds = 2.5 is invalid"),
        (("seeds = 2", 'seeds = "2"'), "seeds = '2' is invalid"),
        (("seeds = 2", "seeds = {a = 1}"), "seeds = {'a': 1} is invalid"),
        (("seeds = 2", "seeds = [0, 1.5]"), "seed index 1.5"),
        (("x = [0.0, 1.0]", "x = [0.1, 0.1]"), "grid key 'x' repeats the value 0.1"),
        (("root_seed = 5", "root_seed = 5\nepochs = 3"), "unknown key 'epochs'"),
    ],
)
def test_sweep_config_error_keeps_points(tmp_path, capsys, demo_run, edit, message):
    _, results, folder, points = demo_run
    text = DEMO_SWEEP.replace(*edit)
    if "train" in edit[1]:
        text = text.replace("x = [0.0, 1.0]", '"training.epochz" = [1]')
        text = text.replace("scale = [1, 2]", "")
    config = write_config(tmp_path, text, "broken.toml")

    status = run_cli(config, "--results-dir", results)

    assert status == 2
    assert message in capsys.readouterr().err
    assert (folder / "points.jsonl").read_bytes() == points


def free_address():
    """A local scheduler address where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize("seeds", [2, 3], ids=["nothing-pending", "points-pending"])
def test_sweep_unreachable_scheduler_keeps_folder(
    tmp_path, capsys, demo_run, monkeypatch, seeds
):
    pytest.importorskip("distributed")
    monkeypatch.setattr(sweep, "SCHEDULER_CONNECT_TIMEOUT_S", 1.0)
    _, results, folder, _ = demo_run
    before = folder_files(folder)
    text = DEMO_SWEEP.replace("seeds = 2", f"seeds = {seeds}")
    config = write_config(tmp_path, text, "b.toml")
    address = free_address()

    status = main(
        ["sweep", config, "--results-dir", str(results), "--scheduler", address]
    )

    error = capsys.readouterr().err
    assert status == 2
    assert f"scheduler at '{address}'" in error
    assert "point/s" not in error
    assert folder_files(folder) == before


@pytest.mark.parametrize("address", ["localhost:8786", "tcp://host", "tcp://h:x"])
def test_sweep_malformed_scheduler_keeps_folder(tmp_path, capsys, demo_run, address):
    config, results, folder, _ = demo_run
    before = folder_files(folder)

    status = run_cli(config, "--results-dir", results, "--scheduler", address)

    error = capsys.readouterr().err
    assert status == 2
    assert f"scheduler address {address!r} is invalid" in error
    assert "tcp://host:port" in error
    assert "within" not in error
    assert folder_files(folder) == before


def test_sweep_rejected_by_lock_keeps_folder(tmp_path, capsys, demo_run):
    fcntl = pytest.importorskip("fcntl")
    _, results, folder, _ = demo_run
    before = folder_files(folder)
    wider = DEMO_SWEEP.replace("x = [0.0, 1.0]", "x = [0.0, 1.0, 2.0]")
    config = write_config(tmp_path, wider, "wider.toml")

    with open(folder / "points.jsonl.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        status = run_cli(config, "--results-dir", results)

    error = capsys.readouterr().err
    assert status == 2
    assert "another run is writing" in error
    assert "cannot write the results folder" not in error
    assert folder_files(folder) == before


@pytest.mark.parametrize("refused", [False, True], ids=["malformed", "refused"])
def test_reproduce_bad_scheduler_writes_nothing(tmp_path, capsys, refused):
    if refused:
        pytest.importorskip("distributed")
        address = free_address()
        expected = f"scheduler at '{address}'"
    else:
        address, expected = "tcp://host", "tcp://host:port"

    status = main(
        [
            "reproduce",
            "clements-vs-reck",
            "--size",
            "smoke",
            "--results-dir",
            str(tmp_path),
            "--scheduler",
            address,
        ]
    )

    assert status == 2
    assert expected in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_sweep_missing_config_fails(tmp_path, capsys):
    status = run_cli(tmp_path / "absent.toml")

    assert status == 2
    assert "moons-coupler-error" in capsys.readouterr().err


def test_verbose_failing_point_logs_traceback(tmp_path, capsys, caplog):
    text = DEMO_SWEEP.replace("scale = [1, 2]", "fail = [true]")
    config = write_config(tmp_path, text)

    with caplog.at_level(logging.DEBUG):
        status = main(["-v", "sweep", config, "--results-dir", str(tmp_path / "r")])

    error = capsys.readouterr().err
    assert status == 1
    assert (
        len([line for line in error.splitlines() if "failed with params" in line]) == 1
    )
    assert "Traceback" in caplog.text
    assert 'raise RuntimeError(f"demo point' in caplog.text


def test_sweep_failing_point_exits_1(tmp_path, capsys):
    text = DEMO_SWEEP.replace("scale = [1, 2]", "fail = [false, true]")
    config = write_config(tmp_path, text)

    status = run_cli(config, "--results-dir", tmp_path / "results")

    assert status == 1
    assert "failed with params" in capsys.readouterr().err
    points = tmp_path / "results" / "sweeps" / "demo-sweep" / "points.jsonl"
    assert points.read_bytes().count(b"\n") == 2


def test_sweep_nested_grid_tables_read_as_dotted_keys(tmp_path):
    dotted = write_config(
        tmp_path,
        '[sweep]\nname = "a"\n[grid]\n"hardware.static.mzi_loss_db" = [0.0, 0.1]\n',
        "dotted.toml",
    )
    nested = write_config(
        tmp_path,
        '[sweep]\nname = "a"\n[grid.hardware.static]\nmzi_loss_db = [0.0, 0.1]\n',
        "nested.toml",
    )

    assert load_sweep_config(dotted)[0] == load_sweep_config(nested)[0]
    assert list(load_sweep_config(nested)[0].grid) == ["hardware.static.mzi_loss_db"]


def test_sweep_base_file_is_stored_as_table(tmp_path):
    (tmp_path / "experiment.toml").write_text(
        '[data]\nname = "iris"\n', encoding="utf-8"
    )
    config = write_config(
        tmp_path,
        'base = "experiment.toml"\n[sweep]\nname = "a"\n'
        '[grid]\n"training.epochs" = [1]\n',
    )

    loaded = load_sweep_config(config)[0]

    assert loaded.base == {"data": {"name": "iris"}}
    assert loaded.points()[0].params["base"] == {"data": {"name": "iris"}}


def test_bundled_sweep_points_pass_train_checks():
    config, _ = load_sweep_config("moons-coupler-error")
    points = config.points()

    check_points(config.task, points)
    assert len(points) == 16
    assert points[0].params["base"]["name"] == "moons-ideal"
    assert points[0].params["training.epochs"] == 10


def test_bundled_base_is_stored_as_table(tmp_path):
    from experiments.config import BUNDLED_CONFIGS

    config = write_config(
        tmp_path,
        'base = "moons-ideal"\n[sweep]\nname = "a"\n[grid]\n"training.epochs" = [1]\n',
    )
    bundled = tomllib.loads(
        (BUNDLED_CONFIGS / "moons-ideal.toml").read_text(encoding="utf-8")
    )

    loaded = load_sweep_config(config)[0]

    assert loaded.base == bundled
    assert loaded.base_source == "moons-ideal"
    assert loaded.points()[0].params["base"] == bundled


def test_changed_bundled_base_changes_point_keys(tmp_path, monkeypatch):
    from experiments import config as experiment_configs

    text = (
        'base = "moons-ideal"\n[sweep]\nname = "a"\n[grid]\n"training.epochs" = [1]\n'
    )
    config = write_config(tmp_path, text)
    before = load_sweep_config(config)[0].points()[0].key
    changed = tmp_path / "bundled"
    changed.mkdir()
    original = experiment_configs.BUNDLED_CONFIGS / "moons-ideal.toml"
    (changed / "moons-ideal.toml").write_text(
        original.read_text(encoding="utf-8").replace("noise = 0.2", "noise = 0.3"),
        encoding="utf-8",
    )
    monkeypatch.setattr(experiment_configs, "BUNDLED_CONFIGS", changed)

    after = load_sweep_config(config)[0].points()[0].key

    assert after != before
    assert '"noise": 0.3' in after


def test_sweep_config_reads_string_base():
    by_name = SweepConfig(name="a", grid={"training.epochs": [1]}, base="moons-ideal")
    by_table = SweepConfig(
        name="a",
        grid={"training.epochs": [1]},
        base=load_sweep_config("moons-coupler-error")[0].base,
        base_source="moons-ideal",
    )

    assert by_name.base_source == "moons-ideal"
    assert by_name.base["data"]["name"] == "moons"
    assert by_name == by_table


def test_sweep_train_task_end_to_end(tmp_path, capsys):
    config = write_config(
        tmp_path,
        """
base = "moons-ideal"

[sweep]
name = "tiny-train"
seeds = 1

[grid]
"hardware.static.mzi_loss_db" = [0.0, 0.5]

[constants]
"training.epochs" = 1
"data.n_samples" = 40
""",
    )

    status = run_cli(config, "--results-dir", tmp_path / "results")

    output = capsys.readouterr().out
    assert status == 0
    assert "test_accuracy" in output
    records = read_records(tmp_path / "results/sweeps/tiny-train/points.jsonl")
    assert records[0]["result"]["cosine_distance_median"] < 1e-12
    assert records[1]["result"]["cosine_distance_median"] > 1e-3


# --- quiet mode -----------------------------------------------------------------------


def test_quiet_sweep_shows_no_progress_bar(tmp_path, capsys):
    config = write_config(tmp_path, DEMO_SWEEP)

    status = main(["-q", "sweep", config, "--results-dir", str(tmp_path / "r")])

    captured = capsys.readouterr()
    assert status == 0
    assert "point/s" not in captured.err
    assert "| x | scale |" in captured.out


def test_quiet_train_shows_no_progress_bar(tmp_path, capsys):
    status = main(
        [
            "-q",
            "train",
            "moons-ideal",
            "--epochs",
            "1",
            "--results-dir",
            str(tmp_path),
        ]
    )

    captured = capsys.readouterr()
    assert status == 0
    assert "%|" not in captured.err
    assert "test accuracy" in captured.out


def test_quiet_dask_local_sweep_prints_no_info_lines(tmp_path):
    pytest.importorskip("distributed")
    config = write_config(tmp_path, DEMO_SWEEP)
    command = [sys.executable, "-m", "experiments.cli", "-q", "sweep", config]

    finished = subprocess.run(
        [*command, "--executor", "dask-local", "--workers", "1"],
        check=False,
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 0, finished.stderr
    assert " INFO " not in finished.stderr
    assert "point/s" not in finished.stderr
    assert "| x | scale |" in finished.stdout


# --- reproduce ------------------------------------------------------------------------


def stub_reproduction(context: ReproductionContext) -> Reproduction:
    """A reproduction that runs four demo points through the sweep engine."""
    records = run_points(
        "demo",
        grid_points({"x": [1.0, 2.0]}, 2),
        context.points_path,
        workers=context.workers,
        executor=context.executor,
        scheduler=context.scheduler,
        progress=context.progress,
    )
    total = sum(r["result"]["value"] for r in records)
    return Reproduction(
        title="Stub",
        setup="four demo points",
        tables=[],
        targets=[TargetCheck("sum of values", "6", f"{total:.3f}", "none", True)],
        summary={"total": total},
    )


def test_reproduce_list_prints_names_and_summaries(capsys):
    status = main(["reproduce", "--list"])

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert [line.split()[0] for line in lines] == list(REPRODUCTIONS)
    assert all(len(line.split()) > 1 for line in lines)


def test_reproduce_unknown_name_lists_known(capsys):
    status = main(["reproduce", "no-such-result"])

    error = capsys.readouterr().err
    assert status == 2
    assert "'no-such-result' is unknown" in error
    for name in REPRODUCTIONS:
        assert name in error


def test_reproduce_without_name_fails(capsys):
    assert main(["reproduce"]) == 2
    assert "--list" in capsys.readouterr().err


def test_reproduce_runs_and_prints_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(REPRODUCTIONS, "stub", f"{__name__}:stub_reproduction")

    status = main(
        [
            "reproduce",
            "stub",
            "--size",
            "smoke",
            "--workers",
            "2",
            "--results-dir",
            str(tmp_path),
            "--no-progress",
        ]
    )

    output = capsys.readouterr().out
    folder = tmp_path / "reproduce" / "stub-smoke"
    assert status == 0
    assert "| sum of values | 6 |" in output
    assert f"report written to {folder / 'report.md'}" in output
    assert (folder / "points.jsonl").read_bytes().count(b"\n") == 4
    assert "reproduce stub --size smoke" in (folder / "report.md").read_text()


def test_readme_sweep_example_is_bundled_sweep(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", readme, flags=re.DOTALL)
    example = [block for block in blocks if "[sweep]" in block]
    assert len(example) == 1

    config = write_config(tmp_path, example[0])

    assert load_sweep_config(config)[0] == load_sweep_config("moons-coupler-error")[0]
