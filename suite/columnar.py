"""The consolidated columnar frames of a results folder: ``frames.npz``, read in one go.

Building :attr:`suite.store.Results.trials` and ``trace`` from 10^5 index lines (parse each
JSON line, derive each row) took 10-13 s; reading the same frames column by column from one
file takes a fraction of a second. This module keeps that file next to the index:

``frames.npz`` (an uncompressed ``numpy.savez`` archive, read with ``allow_pickle=False``: plain
arrays only, no pickle) holds

* ``meta``: UTF-8 JSON: format version, the trials columns in order, for each its encoding
  (``"array"``: the column as stored; ``"dict"``: an object column of strings / None as int32
  ``codes`` into a JSON list ``values``);
* ``trials.<column>``: the arrays (``codes`` for dictionary-encoded columns);
* ``trace.<field>``: the trace fields (``fe, seconds, evaluations, train_loss, test_loss``),
  concatenated in row order, and ``lengths`` (checkpoints per trial);
* ``size``, ``offset``: each row's record file size and index line offset, the identity of the
  record the row was built from.

Validity. A row is reused only when its key is still a valid trial record of the folder with the
same file size and the same index line offset (:meth:`suite.store.Store.scan`); other records
are parsed as before (:func:`suite.frames.trial_frames`) and the file rewritten (atomic rename;
a folder that cannot be written is read without it). So a resumed run, a deleted or replaced
record or a hand-copied file give exactly the frames the parse gives. Rows whose ``family`` is
empty (older records without it, a plugin not loaded) are filled in again from the optimizer
registry of the reading process, as :func:`~suite.frames.trial_frames` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from suite.frames import TRACE_COLUMNS, TRACE_FIELDS, TRIAL_COLUMNS
from suite.optimizers import optimizer_info, optimizer_names

FRAMES = "frames.npz"
VERSION = 1


def _encode(name: str, col: pd.Series, out: dict[str, np.ndarray]) -> dict | None:
    """Put column ``name`` into ``out``; return its meta entry (None: cannot be stored)."""
    array = col.to_numpy()
    if array.dtype != object:  # numbers and booleans: the array itself
        out[f"trials.{name}"] = array
        return {"name": name, "enc": "array"}
    values = [None if v is None or (isinstance(v, float) and v != v) else v for v in array]
    if not all(v is None or isinstance(v, str) for v in values):
        return None
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    table = [None if v is None else str(v) for v in uniques.tolist()]
    codes = np.where(codes < 0, len(table), codes).astype(np.int32)
    out[f"trials.{name}"] = codes
    return {"name": name, "enc": "dict", "values": [*table, None], "dtype": str(col.dtype)}


def write_frames(
    folder: Path,
    trials: pd.DataFrame,
    lengths: np.ndarray,
    fields: dict[str, np.ndarray],
    size: np.ndarray,
    offset: np.ndarray,
) -> bool:
    """Write ``frames.npz`` for these frames (rows identified by ``size`` and ``offset``, the
    trace as ``lengths`` and ``fields``); False when a column cannot be stored or the folder
    cannot be written."""
    arrays: dict[str, np.ndarray] = {}
    columns = []
    for name in trials.columns:
        entry = _encode(name, trials[name], arrays)
        if entry is None:
            return False
        columns.append(entry)
    arrays["lengths"] = np.asarray(lengths, dtype=np.int64)
    for name in TRACE_FIELDS:
        arrays[f"trace.{name}"] = np.asarray(fields[name])
    arrays["size"] = np.asarray(size, dtype=np.int64)
    arrays["offset"] = np.asarray(offset, dtype=np.int64)
    meta = {"version": VERSION, "columns": columns}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
        try:
            if any(a.dtype == object for a in arrays.values()):
                raise ValueError("object arrays would be pickled")
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]
            os.replace(tmp, folder / FRAMES)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except (OSError, ValueError):
        return False
    return True


def read_frames(folder: Path) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray]] | None:
    """``(trials, lengths, trace fields)`` and the rows' ``size``/``offset`` (as trials columns
    ``_size``, ``_offset``) from ``frames.npz``; None when absent or unreadable."""
    path = folder / FRAMES
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            if meta.get("version") != VERSION:
                return None
            data: dict[str, Any] = {}
            for entry in meta["columns"]:
                values = z[f"trials.{entry['name']}"]
                if entry["enc"] == "dict":  # object or pandas' string dtype, as written
                    values = pd.Series(
                        np.asarray(entry["values"], dtype=object)[values], dtype=entry["dtype"]
                    )
                data[entry["name"]] = values
            data["_size"], data["_offset"] = z["size"], z["offset"]
            lengths = z["lengths"]
            fields = {name: z[f"trace.{name}"] for name in TRACE_FIELDS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    if [c["name"] for c in meta["columns"]] != list(TRIAL_COLUMNS):
        return None
    return pd.DataFrame(data), lengths, fields


def trace_frame(trials: pd.DataFrame, lengths: np.ndarray, fields: dict) -> pd.DataFrame:
    """The trace frame of ``trials`` whose checkpoints are ``fields`` (``lengths`` per trial)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    trace = pd.DataFrame(
        {
            "key": np.repeat(trials["key"].to_numpy(dtype=object), lengths),
            "problem": np.repeat(trials["problem"].to_numpy(dtype=object), lengths),
            "optimizer": np.repeat(trials["optimizer"].to_numpy(dtype=object), lengths),
            "seed": np.repeat(trials["seed"].to_numpy(dtype=np.int64), lengths),
            **{name: fields[name] for name in TRACE_FIELDS},
        },
        columns=list(TRACE_COLUMNS),
    )
    trace["evaluations"] = trace["evaluations"].astype(np.int64)
    for name in ("key", "problem", "optimizer"):
        trace[name] = trace[name].astype(trials[name].dtype)
    return trace


