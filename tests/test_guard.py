"""`suite` and `tasks` refuse a shadowing module (a tasks.py or suite.py in the working
directory) with one line naming the file and what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python(cwd: Path, code: str) -> subprocess.CompletedProcess:
    """`python -c code` in ``cwd`` (first on sys.path, as for any `python -c`)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("shadow", "code", "package"),
    [
        ("tasks", "import suite", "tasks"),
        ("tasks", "import suite; suite.make_problem('adding')", "tasks"),
        ("tasks", "from suite.problem import make_problem", "tasks"),
        ("suite", "import tasks", "suite"),
    ],
)
def test_shadowing_module_fails_in_one_line(tmp_path, shadow, code, package):
    (tmp_path / f"{shadow}.py").write_text("def build(c):\n    pass\n")  # an invoke tasks.py
    proc = python(tmp_path, code)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: rnnbench: "), proc.stderr
    assert str(tmp_path / f"{shadow}.py") in last  # which file
    assert f"shadows the package '{package}' shipped at {ROOT / package}" in last
    assert "rename it or run from another folder" in last  # what to do
    assert "AttributeError" not in proc.stderr


def test_no_shadow_imports_fine(tmp_path):
    (tmp_path / "tasks_of_mine.py").write_text("x = 1\n")
    proc = python(tmp_path, "import suite, tasks; print(suite.make_problem('adding').dim > 0)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
