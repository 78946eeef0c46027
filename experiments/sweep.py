"""Sweep engine: independent points (parameters, seed) run in parallel, each saved at
once.

A sweep is a list of ``SweepPoint``: grid coordinates and the parameters a point
function receives. ``run_points`` calls the point function on every point, in this
process, in local worker processes or on a Dask cluster, and appends each finished point
as one JSON line to a file. A rerun reads the file and skips the points it contains, so
a sweep that was killed resumes where it stopped.

The seed of a point is ``np.random.SeedSequence(root_seed, spawn_key=point.index)``: it
depends on the grid coordinates only, never on the worker or the order in which points
finish, so every executor gives bitwise the same results.

A line of the points file is one record::

    {"key": ..., "task": ..., "index": [...], "root_seed": ..., "params": {...},
     "result": {...}, "elapsed_s": ...}

``key`` is ``json.dumps(params, sort_keys=True)``. A record matches a point when its
task, key, index and root seed are all equal, so one file can contain several sweeps.
Only the
parent process writes, one whole line per ``write`` call followed by ``fsync``, so a
SIGKILL leaves at most a partial last line, which the next run drops with a warning. A
run holds an advisory lock on ``<points file>.lock``, so a second run of the same sweep
stops at once instead of running the same points. Worker processes exit within about
``WATCHDOG_INTERVAL_S`` once the process that started them is gone, so a killed run
leaves no workers behind.

A run checks its options and connects to the Dask scheduler, if one is given, before it
takes the lock. ``run_sweep`` writes into the sweep folder only after both. Each run of
``run_sweep`` then appends one JSON line of provenance to ``provenance.jsonl``, so the
file keeps the provenance of every run, earlier ones included.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import importlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import socket
import threading
import time
import tomllib
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from experiments.blas import limit_blas_threads
from experiments.provenance import collect_provenance

logger = logging.getLogger(__name__)

EXECUTORS = ("processes", "dask-local")
"""Executors for runs without a scheduler address: local worker processes (this process
when workers = 1), or a local Dask cluster."""

TASK_ALIASES: dict[str, str] = {
    "train": "experiments.sweep_tasks:train",
    "demo": "experiments.sweep_tasks:demo",
}
"""Short names of the built-in point functions."""

SCHEDULER_CONNECT_TIMEOUT_S = 10.0
"""How long ``run_points`` waits to connect to a Dask scheduler address, in s."""

SCHEDULER_ADDRESS_FORM = "tcp://host:port"
"""The form of a Dask scheduler address that ``run_points`` accepts."""

WATCHDOG_INTERVAL_S = 0.5
"""How often a local worker process checks that the process that started it is alive,
in s."""

DASK_INSTALL_HINT = "install the optional extra with: pip install -e '.[dask]'"

PointFunction = Callable[[dict[str, Any], np.random.SeedSequence], dict[str, Any]]


class SweepExecutorError(RuntimeError):
    """The executor of a sweep cannot start: Dask is not installed or the scheduler is
    unreachable."""


class PointFailed(RuntimeError):
    """A point function raised; the points finished before it are saved.

    Attributes:
        params: the parameters of the point that failed.
        index: its grid coordinates.
    """

    def __init__(self, task: str, index: tuple[int, ...], params: dict[str, Any]):
        super().__init__(
            f"point {list(index)} of task {task!r} failed with params "
            f"{json.dumps(params, sort_keys=True)}"
        )
        self.index = index
        self.params = params


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep.

    Attributes:
        index: grid coordinates, one position per grid key in grid order, then the seed
            index. The point's seed is derived from it.
        params: what the point function receives (JSON values only).
    """

    index: tuple[int, ...]
    params: dict[str, Any]

    def __post_init__(self) -> None:
        index = self.index
        if not isinstance(index, (tuple, list)) or not all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in index
        ):
            raise ValueError(
                f"SweepPoint.index {index!r} is invalid; give a tuple of integers >= 0"
            )
        object.__setattr__(self, "index", tuple(index))
        if not isinstance(self.params, Mapping):
            raise ValueError(
                f"SweepPoint.params {self.params!r} is invalid; give a dict of JSON "
                "values"
            )
        object.__setattr__(self, "params", dict(self.params))
        try:
            json.dumps(self.params, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"SweepPoint.params {self.params!r} is invalid: {error}; give numbers, "
                "strings, bools, lists and dicts only"
            ) from None

    @property
    def key(self) -> str:
        """The stable string that names the point's parameters in the points file."""
        return point_key(self.params)


def point_key(params: Mapping[str, Any]) -> str:
    """Return a point's key, ``json.dumps(params, sort_keys=True)``."""
    return json.dumps(params, sort_keys=True)


def grid_points(
    grid: Mapping[str, Sequence[Any]],
    seeds: int | Sequence[int],
    constants: Mapping[str, Any] | None = None,
) -> list[SweepPoint]:
    """Build the Cartesian product of the grid values and the seeds.

    Points are in row-major order over the grid keys in the given order, the seed
    varying fastest. A point's index contains the position of each of its grid values
    and, last, its seed index s. Its params are ``constants | {key: value} |
    {"seed_index": s}``. ``seeds`` is a count n (seed indices 0 .. n − 1) or a list of
    distinct seed indices, so ``seeds=2`` and ``seeds=[0, 1]`` give the same points and
    ``[2, 3]`` extends them. An empty ``grid`` gives one point per seed.

    Raises:
        ValueError: for an empty list of grid values, a value repeated in one list, a
            grid value list that is a string or not a sequence, seeds that are neither
            a count >= 1 nor a list of distinct integers >= 0, or a key that is both a
            constant and a grid key, or is ``"seed_index"``.
    """
    constants = dict(constants or {})
    seed_indices = _seed_indices(seeds)
    value_lists: list[list[Any]] = []
    for key, values in grid.items():
        if not isinstance(key, str) or key == "":
            raise ValueError(f"grid key {key!r} is invalid; give a non-empty string")
        if key == "seed_index" or key in constants:
            role = "reserved" if key == "seed_index" else "also a constant"
            raise ValueError(f"grid key {key!r} is {role}; give it in one place only")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ValueError(
                f"grid values of {key!r} are {values!r}; give a list of values"
            )
        if len(values) == 0:
            raise ValueError(f"grid key {key!r} has an empty list of values; give >= 1")
        _check_distinct(key, values)
        value_lists.append(list(values))
    if "seed_index" in constants:
        raise ValueError("constant 'seed_index' is reserved for the seed index")

    keys = list(grid)
    points = []
    for positions in itertools.product(*(range(len(v)) for v in value_lists)):
        values = {
            key: value_lists[k][i] for k, (key, i) in enumerate(zip(keys, positions))
        }
        for seed_index in seed_indices:
            params = constants | values | {"seed_index": seed_index}
            points.append(SweepPoint(index=(*positions, seed_index), params=params))
    return points


