"""Server-rendered review pages. They call the same lifecycle services as the API and the admin.

Models are looked up by label, so ``governance`` imports no resource app (docs/architecture.md); the package
files of a version come from its model (``GovernedModel.package_files``).
"""
import json

from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

from governance import diff as version_diff
from governance import lifecycle
from governance.choices import LifecycleStatus
from governance.contributors import contribution_of, contributors
from governance.panels import panels_for

# URL kind → model label. The API's own routes are /policy and /graphs; pages say /portal/policy/<uri>/.
KINDS = {"policy": "policies.policyrule", "graph": "graphs.graph"}
VERSIONS_SHOWN = 100  # the newest versions of a name on a version's page and in its compare form
FORMATTER = HtmlFormatter(cssclass="highlight", linenos="inline", wrapcode=True)
DIFF_FORMATTER = HtmlFormatter(cssclass="highlight diff", wrapcode=True)


def _model(kind: str):
    label = KINDS.get(kind)
    if label is None:
        raise Http404(f"no such kind of record: {kind}")
    return apps.get_model(label)


def _require_view(user, model) -> None:
    if not user.has_perm(lifecycle.permission(model, "view")):
        raise PermissionDenied("your roles do not allow reading these records")


def _object(kind: str, key: str, user):
    model = _model(kind)
    _require_view(user, model)
    obj = model.objects.filter(**{model.lookup_field: key}).first()
    if obj is None:
        raise Http404(f"no {model._meta.verbose_name} {key}")
    return obj


def _kind_of(obj) -> str:
    label = obj._meta.label_lower
    return next(kind for kind, value in KINDS.items() if value == label)


def _queue_row(obj):
    submission = lifecycle.open_submission(obj)
    approvals = submission.reviews.filter(verdict="approve").count() if submission else 0
    return {"obj": obj, "kind": _kind_of(obj), "submission": submission, "approvals": approvals}


@login_required
def review_queue(request):
    """Everything in review, oldest submission first, with who submitted it and how far it is."""
    rows = []
    for label in KINDS.values():
        model = apps.get_model(label)
        if not request.user.has_perm(lifecycle.permission(model, "view")):
            continue
        rows += [_queue_row(obj) for obj in model.objects.filter(status=LifecycleStatus.IN_REVIEW)]
    rows.sort(key=lambda row: row["submission"].submitted_at if row["submission"] else row["obj"].updated_at)
    return render(request, "portal/review_queue.html", {
        "rows": rows,
        "required": lifecycle.approvals_required(),
        "nav": "queue",
    })


