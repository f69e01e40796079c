"""The result store: ``results/<experiment>/`` on disk, and loading it into pandas.

Layout::

    results/<name>/
        experiment.json          the resolved experiment spec of the last run
        records/<key>.json       one record per file: the source of truth
        index.jsonl              consolidated index: one line per record, appended as written
        trace.f64, theta.f64     the index's traces and final parameters, raw little-endian
                                 float64 appended as written (no pickle, ``numpy.fromfile``)

Writing. A record is written to a temporary file in ``records/`` and renamed over
``<key>.json`` (``os.replace`` is atomic on POSIX and Windows), so a record file is either absent
or complete. Then its trace (``[n, 5]``) and theta are appended to the binary side files, and one
line ``{"key", "size", "kind", "status", "trace": [offset, n], "theta": [offset, P], "record"}``
(the record without trace and theta) to ``index.jsonl``, each with ``write`` on a descriptor
opened with ``O_APPEND``. Cost per record is constant (nothing is rewritten), so 10^5 records
write at the speed of the first.

Loading. Parsing 10^5 record files is slow, so the loader reads the index, whose lines are small
(traces come from the binary files in one read), and only *checks* the files: one directory scan
gives every record file and its size. A file whose size matches its latest index line is taken
from the index; a file with no matching line (written by a run killed between the rename and the
append, copied in by hand, or changed) is parsed from the file itself. A file that does not parse
(truncated JSON) is reported with a :class:`StoreWarning` and treated as missing, so the runner
runs its unit again and the atomic rename replaces it. Index lines of deleted files are ignored;
the runner compacts the index when it holds stale lines (the binary files only grow).

Encoding. Records are strict JSON: non-finite floats are stored as the strings ``"nan"``,
``"inf"`` and ``"-inf"``, and decoded back to floats on loading.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from suite.columnar import consolidated_frames, trace_frame
from suite.frames import TRACE_FIELDS, trial_frames
from suite.seeding import json_safe

INDEX = "index.jsonl"
RECORDS = "records"
EXPERIMENT = "experiment.json"
TRACE_BIN = "trace.f64"
THETA_BIN = "theta.f64"
_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=-]{0,127}$")
_LINE = re.compile(
    rb'^\{"key":"([^"]+)","size":(\d+),"kind":("[^"]*"|null),"status":("[^"]*"|null),'
)
_TMP_PREFIX = ".tmp-"
_TMP_MAX_AGE = 3600.0  # seconds; older temporary files are leftovers of a killed writer

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class StoreWarning(UserWarning):
    """A problem found in a results folder that the store works around (e.g. a corrupt file)."""


def encode_record(record: dict) -> bytes:
    """Strict JSON bytes of a record (non-finite floats as strings), compact."""
    try:
        text = json.dumps(record, separators=(",", ":"), allow_nan=False)
    except ValueError:
        text = json.dumps(json_safe(record), separators=(",", ":"), allow_nan=False)
    return text.encode()


def decode(obj: Any) -> Any:
    """Inverse of the encoding: the strings ``"nan"``, ``"inf"``, ``"-inf"`` become floats."""
    if isinstance(obj, str):
        return _NONFINITE.get(obj, obj)
    if isinstance(obj, dict):
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    return obj


@contextlib.contextmanager
def _atomic_file(path: Path, suffix: str = ".part") -> Iterator[BinaryIO]:
    """A temporary binary file next to ``path``, renamed over ``path`` when the block ends.

    ``os.replace`` makes the new content appear at once (readers see the old file or the new
    one, never a part); if the block raises, the temporary file is removed and the error
    re-raised.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _atomic_write(path: Path, data: bytes) -> None:
    with _atomic_file(path) as f:
        f.write(data)


@dataclass
class _Entry:
    size: int
    kind: str | None
    status: str | None
    offset: int = -1  # byte offset of its index line, -1 if the line is not (yet) in the index


@dataclass
class _Scan:
    """Result of reconciling the index with the record files."""

    entries: dict[str, _Entry] = field(default_factory=dict)
    unindexed: dict[str, dict] = field(default_factory=dict)  # key -> record parsed from file
    corrupt: list[str] = field(default_factory=list)
    stale_lines: int = 0


