"""Execute the notebooks in place and save their outputs (so they show on a code-hosting page).

The committed outputs come from the committed results: ``compare_optimizers.ipynb`` on
``results/speed`` and ``claims.ipynb`` on the full profile (``results/claims`` with
``results/{speed,truncation,optima,landscape}``). Regenerate them after the results change::

    python notebooks/execute.py            # both notebooks, from the repository root
    python notebooks/execute.py claims     # one of them

Needs the ``notebooks`` extra (``pip install -e ".[notebooks]"``). Each notebook runs with its
folder as working directory, as Jupyter runs it; cell timings are not recorded, so a rerun on
unchanged results changes only what the results change.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbclient
import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

NOTEBOOKS: dict[str, dict[str, str]] = {
    "compare_optimizers": {"RNNBENCH_RESULTS": "../results/speed"},
    "claims": {"RNNBENCH_RESULTS": "../results", "RNNBENCH_PROFILE": "full"},
}
"""Each notebook and the environment it runs in (paths relative to notebooks/)."""


def execute(name: str, env: dict[str, str], timeout: int = 600) -> Path:
    """Run notebook ``name`` with ``env`` and write it back with its outputs."""
    path = HERE / f"{name}.ipynb"
    saved = {k: os.environ.get(k) for k in [*env, "PYTHONPATH", "MPLBACKEND"]}
    os.environ.update(env)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        nb = nbformat.read(path, as_version=4)
        client = nbclient.NotebookClient(
            nb,
            kernel_name="python3",
            timeout=timeout,
            record_timing=False,
            resources={"metadata": {"path": str(HERE)}},
        )
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NOTEBOOK", help=", ".join(NOTEBOOKS))
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in NOTEBOOKS]
    if unknown:
        known = ", ".join(NOTEBOOKS)
        parser.error(f"unknown notebook(s) {', '.join(unknown)}; choose from {known}")
    for name in args.names or list(NOTEBOOKS):
        print(f"{execute(name, NOTEBOOKS[name]).relative_to(ROOT)}: executed, outputs saved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
