"""What produced a record: software versions, git commit, machine (computed once per process).

Stored in every record so that a number in a report can be traced to the code and machine that
made it. The host name is deliberately left out (records are committed and shared).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def rnnbench_version() -> str:
    """The installed distribution's version, else ``suite.__version__``."""
    version = _version("rnnbench")
    if version is None:
        import suite

        version = str(getattr(suite, "__version__", "unknown"))
    return version


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the checkout holding ``path`` (default: this package), plus ``+dirty``.

    None when the code does not live in a git checkout, git is missing or the repository has no
    commit yet.
    """
    here = (path or Path(__file__)).resolve().parent
    if not any((p / ".git").exists() for p in (here, *here.parents)):
        return None
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return commit + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


@functools.cache
def provenance() -> dict[str, Any]:
    """Versions and machine facts, computed once per process (plain JSON)."""
    return {
        "rnnbench": rnnbench_version(),
        "git": git_commit(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "cma": _version("cma"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "implementation": sys.implementation.name,
    }
