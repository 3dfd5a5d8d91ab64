"""The design backends behind ``lightnorm_top``, by name (docs/architecture.md, "add a backend").

``get_backend(name)`` returns the registered :class:`Backend`; ``backend_names()`` lists them in
registration order, the default (:data:`DEFAULT_BACKEND`, the template RTL) first. Callers never
compare backend names: they ask the backend (its design, cache tag, tool versions, generated
modules, flow stage).
"""

from __future__ import annotations

from lightnorm.spec import SpecError

from .base import Backend
from .template import TemplateBackend
from .xls import XlsBackend

#: the backends, by name; the first is the default (the reference the others are compared with)
_REGISTRY: dict[str, Backend] = {b.name: b for b in (TemplateBackend(), XlsBackend())}
DEFAULT_BACKEND = next(iter(_REGISTRY))


def backend_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get_backend(name: str) -> Backend:
    """The backend registered as ``name``; :class:`SpecError` naming the registered ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise SpecError("backend", name, "one of " + ", ".join(_REGISTRY)) from None


def compared_backends() -> tuple[Backend, ...]:
    """The backends besides the default one: the flow synthesizes each next to the default
    (its :attr:`Backend.flow_stage`) and the report compares the two."""
    return tuple(b for n, b in _REGISTRY.items() if n != DEFAULT_BACKEND)


__all__ = ["DEFAULT_BACKEND", "Backend", "TemplateBackend", "XlsBackend", "backend_names",
           "compared_backends", "get_backend"]
