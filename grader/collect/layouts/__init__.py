"""The submission layouts: one module per layout, each registered with
:func:`~grader.collect.layouts.base.layout`.

Every module in this package is imported here, so a new layout is one new file (see
:mod:`grader.collect.layouts.base`). :data:`LAYOUTS` lists the names in their order, which is
also the order auto-detection tries them in.
"""

from __future__ import annotations

import importlib
import pkgutil

from grader.collect.layouts.base import REGISTRY, Context, Identity, Layout, layout

__all__ = ["LAYOUTS", "Context", "Identity", "Layout", "by_name", "detectable", "layout", "registered"]

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")


def registered() -> list[Layout]:
    """Every layout, in order."""
    return sorted(REGISTRY.values(), key=lambda spec: spec.order)


def detectable() -> list[Layout]:
    """The layouts auto-detection tries, in the order it tries them."""
    return [spec for spec in registered() if spec.detect]


def by_name(name: str) -> Layout:
    """The layout ``name`` (a :class:`KeyError` for an unknown one: callers check first)."""
    return REGISTRY[name]


LAYOUTS: tuple[str, ...] = tuple(spec.name for spec in registered())
