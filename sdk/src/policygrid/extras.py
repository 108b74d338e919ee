"""The SDK's optional parts: a feature whose package is missing says which extra installs it.

The core (``pip install policygrid``) holds what a Type 1 run needs; the executor service, ``s3://`` packages and
the Redis context store come with ``policygrid[executor]``, ``[s3]`` and ``[redis]``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import Unavailable


class MissingExtra(Unavailable):
    """A feature was asked for whose optional package isn't installed."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or raise ``MissingExtra`` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(
            f"{feature} needs the '{module.split('.')[0]}' package, which this installation lacks: "
            f"pip install 'policygrid[{extra}]'",
            errors={extra: [f"the '{extra}' extra is not installed"]},
        ) from None