def _check_distinct(key: str, values: Sequence[Any]) -> None:
    """Raise ValueError if a grid value list repeats a value.

    Two points with equal values would run the same experiment under two seeds, so a
    repeat is almost always a typing mistake. Numbers compare by value (1 equals 1.0),
    other values by their JSON text, and a bool never equals a number.
    """
    seen: set[Any] = set()
    for value in values:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            identity: Any = value
        else:
            identity = ("json", json.dumps(value, sort_keys=True, default=repr))
        if identity in seen:
            raise ValueError(
                f"grid key {key!r} repeats the value {value!r}; give each value once"
            )
        seen.add(identity)


_SEEDS_HINT = "give a count >= 1 or a list of seed indices"


def _seed_indices(seeds: Any) -> list[int]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds = {seeds!r} is invalid; {_SEEDS_HINT}")
        return list(range(seeds))
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise ValueError(f"seeds = {seeds!r} is invalid; {_SEEDS_HINT}")
    indices = list(seeds)
    if not indices:
        raise ValueError(f"seeds = [] is an empty list; {_SEEDS_HINT}")
    for seed in indices:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(
                f"seed index {seed!r} in seeds = {indices!r} is invalid; give integers "
                ">= 0"
            )
    if len(set(indices)) != len(indices):
        raise ValueError(f"seeds = {indices} repeats a seed index; give distinct ones")
    return indices