class Store:
    """One results folder. Only the runner's client process writes; any process may read.

    >>> import tempfile
    >>> s = Store(tempfile.mkdtemp())
    >>> s.write({"key": "k1", "kind": "demo", "experiment": "x", "v": float("inf")})
    >>> sorted(s.keys()), s.records()[0]["v"]
    (['k1'], inf)
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.records_dir = self.directory / RECORDS
        self.index_path = self.directory / INDEX
        self._index_fd: int | None = None
        self._bin_fds: dict[str, int] = {}
        self._scan: _Scan | None = None

    # ------------------------------------------------------------------ experiment
    def write_experiment(self, spec: dict) -> None:
        """Write ``experiment.json`` (atomically), creating the folder."""
        self.records_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(json_safe(spec), indent=2, sort_keys=False, allow_nan=False) + "\n"
        _atomic_write(self.directory / EXPERIMENT, text.encode())

    def experiment(self) -> dict:
        """The stored experiment spec (``{}`` when there is none)."""
        path = self.directory / EXPERIMENT
        if not path.exists():
            return {}
        try:
            return decode(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            warnings.warn(f"{path}: unreadable ({exc}); ignored", StoreWarning, stacklevel=2)
            return {}

    # ----------------------------------------------------------------------- write
    def write(self, record: dict) -> None:
        """Store one record: atomic file, then its index line (and binary trace / theta)."""
        key = record.get("key")
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(
                f"record key must be a string of letters, digits, '_', '.', '=', '-' "
                f"(at most 128, not starting with '.' or '-'), got {key!r}"
            )
        data = encode_record(record)
        self.records_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.records_dir / f"{key}.json", data)
        self._index(record, len(data))

    def _index(self, record: dict, size: int) -> None:
        """Append the index line of a record whose file (of ``size`` bytes) is in place."""
        key = record["key"]
        light, trace, theta = _split(record)
        refs: dict[str, list[int] | None] = {"trace": None, "theta": None}
        if trace is not None:
            refs["trace"] = [self._append_bin(TRACE_BIN, trace), int(trace.shape[0])]
        if theta is not None:
            refs["theta"] = [self._append_bin(THETA_BIN, theta), int(theta.size)]
        kind, status = record.get("kind"), record.get("status")
        kind = kind if isinstance(kind, str) else None
        status = status if isinstance(status, str) else None
        head = json.dumps(
            {"key": key, "size": size, "kind": kind, "status": status, **refs},
            separators=(",", ":"),
        )
        line = head[:-1].encode() + b',"record":' + encode_record(light) + b"}\n"
        offset = self._append(line)
        if self._scan is not None:
            self._scan.unindexed.pop(key, None)
            if key in self._scan.corrupt:
                self._scan.corrupt.remove(key)
            self._scan.entries[key] = _Entry(size, kind, status, offset)

    def _open_append(self, path: Path, align: int) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags, 0o644)
        size = os.fstat(fd).st_size
        if align == 0 and size and _last_byte(path) != b"\n":
            _write_all(fd, b"\n")  # a line cut by a killed writer: end it, it will not parse
        elif align and size % align:
            _write_all(fd, bytes(align - size % align))  # a cut block: realign
        return fd

    def _append(self, line: bytes) -> int:
        if self._index_fd is None:
            self._index_fd = self._open_append(self.index_path, 0)
        offset = os.fstat(self._index_fd).st_size
        _write_all(self._index_fd, line)
        return offset

    def _append_bin(self, name: str, values: np.ndarray) -> int:
        """Append float64 values to a binary side file; return their offset (in values)."""
        fd = self._bin_fds.get(name)
        if fd is None:
            fd = self._bin_fds[name] = self._open_append(self.directory / name, 8)
        offset = os.fstat(fd).st_size // 8
        _write_all(fd, np.ascontiguousarray(values, dtype="<f8").tobytes())
        return offset

    def close(self) -> None:
        """Close the descriptors (reopened on the next write)."""
        if self._index_fd is not None:
            os.close(self._index_fd)
            self._index_fd = None
        for fd in self._bin_fds.values():
            os.close(fd)
        self._bin_fds.clear()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------ scan
    def _files(self) -> dict[str, int]:
        files: dict[str, int] = {}
        self._old_tmp: list[Path] = []
        if not self.records_dir.is_dir():
            return files
        now = time.time()
        with os.scandir(self.records_dir) as it:
            for entry in it:
                name = entry.name
                try:
                    if name.startswith(_TMP_PREFIX):
                        if now - entry.stat().st_mtime > _TMP_MAX_AGE:
                            self._old_tmp.append(Path(entry.path))
                    elif name.endswith(".json"):
                        files[name[:-5]] = entry.stat().st_size
                except OSError:
                    continue
        return files

    def _index_lines(self) -> Iterator[tuple[int, bytes]]:
        if not self.index_path.exists():
            return
        with open(self.index_path, "rb") as f:
            offset = 0
            for line in f:
                yield offset, line
                offset += len(line)

    def scan(self, warn: bool = True) -> _Scan:
        """Reconcile index and files (see the module docstring); cached until the next write."""
        files = self._files()
        latest: dict[str, _Entry] = {}
        lines = 0
        for offset, line in self._index_lines():
            lines += 1
            m = _LINE.match(line)
            if m is None or not line.endswith(b"}\n"):
                continue
            key = m.group(1).decode()
            size = int(m.group(2))
            if files.get(key) != size:
                continue
            kind = None if m.group(3) == b"null" else m.group(3)[1:-1].decode()
            status = None if m.group(4) == b"null" else m.group(4)[1:-1].decode()
            latest[key] = _Entry(size, kind, status, offset)
        scan = _Scan(stale_lines=lines - len(latest))
        for key, size in files.items():
            entry = latest.get(key)
            if entry is not None:
                scan.entries[key] = entry
                continue
            path = self.records_dir / f"{key}.json"
            try:
                record = json.loads(path.read_bytes())
                if not isinstance(record, dict) or record.get("key") != key:
                    raise ValueError("not a record of this key")
            except (OSError, ValueError) as exc:
                scan.corrupt.append(key)
                if warn:
                    warnings.warn(
                        f"{path}: corrupt record ({type(exc).__name__}: {exc}); it is ignored "
                        "and its unit will be run again",
                        StoreWarning,
                        stacklevel=2,
                    )
                continue
            kind, status = record.get("kind"), record.get("status")
            scan.entries[key] = _Entry(
                size,
                kind if isinstance(kind, str) else None,
                status if isinstance(status, str) else None,
            )
            scan.unindexed[key] = record
        self._scan = scan
        return scan

    def sync(self) -> _Scan:
        """Scan, index the records that lack an index line, compact a stale index, tidy temps.

        Used by the runner before a run (so it needs write access); readers use :meth:`scan`.
        """
        if not self.index_path.exists():
            for name in (TRACE_BIN, THETA_BIN):  # nothing refers to them any more
                with contextlib.suppress(OSError):
                    (self.directory / name).unlink()
        scan = self.scan()
        for key, record in list(scan.unindexed.items()):
            self._index(record, scan.entries[key].size)  # the file stays as it is
        scan.unindexed.clear()
        if scan.stale_lines:
            self._compact(scan)
        for path in self._old_tmp:
            try:
                path.unlink()
            except OSError:
                pass
        return scan

    def _compact(self, scan: _Scan) -> None:
        """Rewrite the index with exactly one line per valid record (atomic rename)."""
        self.close()
        keep = {e.offset for e in scan.entries.values() if e.offset >= 0}
        moved: dict[int, int] = {}
        with _atomic_file(self.index_path, suffix=".jsonl") as out:
            new_offset = 0
            for offset, line in self._index_lines():
                if offset in keep:
                    moved[offset] = new_offset
                    out.write(line)
                    new_offset += len(line)
        for entry in scan.entries.values():
            entry.offset = moved.get(entry.offset, -1)
        scan.stale_lines = 0

    # ------------------------------------------------------------------------ read
    def keys(self) -> set[str]:
        """Keys of the valid stored records."""
        scan = self._scan or self.scan()
        return set(scan.entries)

    def statuses(self) -> dict[str, str | None]:
        """``key -> status`` of the valid stored records, without parsing them."""
        scan = self._scan or self.scan()
        return {k: e.status for k, e in scan.entries.items()}

    def _parts(
        self, kind: str | None, keys: set[str] | None = None
    ) -> Iterator[tuple[dict, dict | None, np.ndarray | None]]:
        """``(record, trace, theta)`` of the valid records of ``kind`` (only ``keys`` if
        given); ``record`` is raw (non-finite floats still encoded) and lacks trace and theta
        when they are given apart (``trace`` as ``{field: float array}``). Order: index lines
        in file order, then records without a usable index line in scan order."""
        scan = self._scan or self.scan()
        wanted = {
            e.offset: k
            for k, e in scan.entries.items()
            if e.offset >= 0 and (kind is None or e.kind == kind) and (keys is None or k in keys)
        }
        bins: dict[str, np.ndarray] = {}

        def block(name: str, ref: Any, width: int) -> np.ndarray | None:
            if ref is None:
                return None
            if name not in bins:
                path = self.directory / name
                bins[name] = np.fromfile(path, dtype="<f8") if path.exists() else np.empty(0)
            start, n = int(ref[0]), int(ref[1])
            values = bins[name][start : start + n * width]
            if values.size != n * width:
                raise ValueError(f"{name} is shorter than the index says")
            return values.reshape(n, width) if width > 1 else values

        seen: set[str] = set()
        if wanted:
            for offset, line in self._index_lines():
                key = wanted.get(offset)
                if key is None:
                    continue
                try:
                    entry = json.loads(line)
                    trace = block(TRACE_BIN, entry.get("trace"), len(TRACE_FIELDS))
                    theta = block(THETA_BIN, entry.get("theta"), 1)
                    record = entry["record"]
                except (ValueError, KeyError, TypeError):
                    continue  # read from its file below
                seen.add(key)
                columns = None if trace is None else dict(zip(TRACE_FIELDS, trace.T, strict=True))
                yield record, columns, theta
        for key, entry in scan.entries.items():
            if key in seen or (kind is not None and entry.kind != kind):
                continue
            if keys is not None and key not in keys:
                continue
            record = scan.unindexed.get(key)
            if record is None:
                try:
                    record = json.loads((self.records_dir / f"{key}.json").read_bytes())
                except (OSError, ValueError):
                    continue
            yield record, None, None

    def records(self, kind: str | None = None) -> list[dict]:
        """The valid stored records of ``kind`` (all kinds if None), complete and decoded."""
        out = []
        for record, trace, theta in self._parts(kind):
            record = decode(record)
            if trace is not None:
                record["trace"] = {
                    name: (values.astype(np.int64) if name == "evaluations" else values).tolist()
                    for name, values in trace.items()
                }
            if theta is not None:
                record["theta"] = theta.tolist()
            out.append(record)
        return out


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _split(record: dict) -> tuple[dict, np.ndarray | None, np.ndarray | None]:
    """A record without its trace and theta, and those as float64 arrays (``[n, 5]`` and
    ``[P]``) when they have the shape of a trial's; else the record unchanged and None."""
    trace = record.get("trace")
    theta = record.get("theta")
    light = dict(record)
    block = values = None
    if isinstance(trace, dict) and tuple(trace) == TRACE_FIELDS:
        try:
            columns = [np.asarray(trace[name], dtype=np.float64) for name in TRACE_FIELDS]
            if all(c.ndim == 1 and c.shape == columns[0].shape for c in columns):
                block = np.stack(columns, axis=1)
                del light["trace"]
        except (TypeError, ValueError):
            block = None
    if isinstance(theta, list):
        try:
            values = np.asarray(theta, dtype=np.float64)
            if values.ndim == 1:
                del light["theta"]
            else:
                values = None
        except (TypeError, ValueError):
            values = None
    return light, block, values


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused: a load allocates ~10^5 small objects per 10^5
    records that all survive, and the collector's repeated passes over them cost a quarter of
    the load (measured: 100,000 records, 2.2-2.4 s -> 1.7 s) and free nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Results:
    """A results folder loaded for analysis (read-only; nothing is written).

    ``trials`` has one row per trial record and ``trace`` one row per checkpoint, with the
    columns of ``docs/architecture.md``; ``records(kind)`` and ``frame(kind)`` give the records
    of other kinds; ``experiment`` is the stored experiment spec.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise ValueError(f"no results folder at {self.path}")
        self.store = Store(self.path)
        self.experiment: dict = self.store.experiment()
        with _no_gc():
            self.store.scan()
        self._records: dict[str | None, list[dict]] = {}

    @cached_property
    def _columns(self) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray]]:
        with _no_gc():
            scan = self.store._scan or self.store.scan()
            entries = {k: (e.offset, e.size) for k, e in scan.entries.items() if e.kind == "trial"}
            return consolidated_frames(
                self.path, entries, lambda keys: trial_frames(self.store._parts("trial", keys))
            )

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial (columns :data:`suite.frames.TRIAL_COLUMNS`)."""
        return self._columns[0]

    @cached_property
    def trace(self) -> pd.DataFrame:
        """One row per checkpoint of every trial (columns :data:`suite.frames.TRACE_COLUMNS`)."""
        return trace_frame(*self._columns)

    def records(self, kind: str | None = None) -> list[dict]:
        """The records of ``kind`` (all if None), decoded (non-finite floats restored)."""
        if kind not in self._records:
            self._records[kind] = self.store.records(kind)
        return self._records[kind]

    def frame(self, kind: str) -> pd.DataFrame:
        """A flat frame of the records of ``kind`` (nested fields as dotted columns)."""
        if kind == "trial":
            return self.trials
        records = self.records(kind)
        return pd.json_normalize(records) if records else pd.DataFrame()

    def __len__(self) -> int:
        return len(self.store.keys())

    def __repr__(self) -> str:
        return f"Results({str(self.path)!r}, records={len(self)})"


def load_results(path: str | os.PathLike[str]) -> Results:
    """Load a results folder (e.g. ``results/speed``); see :class:`Results`.

    A corrupt record file is reported with a :class:`StoreWarning` and left out.
    """
    return Results(path)
