"""What a batched training run does: a registered gradient rule plus the study's caps.

A :class:`Method` names a registered gradient optimizer (``sgd``, ``momentum``, ``adam`` or a
plugin subclassing :class:`~suite.optimizers.gradient.GradientDescent`) with its
hyper-parameters in the registry's words (``lr``, ``momentum``, ``nesterov``, ``b1``, ``b2``,
``eps``, ``clip``), validated by the optimizer's own checks; its update rule is the
optimizer's :meth:`~suite.optimizers.gradient.GradientDescent.transform`, the very rule the
registered optimizer steps with. The other keys are the trainer's
(:func:`suite.optimizers.batched.train_batch`), declared as :class:`~suite.registry.ParamSpec`:
``batch_size`` (None: full batch), ``max_steps``, ``gtol_rel``, ``check_every``, ``polish``,
``polish_steps``, ``memory``, ``newton_steps``, ``newton_max_params``, and a display ``label``.

Stored form (:meth:`Method.spec`). Records of multi-start studies store the method in the layout
that predates the registry's names, so that stored studies keep their keys: the momentum
coefficient under ``beta`` and the constants ``lr, beta, b1, b2, eps, clip`` whatever the rule
(defaults where the rule has none); ``nesterov`` and plugin hyper-parameters only when they
differ from the default. :meth:`Method.from_spec` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from suite.optimizers.gradient import GradientDescent
from suite.optimizers.registry import get_optimizer, optimizer_class, optimizer_names
from suite.optimizers.updates import Transform
from suite.registry import ParamSpec, check_params, describe_params

LOOP_FIELDS: tuple[str, ...] = ("batch_size", "max_steps", "gtol", "truncate")
"""Fields of a registered gradient optimizer that are its loop's, not its rule's: the trainer
has its own ``batch_size`` and ``max_steps``, stops on ``gtol_rel``, and uses no truncation."""

TRAINER: dict[str, tuple[ParamSpec, Any]] = {
    "max_steps": (ParamSpec(int, low=0, doc="cap of the method phase"), 5000),
    "gtol_rel": (ParamSpec(float, low=0, doc="converged at ||g|| <= gtol_rel * baseline"), 1e-5),
    "check_every": (ParamSpec(int, low=1, doc="steps between full-gradient checks"), 50),
    "polish": (ParamSpec(str, choices=("lbfgs", "none"), doc="polishing phase"), "lbfgs"),
    "polish_steps": (ParamSpec(int, low=0, doc="cap of L-BFGS iterations"), 3000),
    "memory": (ParamSpec(int, low=1, doc="L-BFGS pairs kept"), 10),
    "newton_steps": (ParamSpec(int, low=0, doc="cap of Newton iterations"), 10),
    "newton_max_params": (ParamSpec(int, low=0, doc="Newton only up to this many"), 300),
}
"""The trainer's parameters with their allowed values and defaults."""

OPTIONAL: dict[str, tuple[ParamSpec, Any]] = {
    "batch_size": (ParamSpec(int, low=1, doc="minibatch size; absent: full batch"), None),
    "label": (ParamSpec(str, doc="display label; absent: name and non-default keys"), None),
}
"""Trainer parameters that may be absent (None)."""

STORED_RULE_KEYS: tuple[tuple[str, str, Any], ...] = (
    ("lr", "lr", 0.01),
    ("beta", "momentum", 0.9),
    ("b1", "b1", 0.9),
    ("b2", "b2", 0.999),
    ("eps", "eps", 1e-8),
    ("clip", "clip", None),
)
"""``(stored key, hyper-parameter, stored default)`` of the legacy stored layout."""


def rule_names() -> list[str]:
    """Registered optimizers with a batched update rule (subclasses of GradientDescent)."""
    return [n for n in optimizer_names() if issubclass(optimizer_class(n), GradientDescent)]


def rule_defaults(name: str) -> dict[str, Any]:
    """Hyper-parameters (with defaults) of the rule of the registered optimizer ``name``."""
    if name not in rule_names():
        raise ValueError(
            f"unknown method {name!r}: not a registered gradient optimizer; allowed methods: "
            f"{', '.join(rule_names())}"
        )
    opt = optimizer_class(name)()
    return {k: v for k, v in opt.params().items() if k not in LOOP_FIELDS}