def resolve_task(task: str) -> PointFunction:
    """Import the point function named ``"package.module:function"`` or a short name of
    ``TASK_ALIASES``.

    Raises:
        ValueError: for a malformed name, a module that is not found, or a missing or
            non-callable attribute.
    """
    path = task_path(task)
    module_name, _, function_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # Only a missing task module is the caller's mistake; a missing import inside
        # the module is a broken installation and propagates unchanged.
        if error.name is None or not module_name.startswith(error.name):
            raise
        raise ValueError(
            f"task {task!r}: module {module_name!r} not found; give an importable "
            f"'package.module:function' or one of {', '.join(TASK_ALIASES)}"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(
            f"task {task!r}: module {module_name!r} has no function {function_name!r}"
        )
    return function


def task_path(task: str) -> str:
    """Return the ``"package.module:function"`` path of a task or task alias.

    Raises:
        ValueError: if ``task`` is neither an alias nor of that form.
    """
    if not isinstance(task, str):
        raise ValueError(f"task {task!r} is invalid; give 'package.module:function'")
    path = TASK_ALIASES.get(task, task)
    module_name, colon, function_name = path.partition(":")
    if not colon or not module_name or not function_name.isidentifier():
        raise ValueError(
            f"task {task!r} is unknown; give 'package.module:function' or one of "
            f"{', '.join(TASK_ALIASES)}"
        )
    return path


def check_points(task: str, points: Sequence[SweepPoint]) -> PointFunction:
    """Check a task and its points without running any, and return the point function.

    A point function may carry an attribute ``check_params(params) -> None`` that
    raises ValueError for parameters it cannot run, such as unknown keys or invalid
    values. This function calls it on every point.

    Raises:
        ValueError: for an unknown task, an element that is not a SweepPoint, two points
            with the same index, or parameters that ``check_params`` rejects.
    """
    function = resolve_task(task)
    seen: set[tuple[int, ...]] = set()
    for point in points:
        if not isinstance(point, SweepPoint):
            raise ValueError(f"point {point!r} is invalid; give SweepPoint instances")
        if point.index in seen:
            raise ValueError(f"two points have the index {list(point.index)}")
        seen.add(point.index)
    check = getattr(function, "check_params", None)
    if check is not None:
        for point in points:
            check(point.params)
    return function


def _check_options(
    root_seed: int, workers: int, executor: str, scheduler: str | None
) -> None:
    if isinstance(root_seed, bool) or not isinstance(root_seed, int) or root_seed < 0:
        raise ValueError(f"root_seed {root_seed!r} is invalid; give an integer >= 0")
    check_executor_options(workers, executor, scheduler)


def check_executor_options(workers: int, executor: str, scheduler: str | None) -> None:
    """Check the options that choose where points run, without connecting anywhere.

    Raises:
        ValueError: for a worker count below 1, an executor outside ``EXECUTORS``, a
            scheduler address not of the form ``tcp://host:port``, or a scheduler
            address together with the "dask-local" executor.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers {workers!r} is invalid; give an integer >= 1")
    if executor not in EXECUTORS:
        raise ValueError(
            f"executor {executor!r} is unknown; choose one of {', '.join(EXECUTORS)}"
        )
    if scheduler is not None:
        check_scheduler_address(scheduler)
        if executor == "dask-local":
            raise ValueError(
                "executor 'dask-local' and a scheduler address exclude each other; "
                "give one of them"
            )


def check_scheduler_address(address: Any) -> tuple[str, int]:
    """Check that a Dask scheduler address has the form ``tcp://host:port``.

    Only plain TCP is accepted: a ``tls://`` scheduler needs certificates, which the
    sweep commands do not take.

    Returns:
        The host and the port.

    Raises:
        ValueError: naming the address and the expected form.
    """
    invalid = ValueError(
        f"scheduler address {address!r} is invalid; give one of the form "
        f"{SCHEDULER_ADDRESS_FORM}, e.g. tcp://10.0.0.5:8786"
    )
    if not isinstance(address, str) or any(c.isspace() for c in address):
        raise invalid
    parts = urllib.parse.urlsplit(address)
    try:
        port = parts.port
    except ValueError:
        raise invalid from None
    if (
        parts.scheme != "tcp"
        or not parts.hostname
        or port is None
        or not 1 <= port <= 65535
        or parts.username is not None
        or parts.path
        or parts.query
        or parts.fragment
    ):
        raise invalid
    return parts.hostname, port


def check_scheduler(address: str) -> None:
    """Check a Dask scheduler address and that something accepts TCP connections there.

    A refused connection or an unknown host fails at once. A connection that gets no
    response fails after ``SCHEDULER_CONNECT_TIMEOUT_S``. This checks the TCP port only:
    ``run_points`` completes the Dask handshake when it connects. A Dask scheduler logs
    the check at info level as a connection closed before the handshake.

    Raises:
        ValueError: for an address not of the form ``tcp://host:port``.
        SweepExecutorError: if Dask is not installed, or the connection fails.
    """
    host, port = check_scheduler_address(address)
    _import_distributed()
    try:
        with socket.create_connection(
            (host, port), timeout=SCHEDULER_CONNECT_TIMEOUT_S
        ):
            pass
    except OSError as error:
        reason = (
            f"no answer within {SCHEDULER_CONNECT_TIMEOUT_S:g} s"
            if isinstance(error, TimeoutError)
            else str(error)
        )
        raise SweepExecutorError(
            f"cannot connect to the Dask scheduler at {address!r} ({reason}); check "
            "the address and that the scheduler is running"
        ) from None


def _connect_scheduler(address: str) -> Any:
    """Return a Dask client connected to the scheduler at ``address``.

    Raises:
        SweepExecutorError: as ``check_scheduler``, or if the Dask handshake does not
            finish within ``SCHEDULER_CONNECT_TIMEOUT_S``.
    """
    # The TCP check first, because distributed.Client retries a refused connection
    # until its timeout instead of failing at once.
    check_scheduler(address)
    distributed = _import_distributed()
    try:
        client = distributed.Client(address, timeout=SCHEDULER_CONNECT_TIMEOUT_S)
    except (OSError, ValueError) as error:
        raise SweepExecutorError(
            f"cannot connect to the Dask scheduler at {address!r}: the Dask handshake "
            f"did not finish within {SCHEDULER_CONNECT_TIMEOUT_S:g} s ({error}); check "
            "that a Dask scheduler, not another server, listens there"
        ) from None
    n_workers = len(client.scheduler_info().get("workers", {}))
    logger.info(
        "connected to the Dask scheduler at %s (%d workers)", address, n_workers
    )
    if n_workers == 0:
        logger.warning(
            "the Dask scheduler at %s has no workers yet; points wait until one "
            "connects",
            address,
        )
    return client


def run_point(
    task: str, params: dict[str, Any], root_seed: int, index: Sequence[int]
) -> tuple[str, float]:
    """Run one point where it lands (this process, a worker process or a Dask worker).

    Derives the point's SeedSequence from ``(root_seed, index)`` and calls the point
    function. The callers limit BLAS to one thread first.

    Returns:
        The result as JSON text and the wall time of the call in s.

    Raises:
        TypeError: if the result is not a dict of JSON-serialisable values (numpy
            scalars and arrays are converted).
    """
    function = resolve_task(task)
    seed = np.random.SeedSequence(root_seed, spawn_key=tuple(index))
    started = time.perf_counter()
    result = function(dict(params), seed)
    elapsed_s = time.perf_counter() - started
    if not isinstance(result, Mapping):
        raise TypeError(
            f"task {task!r} returned {type(result).__name__}; a point function "
            "must return a dict"
        )
    return json.dumps(dict(result), default=_json_default), elapsed_s


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON-serialisable")


def _initialize_worker(main_pid: int) -> None:
    # Parallelism comes from the worker processes. BLAS threads inside each worker would
    # compete with them for the cores and slow the small mesh products
    # (experiments/blas.py gives the figures).
    limit_blas_threads()
    # A worker waits on its task queue, whose pipe the other workers also hold open, so
    # it never reads end-of-file when the main process dies without shutting the pool
    # down (SIGKILL, or SIGTERM without a handler). The workers would then stay as
    # orphans, keeping the forkserver and the resource tracker alive with them. The
    # watchdog ends the worker instead.
    if os.name == "posix":
        # NOTE: not on Windows, where os.kill(pid, 0) would terminate the process.
        watchdog = threading.Thread(
            target=_exit_when_gone,
            args=(main_pid,),
            name="sweep-watchdog",
            daemon=True,
        )
        watchdog.start()


def _exit_when_gone(pid: int) -> None:
    """Poll every ``WATCHDOG_INTERVAL_S`` whether process ``pid`` is alive, and end this
    process at once when it is not."""
    while _process_alive(pid):
        time.sleep(WATCHDOG_INTERVAL_S)
    # os._exit because no process is left to receive a result, and sys.exit in a
    # thread would end only this thread.
    os._exit(1)


def _process_alive(pid: int) -> bool:
    """Return whether process ``pid`` exists and is not a zombie (POSIX only)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed process stays a zombie until its parent reaps it, and os.kill still
    # finds a zombie. Linux shows the state in /proc; elsewhere a zombie counts as alive
    # until it is reaped.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    state = stat.rpartition(")")[2].split()[:1]
    return state not in (["Z"], ["X"])


# --- the points file ----------------------------------------------------------------

_RECORD_FIELDS = ("key", "task", "index", "root_seed", "params", "result")


def _identity(task: str, key: str, index: Sequence[int], root_seed: int) -> tuple:
    return (task, key, tuple(index), root_seed)


def _record_identity(record: Mapping[str, Any]) -> tuple:
    return _identity(
        record["task"], record["key"], record["index"], record["root_seed"]
    )


def _parse_record(line: bytes) -> dict[str, Any] | None:
    """Parse one line of a points file; None if it is not a whole record."""
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or not all(f in record for f in _RECORD_FIELDS):
        return None
    return record


@dataclass(frozen=True)
class _PointsFile:
    """The parsed records of a points file and the bytes to keep if it needs repair."""

    records: list[dict[str, Any]]
    valid_bytes: bytes | None
    """The file's whole records, each ending in a newline, if the file must be rewritten
    (a damaged or unterminated last line); None if it is sound."""


def _read_points_file(path: Path) -> _PointsFile:
    if not path.exists():
        return _PointsFile(records=[], valid_bytes=None)
    data = path.read_bytes()
    lines = data.split(b"\n")
    terminated = lines[-1] == b""
    if terminated:
        lines = lines[:-1]
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        record = _parse_record(line)
        is_last = number == len(lines)
        if record is None and not is_last:
            raise ValueError(
                f"line {number} of {str(path)!r} is not a sweep record; only the last "
                "line can be cut by a killed run, so the file was changed by something "
                "else. Move it aside or repair that line."
            )
        if record is None:
            logger.warning(
                "ignoring the damaged last line %d of %s, left by a run killed while "
                "writing; the next run removes it",
                number,
                path,
            )
            whole_lines = b"".join(whole + b"\n" for whole in lines[:-1])
            return _PointsFile(records=records, valid_bytes=whole_lines)
        records.append(record)
    if lines and not terminated:
        return _PointsFile(records=records, valid_bytes=data + b"\n")
    return _PointsFile(records=records, valid_bytes=None)


def read_records(lines_path: str | Path) -> list[dict[str, Any]]:
    """Read the records of a points file, without a damaged last line; writes nothing.

    Returns an empty list if the file does not exist.

    Raises:
        ValueError: if a line other than the last is not a record.
    """
    return _read_points_file(Path(lines_path)).records


def _rewrite(path: Path, data: bytes) -> None:
    """Replace a file by ``data`` atomically and durably."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def _fsync_directory(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


class _RecordWriter:
    """Appender of records to a points file, one line per write, flushed and fsynced."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("ab")

    def append(self, line: str) -> None:
        self._handle.write(line.encode("utf-8") + b"\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


# --- running ------------------------------------------------------------------------


def run_points(
    task: str,
    points: Sequence[SweepPoint],
    lines_path: Path,
    *,
    root_seed: int = 0,
    workers: int = 1,
    executor: str = "processes",
    scheduler: str | None = None,
    progress: bool = True,
    description: str = "sweep",
) -> list[dict[str, Any]]:
    """Run the points that ``lines_path`` does not hold yet and append each as it ends.

    ``task`` is ``"package.module:function"`` of a point function, or a short name of
    ``TASK_ALIASES``. Each point runs as ``function(params,
    np.random.SeedSequence(root_seed, spawn_key=point.index))``. Where points run:

    - "processes" with ``workers = 1``: in this process;
    - "processes" with more: in that many worker processes, started by forkserver
      where available, else by spawn; each ends itself once this process is gone;
    - "dask-local": on a local Dask cluster of ``workers`` single-threaded processes,
      closed at the end;
    - ``scheduler`` given: on the Dask cluster at that address, of the form
      ``tcp://host:port`` (``workers`` is not used).

    Every path limits BLAS to one thread before computing.

    Everything is checked, and the scheduler connected, before the file is touched, even
    when no point is pending, so an invalid call leaves it as it was. A damaged last
    line left by a killed run is dropped with a warning.

    Returns:
        The records of all points, in the order of ``points``.

    Raises:
        ValueError: for an unknown task or executor, a malformed scheduler address,
            invalid points, options or parameters (``check_params`` of the point
            function), or a points file with a damaged line before the last.
        SweepExecutorError: if Dask is needed but not installed, or the scheduler
            rejects the connection or does not respond within
            ``SCHEDULER_CONNECT_TIMEOUT_S``.
        PointFailed: if a point function raises (its error is the ``__cause__``);
            points that finished before are saved.
        BlockingIOError: if another run is writing the same points file.
        OSError: if the points file cannot be read or written.
    """
    task = task_path(task)
    _check_options(root_seed, workers, executor, scheduler)
    points = list(points)
    check_points(task, points)
    if executor == "dask-local":
        _import_distributed()

    lines_path = Path(lines_path)
    with _started_run(lines_path, scheduler) as client:
        plan = _plan_run(task, points, lines_path, root_seed, description)
        return _run_plan(
            plan,
            task,
            lines_path,
            root_seed=root_seed,
            workers=workers,
            executor=executor,
            client=client,
            progress=progress,
            description=description,
        )


@contextlib.contextmanager
def _started_run(lines_path: Path, scheduler: str | None) -> Iterator[Any]:
    """Connect to the Dask scheduler if one is given, then hold the lock of the points
    file.

    Yields the Dask client, or None without a scheduler, and closes it at the end.
    """
    client = None if scheduler is None else _connect_scheduler(scheduler)
    try:
        with _exclusive_lock(lines_path):
            yield client
    finally:
        if client is not None:
            client.close()


@contextlib.contextmanager
def _exclusive_lock(lines_path: Path) -> Iterator[None]:
    """Hold an advisory lock on ``<lines_path>.lock`` so that two runs never write the
    same points file at once."""
    if fcntl is None:
        # NOTE: without fcntl (Windows) two runs of one sweep are not kept apart.
        yield
        return
    lines_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = lines_path.with_name(lines_path.name + ".lock")
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BlockingIOError(
                errno.EWOULDBLOCK,
                f"another run is writing {str(lines_path)!r}; wait for it to end or "
                "stop it",
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class _RunPlan:
    """The state of a points file at the start of a run and the points left to run."""

    points_file: _PointsFile
    finished: dict[tuple, dict[str, Any]]
    """Records by identity; the run adds each point it finishes."""
    identities: list[tuple]
    """The identity of every point of the run, in the order of its points."""
    pending: list[SweepPoint]


def _plan_run(
    task: str,
    points: list[SweepPoint],
    lines_path: Path,
    root_seed: int,
    description: str,
) -> _RunPlan:
    points_file = _read_points_file(lines_path)
    finished: dict[tuple, dict[str, Any]] = {}
    for record in points_file.records:
        finished.setdefault(_record_identity(record), record)
    identities = [_identity(task, p.key, p.index, root_seed) for p in points]
    pending = [p for p, i in zip(points, identities) if i not in finished]
    logger.info(
        "%s: %d points, %d already in %s, %d to run",
        description,
        len(points),
        len(points) - len(pending),
        lines_path,
        len(pending),
    )
    return _RunPlan(points_file, finished, identities, pending)


def _run_plan(
    plan: _RunPlan,
    task: str,
    lines_path: Path,
    *,
    root_seed: int,
    workers: int,
    executor: str,
    client: Any,
    progress: bool,
    description: str,
) -> list[dict[str, Any]]:
    """Run the pending points of a plan and return the records of all its points."""
    pending = plan.pending
    if pending:
        total = len(plan.identities)
        with tqdm(
            total=total,
            initial=total - len(pending),
            desc=description,
            unit="point",
            disable=not progress,
        ) as bar:
            if client is not None:
                runner = _run_on_dask(pending, task, root_seed, client=client)
            elif executor == "dask-local":
                runner = _run_on_dask(pending, task, root_seed, local_workers=workers)
            elif workers > 1:
                runner = _run_in_processes(pending, task, root_seed, workers)
            else:
                runner = _run_here(pending, task, root_seed)
            _write_as_finished(
                runner,
                lines_path,
                plan.points_file,
                task,
                root_seed,
                plan.finished,
                bar,
            )
    return [plan.finished[identity] for identity in plan.identities]


# An outcome is (point, result JSON text, elapsed s) or (point, exception, None).
_Outcome = tuple[SweepPoint, str | BaseException, float | None]


def _write_as_finished(
    runner: Iterator[_Outcome],
    lines_path: Path,
    points_file: _PointsFile,
    task: str,
    root_seed: int,
    finished: dict[tuple, dict[str, Any]],
    bar: tqdm,
) -> None:
    """Append every successful outcome; raise PointFailed for the first failure after
    the points already running have ended."""
    writer: _RecordWriter | None = None
    failure: tuple[SweepPoint, BaseException] | None = None
    try:
        for point, outcome, elapsed_s in runner:
            if isinstance(outcome, BaseException):
                if failure is None:
                    failure = (point, outcome)
                    logger.error(
                        "point %s failed: %r; cancelling the points not started yet",
                        list(point.index),
                        outcome,
                    )
                    # The traceback at debug level, so that -v shows where the point
                    # function failed; a worker's traceback is in the error's cause.
                    logger.debug(
                        "traceback of point %s",
                        list(point.index),
                        exc_info=outcome,
                    )
                continue
            if writer is None:
                # The runner has started by now, so a failure to start has left the
                # file untouched.
                lines_path.parent.mkdir(parents=True, exist_ok=True)
                if points_file.valid_bytes is not None:
                    _rewrite(lines_path, points_file.valid_bytes)
                writer = _RecordWriter(lines_path)
            record = {
                "key": point.key,
                "task": task,
                "index": list(point.index),
                "root_seed": root_seed,
                "params": point.params,
                "result": json.loads(outcome),
                "elapsed_s": elapsed_s,
            }
            line = json.dumps(record)
            writer.append(line)
            finished[_identity(task, point.key, point.index, root_seed)] = json.loads(
                line
            )
            bar.update(1)
    finally:
        runner.close()
        if writer is not None:
            writer.close()
    if failure is not None:
        point, error = failure
        raise PointFailed(task, point.index, point.params) from error


def _run_here(
    points: list[SweepPoint], task: str, root_seed: int
) -> Iterator[_Outcome]:
    """Run points one after the other in this process; stop at the first failure.

    BLAS runs on one thread while the points run, and its earlier limit is restored
    after.
    """
    with limit_blas_threads():
        for point in points:
            try:
                result, elapsed_s = run_point(
                    task, point.params, root_seed, point.index
                )
            except Exception as error:  # noqa: BLE001 - reported as PointFailed later
                yield point, error, None
                return
            yield point, result, elapsed_s


def _run_point_on_dask(
    task: str, params: dict[str, Any], root_seed: int, index: Sequence[int]
) -> tuple[str, float]:
    """Run one point on a Dask worker, with BLAS on one thread."""
    limit_blas_threads()
    return run_point(task, params, root_seed, index)


def _process_context() -> multiprocessing.context.BaseContext:
    # Worker processes start fresh instead of forking: a forked child inherits the
    # parent's BLAS thread pool and locks, which may be held at the moment of fork.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context(
        "forkserver" if "forkserver" in methods else "spawn"
    )


def _run_in_processes(
    points: list[SweepPoint], task: str, root_seed: int, workers: int
) -> Iterator[_Outcome]:
    """Run points in local worker processes; after a failure, cancel the points not yet
    handed to a worker (the pool queues up to ``workers + 1`` ahead)."""
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(points)),
        mp_context=_process_context(),
        initializer=_initialize_worker,
        initargs=(os.getpid(),),
    )
    try:
        futures = {
            pool.submit(run_point, task, p.params, root_seed, p.index): p
            for p in points
        }
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for future in done:
                if future.cancelled():
                    continue
                error = future.exception()
                if error is not None:
                    for other in remaining:
                        other.cancel()
                    yield futures[future], error, None
                    continue
                result, elapsed_s = future.result()
                yield futures[future], result, elapsed_s
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise SweepExecutorError(
            f"the Dask executors need dask.distributed, which is not installed; "
            f"{DASK_INSTALL_HINT}"
        ) from None
    return distributed


