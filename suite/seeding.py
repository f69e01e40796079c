"""Seed streams of a trial, derived with ``numpy.random.SeedSequence``.

One experiment seed feeds every trial. From it, three independent streams are derived per trial:

* the **data** stream, keyed by (experiment seed, task spec, seed index);
* the **init** stream (the start ``x0``), keyed by (experiment seed, task spec, model spec,
  seed index);
* the **optimizer** stream, keyed by the whole trial content (which includes the optimizer).

Neither the data nor the init stream depends on the optimizer, so seed index ``i`` gives every
optimizer the same training data and the same initial point: comparisons are paired (the
common-random-numbers design of simulation studies). The data stream does not depend on the
model either, so an Elman network and its TDNN twin see the same sequences.

A spec (a JSON-serialisable dict) is turned into ``SeedSequence`` words through the SHA-256 digest
of its canonical JSON (sorted keys, no whitespace), never through Python's ``hash()`` (salted per
process), so streams are identical across processes, machines and Python versions::

    SeedSequence(entropy=experiment_seed,
                 spawn_key=(STREAM_TAG, *sha256_words(spec), seed_index))

Reference: O'Neill (2015), "PCG: A family of simple fast space-efficient statistically good
algorithms for random number generation" and NumPy's ``SeedSequence`` documentation.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DATA, INIT, OPTIMIZER = 0, 1, 2
"""Tags that separate the three streams (first word of the ``spawn_key``)."""


def canonical_json(obj: Any) -> str:
    """The canonical JSON text of ``obj``: sorted keys, no whitespace, non-finite floats as strings.

    Two specs that are equal as data give the same text, whatever the key order.

    >>> canonical_json({"b": 1, "a": [1.0, float("inf")]})
    '{"a":[1.0,"inf"],"b":1}'
    """
    return json.dumps(json_safe(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats as the strings ``"nan"``, ``"inf"``, ``"-inf"`` (NumPy
    scalars as Python numbers, tuples as lists): valid strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic | np.ndarray):
        return json_safe(obj.tolist())
    return obj


def content_hash(obj: Any, length: int = 16) -> str:
    """First ``length`` hex digits of the SHA-256 digest of :func:`canonical_json` of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def spec_words(obj: Any, n: int = 4) -> tuple[int, ...]:
    """``n`` 32-bit words from the SHA-256 digest of ``obj``'s canonical JSON (stable)."""
    digest = hashlib.sha256(canonical_json(obj).encode()).digest()
    return tuple(int.from_bytes(digest[4 * i : 4 * i + 4], "little") for i in range(n))


def _check_seed(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def data_stream(experiment_seed: int, task_spec: dict, seed_index: int) -> np.random.SeedSequence:
    """The data stream of seed index ``seed_index`` on a task (independent of model, optimizer)."""
    es = _check_seed("experiment seed", experiment_seed)
    si = _check_seed("seed index", seed_index)
    return np.random.SeedSequence(es, spawn_key=(DATA, *spec_words(task_spec), si))


def init_stream(
    experiment_seed: int, task_spec: dict, model_spec: dict, seed_index: int
) -> np.random.SeedSequence:
    """The initial-point stream of seed index ``seed_index`` (independent of the optimizer)."""
    es = _check_seed("experiment seed", experiment_seed)
    si = _check_seed("seed index", seed_index)
    words = spec_words({"task": task_spec, "model": model_spec})
    return np.random.SeedSequence(es, spawn_key=(INIT, *words, si))


def optimizer_stream(experiment_seed: int, trial_content: dict) -> np.random.SeedSequence:
    """The optimizer's stream, keyed by the whole trial content (optimizer spec included)."""
    es = _check_seed("experiment seed", experiment_seed)
    return np.random.SeedSequence(es, spawn_key=(OPTIMIZER, *spec_words(trial_content)))


@dataclass(frozen=True)
class TrialStreams:
    """The three seed sequences of one trial."""

    data: np.random.SeedSequence
    init: np.random.SeedSequence
    optimizer: np.random.SeedSequence


def trial_streams(
    experiment_seed: int,
    task_spec: dict,
    model_spec: dict,
    seed_index: int,
    trial_content: dict,
) -> TrialStreams:
    """All three streams of a trial; see the module docstring for what each is keyed by.

    >>> a = trial_streams(0, {"task": "adding"}, {"model": "elman"}, 3, {"optimizer": "adam"})
    >>> b = trial_streams(0, {"task": "adding"}, {"model": "elman"}, 3, {"optimizer": "sgd"})
    >>> a.data.generate_state(2).tolist() == b.data.generate_state(2).tolist()
    True
    >>> a.optimizer.generate_state(2).tolist() == b.optimizer.generate_state(2).tolist()
    False
    """
    return TrialStreams(
        data=data_stream(experiment_seed, task_spec, seed_index),
        init=init_stream(experiment_seed, task_spec, model_spec, seed_index),
        optimizer=optimizer_stream(experiment_seed, trial_content),
    )


def initial_points(
    experiment_seed: int, task_spec: dict, model: Any, seeds: Sequence[int]
) -> np.ndarray:
    """Starts ``theta0[len(seeds), P]``: start ``i`` from the init stream of seed index ``i``
    (the same ``x0`` as seed index ``i`` of a compare trial on this task and model)."""
    rows = [
        np.asarray(
            model.init(
                np.random.default_rng(init_stream(experiment_seed, task_spec, model.spec(), int(s)))
            ),
            dtype=np.float64,
        )
        for s in seeds
    ]
    return np.stack(rows) if rows else np.zeros((0, model.dim))
