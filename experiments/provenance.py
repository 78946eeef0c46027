"""Provenance of a run: versions, platform, seed, command and source commit."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "photonic-backprop",
    "numpy",
    "scipy",
    "simpy",
    "matplotlib",
    "scikit-learn",
    "tqdm",
    "numba",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a run depends on ("not installed" if absent)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> dict[str, Any]:
    """Commit of the source tree this package was imported from, and whether it has edits.

    Returns ``{"commit": None, ...}`` when the source is not a git checkout (an installed
    wheel) or git is not available.
    """
    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def collect_provenance(seed: int, config_path: str | None) -> dict[str, Any]:
    """Everything needed to trace a results folder back to its code, inputs and machine."""
    return {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": seed,
        "config_file": config_path,
        "command": sys.argv,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_commit(),
    }