def _run_on_dask(
    points: list[SweepPoint],
    task: str,
    root_seed: int,
    *,
    client: Any = None,
    local_workers: int | None = None,
) -> Iterator[_Outcome]:
    """Run points on a Dask cluster: through ``client``, connected by the caller, or
    on a new local cluster of ``local_workers`` processes, closed at the end."""
    distributed = _import_distributed()
    cluster = None
    if client is None:
        cluster = distributed.LocalCluster(
            n_workers=local_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # The worker processes log warnings and errors only. The command line sets
            # the level of what this process logs.
            silence_logs=logging.WARNING,
        )
        client = distributed.Client(cluster)
        logger.info("started a local Dask cluster of %d workers", local_workers)
    try:
        futures = {
            client.submit(
                _run_point_on_dask, task, p.params, root_seed, p.index, pure=False
            ): p
            for p in points
        }
        failed = False
        for future in distributed.as_completed(list(futures)):
            point = futures[future]
            if future.status == "cancelled":
                continue
            if future.status == "error":
                # Dask returns the error without its traceback; attach it for the log.
                error = future.exception().with_traceback(future.traceback())
                if not failed:
                    failed = True
                    for other in futures:
                        if other.status == "pending":
                            other.cancel()
                yield point, error, None
                continue
            result, elapsed_s = future.result()
            yield point, result, elapsed_s
    finally:
        if cluster is not None:
            client.close()
            cluster.close()