@dataclass(frozen=True)
class Method:
    """A batched training method: a registered gradient rule and the trainer's caps.

    ``name`` the registered optimizer; ``params`` its rule's hyper-parameters, resolved (all of
    them, defaults filled in, in the optimizer's field order); the other fields as in
    :data:`TRAINER` and :data:`OPTIONAL`. Build one with :meth:`make` or :meth:`from_dict`.
    """

    name: str
    params: dict = field(default_factory=dict)
    batch_size: int | None = None
    max_steps: int = 5000
    gtol_rel: float = 1e-5
    check_every: int = 50
    polish: str = "lbfgs"
    polish_steps: int = 3000
    memory: int = 10
    newton_steps: int = 10
    newton_max_params: int = 300
    label: str | None = None

    @classmethod
    def make(cls, name: str, **params: Any) -> Method:
        """``Method.make("adam", lr=0.02, max_steps=300)``: see :meth:`from_dict`."""
        return cls.from_dict({"name": name, **params})

    @classmethod
    def from_dict(cls, d: dict) -> Method:
        """A Method from ``{"name": ..., **hyper-parameters, **trainer parameters}``.

        Unknown names or keys raise a ValueError listing the allowed ones; the rule's values
        are checked by the registered optimizer, the trainer's by :func:`check_params`.
        """
        if not isinstance(d, dict) or "name" not in d:
            raise ValueError(f"a method is a table with a name, got {d!r}")
        name = d["name"]
        rule = rule_defaults(name)
        what = f"multistart method {name!r}"
        given = {k: v for k, v in d.items() if k != "name"}
        unknown = sorted(set(given) - set(rule) - set(TRAINER) - set(OPTIONAL))
        if unknown:
            allowed = ", ".join(f"{k} (default {v!r})" for k, v in rule.items())
            raise ValueError(
                f"unknown parameter(s) {', '.join(unknown)} for {what}; allowed parameters: "
                f"{allowed}; {describe_params(TRAINER)}; batch_size (an integer >= 1; absent: "
                "full batch); label (a non-empty string)"
            )
        opt = get_optimizer(name, **{k: v for k, v in given.items() if k in rule})
        params = {k: v for k, v in opt.params().items() if k in rule}
        trainer = check_params(what, TRAINER, {k: v for k, v in given.items() if k in TRAINER})
        optional = {k: given[k] for k in OPTIONAL if given.get(k) is not None}
        for key, value in optional.items():
            spec, _ = OPTIONAL[key]
            if spec.kind is str and isinstance(value, str) and value.strip():
                continue
            if spec.kind is not str and spec.coerce(value) is not None:
                optional[key] = spec.coerce(value)
                continue
            allowed = "a non-empty string" if spec.kind is str else spec.describe()
            raise ValueError(f"{what}: parameter {key} must be {allowed}, got {value!r}")
        return cls(name=name, params=params, **trainer, **optional)

    @classmethod
    def from_spec(cls, stored: dict) -> Method:
        """The Method of a stored spec (:meth:`spec`)."""
        name = stored["name"]
        rule = rule_defaults(name)
        d: dict[str, Any] = {"name": name}
        legacy = {key for key, _, _ in STORED_RULE_KEYS}
        for key, hyper, _ in STORED_RULE_KEYS:
            if hyper in rule and key in stored:
                d[hyper] = stored[key]
        for key, value in stored.items():
            if key in legacy or key == "name":
                continue
            d[key] = value
        return cls.from_dict(d)

    def rule(self) -> Transform:
        """The update rule: the registered optimizer's ``transform()`` (clipping included)."""
        optimizer = get_optimizer(self.name, **self.params)
        assert isinstance(optimizer, GradientDescent)  # checked when the Method was made
        return optimizer.transform()

    def _fields(self) -> dict[str, Any]:
        """Hyper-parameters and trainer parameters in display order (legacy order first)."""
        order = [hyper for _, hyper, _ in STORED_RULE_KEYS if hyper in self.params]
        order += [k for k in self.params if k not in order]
        out = {k: self.params[k] for k in order}
        out["batch_size"] = self.batch_size
        out.update({k: getattr(self, k) for k in TRAINER})
        return out

    def display(self) -> str:
        """The label: given, or ``name(key=value, ...)`` for the non-default parameters."""
        if self.label:
            return self.label
        default = Method.make(self.name)._fields()
        parts = [f"{k}={v}" for k, v in self._fields().items() if v != default[k]]
        return f"{self.name}({', '.join(parts)})" if parts else self.name

    def spec(self) -> dict:
        """The stored form (see the module docstring), the label resolved."""
        rule = rule_defaults(self.name)
        d: dict[str, Any] = {"name": self.name}
        for key, hyper, default in STORED_RULE_KEYS:
            d[key] = self.params.get(hyper, default)
        for key, value in self.params.items():
            if key not in {h for _, h, _ in STORED_RULE_KEYS} and value != rule[key]:
                d[key] = value
        d["batch_size"] = self.batch_size
        d.update({k: getattr(self, k) for k in TRAINER})
        d["label"] = self.display()
        return d
