"""Sandboxed worker processes that run policy code: the pool (executor service) and its Type 1 pool of one."""

from .control import PoolLimits
from .isolated import IsolatedRunner, IsolationLimits
from .pool import WorkerPool

__all__ = ["IsolatedRunner", "IsolationLimits", "PoolLimits", "WorkerPool"]
