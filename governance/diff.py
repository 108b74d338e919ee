"""Comparing versions of a governed record: the previous approved version, field and package-file diffs."""
import difflib

from django.contrib.contenttypes.models import ContentType
from packaging.version import InvalidVersion, Version

from audit.services import _json_safe
from governance.choices import LifecycleStatus
from governance.contributors import contributors
from governance.models import Release


def previous_approved(obj):
    """The version ``obj`` follows: of the same name, approved or deprecated now (never a retired one), and
    before ``obj`` — a lower version number, or for equal or unparsable numbers, created earlier — the
    highest such; ties go to the most recent approval."""
    model = type(obj)
    name_field = next(n for n in model.identity_fields if n.endswith("name"))
    candidates = [other for other in model.objects.filter(**{name_field: getattr(obj, name_field)},
                                                          status__in=LifecycleStatus.EXECUTABLE).exclude(pk=obj.pk)
                  if _precedes(other, obj)]
    if not candidates:
        return None
    approved_at = dict(Release.objects.filter(content_type=ContentType.objects.get_for_model(model),
                                              object_id__in=[c.pk for c in candidates])
                       .values_list("object_id", "approved_at"))
    return max(candidates, key=lambda other: (_version_of(other) or Version("0"),
                                              approved_at.get(other.pk) or other.created_at))


def _version_of(obj) -> Version | None:
    field = next(n for n in type(obj).identity_fields if n.endswith("version"))
    try:
        return Version(str(getattr(obj, field)))
    except InvalidVersion:
        return None


def _precedes(other, obj) -> bool:
    mine, theirs = _version_of(obj), _version_of(other)
    if mine is not None and theirs is not None and mine != theirs:
        return theirs < mine
    return other.created_at < obj.created_at


DIFF_SKIP = {"id", "created_at", "updated_at"}


def _field_value(obj, name):
    if obj._meta.get_field(name).is_relation:
        # A person is named by username (a reviewer reads "created_by alice → bob", not "2 → 1").
        related = getattr(obj, name)
        if related is None:
            return None
        return related.get_username() if hasattr(related, "get_username") else getattr(related, "key", related.pk)
    return _json_safe(getattr(obj, name))


def diff(obj, against, *, with_files: bool = True) -> dict:
    """Field-by-field differences from ``against`` to ``obj``, and the package files' differences."""
    fields = {}
    unchanged = []
    internal = set(getattr(obj, "internal_fields", ()))
    for field in type(obj)._meta.concrete_fields:
        if field.name in DIFF_SKIP or field.name in internal:
            continue
        old, new = _field_value(against, field.name), _field_value(obj, field.name)
        if old != new:
            fields[field.name] = {"from": old, "to": new}
        else:
            unchanged.append(field.name)
    result = {"from": against.key, "to": obj.key, "fields": fields, "unchanged_fields": unchanged,
              "contributors": contributors(obj)}
    if with_files:
        result["files"] = diff_files(against.package_files(), obj.package_files(), against.key, obj.key)
    return result


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def diff_files(old: dict[str, bytes], new: dict[str, bytes], old_label: str = "a", new_label: str = "b") -> dict:
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed, unchanged = [], []
    for path in sorted(set(old) & set(new)):
        if old[path] == new[path]:
            unchanged.append(path)
            continue
        a, b = _text(old[path]), _text(new[path])
        if a is None or b is None:
            changed.append({"path": path, "binary": True, "diff": ""})
            continue
        text = "".join(
            difflib.unified_diff(
                a.splitlines(keepends=True), b.splitlines(keepends=True),
                fromfile=f"{old_label}/{path}", tofile=f"{new_label}/{path}",
            )
        )
        changed.append({"path": path, "binary": False, "diff": text})
    for path in added:
        content = _text(new[path])
        lines = (content or "").splitlines(keepends=True)
        changed.append({"path": path, "binary": content is None, "added": True,
                        "diff": "".join(difflib.unified_diff([], lines, fromfile="/dev/null", tofile=f"{new_label}/{path}"))})
    for path in removed:
        content = _text(old[path])
        lines = (content or "").splitlines(keepends=True)
        changed.append({"path": path, "binary": content is None, "removed": True,
                        "diff": "".join(difflib.unified_diff(lines, [], fromfile=f"{old_label}/{path}", tofile="/dev/null"))})
    return {"added": added, "removed": removed, "changed": changed, "unchanged": unchanged}
