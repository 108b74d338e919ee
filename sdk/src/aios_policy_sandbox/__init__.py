"""Compatibility import name of the earlier SDK: `from aios_policy_sandbox import LocalPolicyEvaluator`."""

from policygrid.errors import PolicyGridError
from policygrid.evaluator import LocalPolicyEvaluator

__all__ = ["LocalPolicyEvaluator", "PolicyGridError"]