# --- sweep configs and the sweep command ----------------------------------------------

BUNDLED_SWEEPS = Path(__file__).resolve().parent / "configs" / "sweeps"

POINTS_NAME = "points.jsonl"
POINTS_CSV_NAME = "points.csv"
SUMMARY_CSV_NAME = "summary.csv"
SUMMARY_MD_NAME = "summary.md"
PLOT_NAME = "results.png"


def bundled_sweep_names() -> list[str]:
    """Names of the sweep configs shipped with the package (file names without
    ``.toml``)."""
    return sorted(path.stem for path in BUNDLED_SWEEPS.glob("*.toml"))


@dataclass(frozen=True)
class SweepConfig:
    """A sweep read from TOML.

    Attributes:
        name: names the output folder ``<results_dir>/sweeps/<name>``.
        grid: dotted parameter keys and their value lists, in grid order.
        task: point function, ``"package.module:function"`` or a ``TASK_ALIASES`` name.
        seeds: count of seeds or list of seed indices per grid point.
        root_seed: root of every point's SeedSequence.
        workers: worker processes (Dask workers with "dask-local").
        base: the experiment the grid modifies, as a table of config keys. The point
            function receives it as ``params["base"]``, so a point's key contains the
            whole base config. A string (a TOML path or a bundled config name) is read into
            its table on construction. None leaves it out (the default experiment for
            "train").
        constants: parameters given to every point, as dotted keys.
        base_source: the path or bundled config name the base table was read from,
            for readers; it is not part of the points. Set on construction from a
            string ``base``.
    """

    name: str
    grid: dict[str, tuple[Any, ...]]
    task: str = "train"
    seeds: int | tuple[int, ...] = 1
    root_seed: int = 0
    workers: int = 1
    base: str | dict[str, Any] | None = None
    constants: dict[str, Any] | None = None
    base_source: str | None = None

    def __post_init__(self) -> None:
        name = self.name
        if (
            not isinstance(name, str)
            or name.strip() in ("", ".", "..")
            or "/" in name
            or "\\" in name
        ):
            raise ValueError(
                f"sweep.name {name!r} is invalid; give a folder name without '/'"
            )
        task_path(self.task)
        if not self.grid:
            raise ValueError("the [grid] table is empty; give at least one key")
        _seed_indices(self.seeds)
        if not isinstance(self.seeds, int):
            object.__setattr__(self, "seeds", tuple(self.seeds))
        if isinstance(self.workers, bool) or not isinstance(self.workers, int):
            raise ValueError(f"sweep.workers {self.workers!r} is invalid; give >= 1")
        if self.workers < 1:
            raise ValueError(f"sweep.workers {self.workers!r} is invalid; give >= 1")
        if (
            isinstance(self.root_seed, bool)
            or not isinstance(self.root_seed, int)
            or self.root_seed < 0
        ):
            raise ValueError(
                f"sweep.root_seed {self.root_seed!r} is invalid; give an integer >= 0"
            )
        if self.base is not None and not isinstance(self.base, (str, dict)):
            raise ValueError(
                f"base {self.base!r} is invalid; give a config name or a [base] table"
            )

        if isinstance(self.base, str):
            # A bundled config can change between releases. With only its name in the
            # point keys, a rerun would reuse points computed from the old config.
            object.__setattr__(self, "base_source", self.base)
            object.__setattr__(self, "base", _resolve_base(self.base, Path.cwd()))
        grid_points(self.grid, self.seeds, self._constants())

    def _constants(self) -> dict[str, Any]:
        constants = {} if self.base is None else {"base": self.base}
        return constants | dict(self.constants or {})

    def points(self) -> list[SweepPoint]:
        """Build the points of the sweep, in grid order (see ``grid_points``)."""
        return grid_points(self.grid, self.seeds, self._constants())


