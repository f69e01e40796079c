"""Optimizers: the plugin contract, the registry, update rules and the built-in families.

Importing this package registers the built-ins (``sgd``, ``momentum``, ``adam``, ``tbptt``,
``cmaes``, ``sep-cmaes``, ``ipop-cmaes``, ``scipy-*``, ``random-search``) and, when the optional
nevergrad is installed, nevergrad's optimizers as ``ng-*`` (:mod:`suite.optimizers.ng`). See
:mod:`suite.optimizers.base` for how to write and check a plugin.
"""

# importing the families registers them (order is irrelevant)
from suite.optimizers import cmaes, gradient, ng, random_search, scipy_methods, truncated  # noqa: E402, I001
from suite.optimizers.base import (
    TAGS,
    Constraint,
    OnlineSessionLike,
    Optimizer,
    ProblemLike,
    at_least,
    between,
    greater_than,
    one_of,
    registered_name,
    set_stop_reason,
)
from suite.optimizers.registry import (
    ENTRY_POINT_GROUP,
    display_name,
    from_spec,
    get_optimizer,
    load_entry_points,
    load_plugins,
    missing_extra,
    optimizer_class,
    optimizer_info,
    optimizer_names,
    register_optimizer,
    register_variant,
    spec,
    unregister_optimizer,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "TAGS",
    "Constraint",
    "OnlineSessionLike",
    "Optimizer",
    "ProblemLike",
    "at_least",
    "between",
    "cmaes",
    "display_name",
    "from_spec",
    "get_optimizer",
    "gradient",
    "greater_than",
    "load_entry_points",
    "load_plugins",
    "missing_extra",
    "ng",
    "one_of",
    "optimizer_class",
    "optimizer_info",
    "optimizer_names",
    "random_search",
    "register_optimizer",
    "register_variant",
    "registered_name",
    "scipy_methods",
    "set_stop_reason",
    "spec",
    "truncated",
    "unregister_optimizer",
]