def select_rows(lengths: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Indices of the trace rows of trial ``rows`` (in that order), given checkpoints per trial
    ``lengths``."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    n = lengths[rows]
    if not n.sum():
        return np.empty(0, dtype=np.int64)
    first = np.repeat(starts[rows] - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
    return first + np.arange(n.sum())


def fill_family(trials: pd.DataFrame) -> None:
    """Fill empty ``family`` / ``tags`` from the optimizer registry of this process (in place),
    as :func:`suite.frames.trial_frames` does for records that do not carry them."""
    empty = trials["family"] == ""
    if not empty.any():
        return
    known = set(optimizer_names())
    for name in trials.loc[empty, "optimizer_name"].unique():
        if name in known:
            info = optimizer_info(name)
            rows = empty & (trials["optimizer_name"] == name)
            trials.loc[rows, "family"] = str(info["family"])
            trials.loc[rows, "tags"] = ",".join(sorted(info["tags"]))


def consolidated_frames(
    folder: Path,
    entries: dict[str, tuple[int, int]],
    parse: Callable[[set[str]], tuple[pd.DataFrame, pd.DataFrame]],
) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray]]:
    """The trials frame of the folder's trial records ``entries`` (``key -> (index offset, file
    size)`` in scan order, offset -1 without an index line) with its trace as checkpoints per
    trial and field arrays (:func:`trace_frame` makes the frame): rows of unchanged records from
    ``frames.npz``, the others from ``parse(keys)`` (the frames of those records), the file
    rewritten when anything changed. Same frames as :func:`suite.frames.trial_frames` over
    every record, in the same order."""
    cached = read_frames(folder)
    parts: list[tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray]]] = []
    n_reused = 0
    missing = set(entries)
    if cached is not None:
        old, lengths, fields = cached
        ok = np.fromiter(
            (
                o >= 0 and entries.get(k) == (o, z)
                for k, z, o in zip(
                    old["key"], old["_size"].tolist(), old["_offset"].tolist(), strict=True
                )
            ),
            dtype=bool,
            count=len(old),
        )
        old = old.drop(columns=["_size", "_offset"])
        n_reused = int(ok.sum())
        if n_reused == len(old):
            parts.append((old, lengths, fields))
        elif n_reused:
            rows = np.flatnonzero(ok)
            take = select_rows(lengths, rows)
            kept = old.iloc[rows].reset_index(drop=True)
            parts.append((kept, lengths[rows], {n: v[take] for n, v in fields.items()}))
        if n_reused:
            missing.difference_update(parts[0][0]["key"].tolist())
    if missing or not parts:
        new, new_trace = parse(missing)
        if not parts or len(new):
            lengths = new_trace.groupby("key", sort=False).size().reindex(new["key"]).to_numpy()
            lengths = np.nan_to_num(lengths.astype(float)).astype(np.int64)
            parts.append((new, lengths, {n: new_trace[n].to_numpy() for n in TRACE_FIELDS}))
    if len(parts) == 1:
        trials, lengths, fields = parts[0]
    else:
        trials = pd.concat([p[0] for p in parts], ignore_index=True)
        lengths = np.concatenate([p[1] for p in parts]).astype(np.int64)
        fields = {n: np.concatenate([p[2][n] for p in parts]) for n in TRACE_FIELDS}
    # the order of a full parse: index offset order, then records without an index line
    keys = trials["key"].tolist()
    offset = np.fromiter((entries[k][0] for k in keys), dtype=np.int64, count=len(keys))
    if len(keys) and (np.any(offset < 0) or np.any(np.diff(offset) < 0)):
        position = {k: i for i, k in enumerate(entries)}
        second = np.fromiter((position[k] for k in keys), dtype=np.int64, count=len(keys))
        order = np.lexsort((np.where(offset < 0, second, offset), offset < 0))
        take = select_rows(lengths, order)
        trials = trials.iloc[order].reset_index(drop=True)
        fields = {n: v[take] for n, v in fields.items()}
        lengths, offset = lengths[order], offset[order]
    for name in ("fwd_steps", "bwd_steps", "loss_calls", "grad_calls", "evaluations", "nonfinite"):
        if len(trials) and trials[name].dtype != np.int64 and trials[name].notna().all():
            trials[name] = trials[name].astype(np.int64)
    if len(trials) and (missing or cached is None or n_reused != len(cached[0])):
        size = np.fromiter((entries[k][1] for k in trials["key"]), dtype=np.int64)
        write_frames(folder, trials, lengths, fields, size, offset)
    fill_family(trials)
    return trials, lengths, fields