def _flatten_table(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Turn nested TOML tables into dotted keys, so ``a.b = 1`` and ``"a.b" = 1``
    read the same."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten_table(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def load_sweep_config(path: str | Path) -> tuple[SweepConfig, str]:
    """Read a sweep config from a TOML file or a bundled sweep name.

    The file has a ``[sweep]`` table (``name``, ``task`` = "train", ``seeds`` = 1,
    ``root_seed`` = 0, ``workers`` = 1), the experiment to modify as ``base = "name"``
    or a ``[base]`` table, a ``[grid]`` table of dotted keys and value lists and an
    optional ``[constants]`` table. A ``base`` string is looked up as a file next to the
    sweep config, then as a path, then as a bundled experiment config. Either is read
    and stored as a table, so workers need no access to it. A changed base config
    therefore gives new point keys. ``SweepConfig.base_source`` keeps the string.

    Returns:
        The config and the text of the file.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: for invalid TOML, an unknown key, or an invalid value.
    """
    path = Path(path)
    if not path.is_file() and (BUNDLED_SWEEPS / f"{path}.toml").is_file():
        path = BUNDLED_SWEEPS / f"{path}.toml"
    if not path.is_file():
        raise FileNotFoundError(
            f"sweep config {str(path)!r} not found; give a TOML file or one of the "
            f"bundled sweeps: {', '.join(bundled_sweep_names())}"
        )
    text = path.read_text(encoding="utf-8")
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(
            f"sweep config {str(path)!r} is not valid TOML: {error}"
        ) from None

    allowed = ("sweep", "base", "grid", "constants")
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in sweep config {str(path)!r}; allowed: "
            f"{', '.join(allowed)}"
        )
    sweep = values.get("sweep")
    if not isinstance(sweep, Mapping) or "name" not in sweep:
        raise ValueError(
            f"sweep config {str(path)!r} needs a [sweep] table with a name"
        )
    allowed_sweep = ("name", "task", "seeds", "root_seed", "workers")
    unknown = sorted(set(sweep) - set(allowed_sweep))
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in [sweep]; allowed: "
            f"{', '.join(allowed_sweep)}"
        )
    grid = values.get("grid", {})
    constants = values.get("constants", {})
    for table_name, table in (("grid", grid), ("constants", constants)):
        if not isinstance(table, Mapping):
            raise ValueError(f"{table_name!r} must be a table, got {table!r}")
    base = values.get("base")
    base_source = None
    if isinstance(base, str):
        base_source = base
        base = _resolve_base(base, path.parent)
    config = SweepConfig(
        name=sweep["name"],
        grid=_flatten_table(grid),
        task=sweep.get("task", "train"),
        seeds=sweep.get("seeds", 1),
        root_seed=sweep.get("root_seed", 0),
        workers=sweep.get("workers", 1),
        base=base,
        constants=_flatten_table(constants),
        base_source=base_source,
    )
    return config, text


