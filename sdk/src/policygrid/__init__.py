"""PolicyGrid data plane: everything that loads and runs policy code, with no Django."""

from .errors import (
    InputInvalid,
    IntegrityError,
    NotExecutable,
    NotFound,
    OutputInvalid,
    PackageError,
    PackageRequired,
    PolicyError,
    PolicyGridError,
    ResourceLimit,
    Timeout,
    Unavailable,
)

__version__ = "0.1.0"

__all__ = [
    "InputInvalid",
    "IntegrityError",
    "LocalPolicyEvaluator",
    "NotExecutable",
    "NotFound",
    "OutputInvalid",
    "PackageError",
    "PackageRequired",
    "PolicyError",
    "PolicyGridError",
    "ResourceLimit",
    "Timeout",
    "Unavailable",
    "__version__",
]


def __getattr__(name: str):
    # Imported lazily so that `import policygrid.schema` (the portal's use) doesn't pull in requests/boto3.
    if name == "LocalPolicyEvaluator":
        from .evaluator import LocalPolicyEvaluator

        return LocalPolicyEvaluator
    raise AttributeError(f"module 'policygrid' has no attribute {name!r}")
