"""Which versions the data plane runs (docs/governance.md §2): the one statement of the rule the portal's
execution gate applies to Types 2–5, for Type 1 (``LocalPolicyEvaluator``, ``policygrid policy run``) and the
executor service alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import NotExecutable

# The lifecycle states in which a version runs; drafts and versions in review run only as dry runs (they have
# no signed release yet), retired versions never.
EXECUTABLE_STATUSES = ("approved", "deprecated")
UNRELEASED_STATES = ("draft", "in_review")
RETIRED = "retired"


def check_runnable(record: Mapping[str, Any], *, dry_run: bool = False) -> None:
    """Raise ``NotExecutable`` (409) unless the version ``record`` describes may run.

    A record without a ``status`` is no governed version (a local folder, a hand-written record): it runs.
    """
    status = record.get("status")
    if status is None or status in EXECUTABLE_STATUSES:
        return
    uri = record.get("policy_rule_uri") or "the policy"
    if status == RETIRED:
        raise NotExecutable(f"{uri} is retired and can no longer run", errors={"status": [status]})
    if status in UNRELEASED_STATES and dry_run:
        return
    raise NotExecutable(
        f"{uri} is {status}: only approved or deprecated versions run; to try a draft, ask for a dry run "
        "(dry_run=True, or --dry-run)",
        errors={"status": [f"{status}: not approved"]},
    )