def _resolve_base(base: str, folder: Path) -> dict[str, Any]:
    """Read a base config, looked up as a file in ``folder``, as a path, then as a
    bundled config name, into its table."""
    from experiments.config import BUNDLED_CONFIGS, bundled_config_names

    bundled = BUNDLED_CONFIGS / f"{base}.toml"
    for candidate in (folder / base, Path(base), bundled):
        if candidate.is_file():
            try:
                return tomllib.loads(candidate.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as error:
                raise ValueError(
                    f"base config {str(candidate)!r} is not valid TOML: {error}"
                ) from None
    raise ValueError(
        f"base config {base!r} not found as a file in {str(folder)!r}, as a path, or "
        f"among the bundled configs: {', '.join(bundled_config_names())}"
    )


@dataclass(frozen=True)
class SweepSummary:
    """The tables of a sweep's finished points.

    Attributes:
        folder: the sweep's output folder.
        records: the records of the config's points found in the points file.
        missing: points of the config with no record yet.
        table: markdown table of mean ± std over seeds per grid point.
        files: the files written (CSV tables, markdown table, plot).
    """

    folder: Path
    records: list[dict[str, Any]]
    missing: int
    table: str
    files: list[Path]


def sweep_folder(config: SweepConfig, results_dir: str | Path) -> Path:
    """Return the output folder of a sweep, ``<results_dir>/sweeps/<name>``."""
    return Path(results_dir) / "sweeps" / config.name


PROVENANCE_NAME = "provenance.jsonl"


def run_sweep(
    config: SweepConfig,
    results_dir: str | Path = "results",
    *,
    config_text: str | None = None,
    workers: int | None = None,
    executor: str = "processes",
    scheduler: str | None = None,
    progress: bool = True,
) -> SweepSummary:
    """Run the points of a sweep config not yet in its folder, then tabulate all.

    Writes into ``sweep_folder``: ``config.toml`` (``config_text``, the file as read;
    it replaces the copy of an earlier run), one line appended to
    ``provenance.jsonl``, ``points.jsonl`` and the files of ``collect_sweep``.
    ``workers`` replaces the config's worker count.

    A line of ``provenance.jsonl`` describes one run: the fields of
    ``experiments.provenance.collect_provenance`` and a ``"sweep"`` object with the
    sweep's name, task, base source, point count, the count of points pending at the
    start, workers, executor, scheduler and the config text. A rerun appends a line,
    so the provenance of points added by earlier runs stays.

    Raises:
        ValueError, SweepExecutorError, PointFailed, OSError: as ``run_points``. The
            folder is written only after every check has passed, the scheduler is
            connected and the lock on the points file is held. A run that fails to
            start or is rejected therefore leaves the files of the folder as they were.
    """
    workers = config.workers if workers is None else workers
    task = task_path(config.task)
    points = config.points()
    _check_options(config.root_seed, workers, executor, scheduler)
    check_points(task, points)
    if executor == "dask-local":
        _import_distributed()

    folder = sweep_folder(config, results_dir)
    lines_path = folder / POINTS_NAME
    with _started_run(lines_path, scheduler) as client:
        plan = _plan_run(task, points, lines_path, config.root_seed, config.name)
        if config_text is not None:
            _write_config_copy(folder / "config.toml", config_text)
        provenance = collect_provenance(seed=config.root_seed, config_path=None)
        provenance["sweep"] = {
            "name": config.name,
            "task": task,
            "base": config.base_source,
            "points": len(points),
            "pending": len(plan.pending),
            "workers": workers,
            "executor": "dask" if scheduler else executor,
            "scheduler": scheduler,
            "config": config_text,
        }
        _append_line(folder / PROVENANCE_NAME, json.dumps(provenance))
        logger.info("sweep %s: %d points in %s", config.name, len(points), folder)
        _run_plan(
            plan,
            task,
            lines_path,
            root_seed=config.root_seed,
            workers=workers,
            executor=executor,
            client=client,
            progress=progress,
            description=config.name,
        )
    return collect_sweep(config, folder)


def _write_config_copy(path: Path, config_text: str) -> None:
    if path.is_file() and path.read_text(encoding="utf-8") != config_text:
        logger.warning(
            "the sweep config differs from the one in %s; points of the earlier "
            "config stay in %s, its text in %s, and the tables show the current grid",
            path,
            POINTS_NAME,
            PROVENANCE_NAME,
        )
    _write_text(path, config_text)


def _append_line(path: Path, line: str) -> None:
    writer = _RecordWriter(path)
    try:
        writer.append(line)
    finally:
        writer.close()


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


# --- collecting ----------------------------------------------------------------------


def collect_sweep(config: SweepConfig, folder: str | Path) -> SweepSummary:
    """Tabulate the finished points of a sweep config from its points file.

    Writes ``points.csv`` (one row per point: grid values, seed index, results and
    elapsed_s), ``summary.csv`` and ``summary.md`` (per grid point: number of seeds, and
    mean and sample standard deviation, ddof = 1, over seeds of every numeric result)
    and ``results.png`` (each numeric result against the first grid key, one line per
    value of the second). A result is numeric when every point has a number or None
    for it; results named ``*_seed`` are identifiers and appear in ``points.csv`` only.
    Points without a record are left out and counted.

    Raises:
        FileNotFoundError: if the folder has no points file.
        ValueError: if a line other than the last of the points file is damaged.
    """
    folder = Path(folder)
    lines_path = folder / POINTS_NAME
    if not lines_path.is_file():
        raise FileNotFoundError(
            f"no points file {str(lines_path)!r}; run the sweep before collecting it"
        )
    task = task_path(config.task)
    by_identity: dict[tuple, dict[str, Any]] = {}
    for record in read_records(lines_path):
        by_identity.setdefault(_record_identity(record), record)
    points = config.points()
    found = [
        (point, by_identity[identity])
        for point in points
        if (identity := _identity(task, point.key, point.index, config.root_seed))
        in by_identity
    ]
    missing = len(points) - len(found)
    if missing:
        logger.warning(
            "%d of %d points of sweep %s have no record yet",
            missing,
            len(points),
            config.name,
        )

    keys = list(config.grid)
    result_keys = _result_keys([record for _, record in found])
    numeric_keys = [k for k in result_keys if _is_numeric_column(found, k)]
    groups = _group_by_grid_point(found, len(keys))

    files = [
        _write_points_csv(folder / POINTS_CSV_NAME, keys, result_keys, found),
        _write_summary_csv(folder / SUMMARY_CSV_NAME, keys, numeric_keys, groups),
    ]
    table = _format_summary_table(keys, numeric_keys, groups)
    _write_text(folder / SUMMARY_MD_NAME, table + "\n")
    files.append(folder / SUMMARY_MD_NAME)
    if numeric_keys and found:
        files.append(
            plot_sweep(folder / PLOT_NAME, config, numeric_keys, [r for _, r in found])
        )
    return SweepSummary(
        folder=folder,
        records=[record for _, record in found],
        missing=missing,
        table=table,
        files=files,
    )


def _result_keys(records: list[dict[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for record in records:
        for key in record["result"]:
            keys.setdefault(key, None)
    return list(keys)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_numeric_column(found: list[tuple[SweepPoint, dict]], key: str) -> bool:
    if key.endswith("_seed"):
        # A seed identifies a run; its mean over seeds means nothing.
        return False
    values = [record["result"].get(key) for _, record in found]
    return any(_is_number(v) for v in values) and all(
        v is None or _is_number(v) for v in values
    )


@dataclass(frozen=True)
class _Group:
    """The seeds of one grid point."""

    index: tuple[int, ...]
    params: dict[str, Any]
    results: list[dict[str, Any]]

    def values(self, key: str) -> np.ndarray:
        """Return the finite values of a result over the seeds."""
        values = [r.get(key) for r in self.results]
        return np.array(
            [v for v in values if _is_number(v) and math.isfinite(v)], dtype=float
        )


def _group_by_grid_point(
    found: list[tuple[SweepPoint, dict[str, Any]]], n_keys: int
) -> list[_Group]:
    groups: dict[tuple[int, ...], _Group] = {}
    for point, record in found:
        index = point.index[:n_keys]
        if index not in groups:
            groups[index] = _Group(index=index, params=point.params, results=[])
        groups[index].results.append(record["result"])
    return list(groups.values())


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    if values.size == 0:
        return math.nan, math.nan
    std = float(np.std(values, ddof=1)) if values.size > 1 else math.nan
    return float(np.mean(values)), std


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value) if not isinstance(value, float) else repr(value)


def _write_points_csv(
    path: Path,
    keys: list[str],
    result_keys: list[str],
    found: list[tuple[SweepPoint, dict[str, Any]]],
) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*keys, "seed_index", *result_keys, "elapsed_s"])
        for point, record in found:
            writer.writerow(
                [_csv_value(point.params[k]) for k in keys]
                + [point.params["seed_index"]]
                + [_csv_value(record["result"].get(k)) for k in result_keys]
                + [_csv_value(record.get("elapsed_s"))]
            )
    return path


def _write_summary_csv(
    path: Path, keys: list[str], numeric_keys: list[str], groups: list[_Group]
) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        header = [*keys, "seeds"]
        for key in numeric_keys:
            header += [f"{key}_mean", f"{key}_std"]
        writer.writerow(header)
        for group in groups:
            row = [_csv_value(group.params[k]) for k in keys] + [len(group.results)]
            for key in numeric_keys:
                row += [_csv_value(v) for v in _mean_std(group.values(key))]
            writer.writerow(row)
    return path


def _format_mean_std(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "n/a"
    if math.isnan(std):
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {std:.2g}"


def _format_summary_table(
    keys: list[str], numeric_keys: list[str], groups: list[_Group]
) -> str:
    """Format the mean ± sample standard deviation over seeds of every numeric result
    per grid point as a markdown table (a single seed shows the mean alone)."""
    header = [*keys, "seeds", *numeric_keys]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for group in groups:
        cells = [json.dumps(group.params[k]) for k in keys] + [str(len(group.results))]
        cells += [_format_mean_std(*_mean_std(group.values(k))) for k in numeric_keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_sweep(
    path: Path,
    config: SweepConfig,
    numeric_keys: list[str],
    records: list[dict[str, Any]],
) -> Path:
    """Plot each numeric result against the first grid key, one panel per result.

    Each line is one value of the second grid key, or the only line if there is none.
    A marker is the mean over seeds and over any further grid keys, and its error bar
    the sample standard deviation. Non-numeric values of the first key are placed at
    equal spacing.

    Returns:
        The path written (PNG).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = list(config.grid)
    x_key = keys[0]
    line_key = keys[1] if len(keys) > 1 else None
    x_values = list(config.grid[x_key])
    numeric_x = all(_is_number(v) for v in x_values)
    positions = (
        [float(v) for v in x_values] if numeric_x else list(range(len(x_values)))
    )
    line_values = list(config.grid[line_key]) if line_key else [None]

    columns = min(3, len(numeric_keys))
    rows = math.ceil(len(numeric_keys) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    for panel, result_key in enumerate(numeric_keys):
        axes = figure.add_subplot(rows, columns, panel + 1)
        for line_position, line_value in enumerate(line_values):
            xs, means, stds = [], [], []
            for x_position, x in enumerate(positions):
                values = [
                    r["result"].get(result_key)
                    for r in records
                    if r["index"][0] == x_position
                    and (line_key is None or r["index"][1] == line_position)
                ]
                finite = np.array(
                    [v for v in values if _is_number(v) and math.isfinite(v)],
                    dtype=float,
                )
                if finite.size:
                    mean, std = _mean_std(finite)
                    xs.append(x)
                    means.append(mean)
                    stds.append(0.0 if math.isnan(std) else std)
            if xs:
                label = None if line_key is None else f"{line_key} = {line_value}"
                axes.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=label)
        axes.set_xlabel(x_key)
        axes.set_ylabel(result_key)
        if not numeric_x:
            axes.set_xticks(positions, [str(v) for v in x_values])
        if line_key is not None and panel == 0:
            axes.legend(fontsize="small")
    figure.suptitle(f"sweep {config.name}: mean ± std over seeds")
    figure.savefig(path, dpi=120)
    return path