def _highlight_file(path: str, data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return mark_safe(f'<p class="muted">binary file, {len(data)} bytes</p>')
    try:
        lexer = get_lexer_for_filename(path, stripnl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False)
    return mark_safe(highlight(text, lexer, FORMATTER))


def _changes(obj, against, files: dict[str, bytes]) -> dict:
    """The field and package-file differences from ``against`` to ``obj`` (``files``: ``obj``'s), highlighted."""
    changes = version_diff.diff(obj, against, with_files=False)
    changes["files"] = version_diff.diff_files(against.package_files(), files, against.key, obj.key)
    for item in changes["files"]["changed"]:
        item["html"] = mark_safe(highlight(item["diff"], DiffLexer(), DIFF_FORMATTER)) if item["diff"] else ""
    changes["field_rows"] = [
        {"name": name, "old": _pretty(value["from"]), "new": _pretty(value["to"])}
        for name, value in changes["fields"].items()
    ]
    return changes


def _pretty(value) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return "" if value is None else str(value)


@login_required
def version_detail(request, kind: str, key: str):
    """A version: its fields, the diff against the previous approved version, its sources and its history."""
    obj = _object(kind, key, request.user)
    user = request.user
    submission = lifecycle.open_submission(obj) or lifecycle.latest_submission(obj)
    release = lifecycle.release_of(obj)
    files = obj.package_files()
    previous = version_diff.previous_approved(obj)
    changes = _changes(obj, previous, files) if previous is not None else None
    fields = [
        {"name": field.name, "value": _pretty(getattr(obj, field.name)), "frozen": field.name in obj.frozen_fields}
        for field in obj._meta.concrete_fields
        if field.name not in ("id", "created_by", *obj.internal_fields)
    ]
    people = contributors(obj)
    own_part = contribution_of(obj, user) if user.is_authenticated else None
    can_review = lifecycle.may_review(user, obj)
    context = {
        "obj": obj,
        "kind": kind,
        "nav": kind,
        "fields": fields,
        "submission": submission,
        "reviews": list(submission.reviews.all()) if submission else [],
        "release": release,
        "required": lifecycle.approvals_required(),
        "approvals": submission.reviews.filter(verdict="approve").count() if submission and submission.outcome != "rejected" else 0,
        "previous": previous,
        "changes": changes,
        "sources": [{"path": path, "html": _highlight_file(path, data)} for path, data in files.items()],
        "history": list(lifecycle.history(obj).order_by("-seq")[:200]),
        "can_submit": obj.status == LifecycleStatus.DRAFT and lifecycle.may_edit(user, obj),
        "contributors": people,
        "can_decide": obj.status == LifecycleStatus.IN_REVIEW and can_review and own_part is None,
        "own_part": own_part if obj.status == LifecycleStatus.IN_REVIEW else None,
        "can_deprecate": obj.status == LifecycleStatus.APPROVED and can_review,
        "can_retire": obj.status in LifecycleStatus.EXECUTABLE and can_review,
        "signing_enabled": settings.SIGNING_ENABLED,
        "versions": list(_versions_of(obj)),
        "panels": panels_for(request, obj),
    }
    return render(request, "portal/version_detail.html", context)


def _versions_of(obj):
    """Every version of ``obj``'s name, newest first: the side-by-side list and the compare form's choices."""
    model = type(obj)
    name_field = next(n for n in model.identity_fields if n.endswith("name"))
    return model.objects.filter(**{name_field: getattr(obj, name_field)}).order_by("-created_at").only(
        model.lookup_field, "status", "created_at", "updated_at", *lifecycle.version_fields(model))[:VERSIONS_SHOWN]


@login_required
def version_compare(request, kind: str):
    """Any two versions side by side (``?a=<older key>&b=<newer key>``): the review page's own diff."""
    old = _object(kind, request.GET.get("a", ""), request.user)
    new = _object(kind, request.GET.get("b", ""), request.user)
    return render(request, "portal/version_compare.html", {
        "kind": kind, "nav": kind, "old": old, "new": new, "changes": _changes(new, old, new.package_files()),
        "versions": list(_versions_of(new)),
    })


TRANSITIONS = {
    "submit": lambda obj, user, post: lifecycle.submit(obj, user, post.get("comment", "")),
    "approve": lambda obj, user, post: lifecycle.approve(obj, user, post.get("comment", "")),
    "reject": lambda obj, user, post: lifecycle.reject(obj, user, post.get("comment", "")),
    "deprecate": lambda obj, user, post: lifecycle.deprecate(
        obj, user, post.get("comment", ""), post.get("replacement_uri") or None
    ),
    "retire": lambda obj, user, post: lifecycle.retire(obj, user, post.get("comment", ""))[0],
}
PAST = {"submit": "submitted for review", "approve": "approved", "reject": "rejected",
        "deprecate": "deprecated", "retire": "retired"}


@login_required
@require_POST
def version_transition(request, kind: str, key: str, transition: str):
    obj = _object(kind, key, request.user)
    run = TRANSITIONS.get(transition)
    if run is None:
        raise Http404(f"no transition {transition}")
    try:
        obj = run(obj, request.user, request.POST)
    except lifecycle.TransitionRefused as exc:
        messages.error(request, exc.message)
    else:
        if transition == "approve" and obj.status == LifecycleStatus.IN_REVIEW:
            messages.success(request, mark_safe(
                f"Your approval of <strong>{escape(obj.key)}</strong> is recorded; it needs more reviewers."
            ))
        else:
            messages.success(request, mark_safe(f"<strong>{escape(obj.key)}</strong> {PAST[transition]}."))
    return redirect("portal-version", kind=kind, key=key)
