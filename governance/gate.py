"""The execution gate of docs/governance.md §2: which lifecycle states may run or deploy, and who may dry-run.

One function, called by every execution path (Types 2–5) before any work is done.
"""
from django.conf import settings
from policygrid.errors import NotExecutable

from governance.choices import LifecycleStatus


def assert_executable(obj, user, *, dry_run: bool = False) -> None:
    """Raise ``NotExecutable`` (409) unless ``obj`` (a governed record) may run for ``user``.

    * ``approved`` and ``deprecated`` versions run for anyone allowed to execute;
    * ``draft`` / ``in_review`` versions run only as a dry run, for their author or a reviewer;
    * ``retired`` versions never run;
    * ``POLICYGRID_RELAX_EXECUTION_GATE`` (development only) lets every non-retired version run.
    """
    status = obj.status
    if status in LifecycleStatus.EXECUTABLE:
        return
    label = f"{obj._meta.verbose_name} {obj.key}"
    if status == LifecycleStatus.RETIRED:
        raise NotExecutable(f"{label} is retired and can no longer run")
    if settings.RELAX_EXECUTION_GATE:
        return
    if dry_run:
        if user is not None and (user.pk == obj.created_by_id or user.has_perm(_review_perm(obj))):
            return
        raise NotExecutable(f"{label} is {status}: only its author or a reviewer may dry-run it")
    raise NotExecutable(
        f"{label} is {status}: only approved or deprecated versions run "
        "(authors and reviewers may send \"dry_run\": true)"
    )


def _review_perm(obj) -> str:
    meta = obj._meta
    return f"{meta.app_label}.review_{meta.model_name}"
