"""Who shaped a version (its creator, who changed its behaviour fields, who submitted it): none may approve it."""
from __future__ import annotations

from django.contrib.contenttypes.models import ContentType

from governance.models import BehaviourChange, Submission


def contributors(obj) -> list[dict]:
    """One item per person, in order of first contribution: ``username``, ``user_id``, ``roles`` (of
    ``created``, ``changed``, ``submitted``) and ``fields`` (the behaviour fields they changed)."""
    people: dict[object, dict] = {}

    def add(user_id, username: str, role: str, fields=()) -> None:
        person = people.setdefault(user_id if user_id is not None else f"deleted:{username}",
                                   {"username": username, "user_id": user_id, "roles": [], "fields": []})
        if role not in person["roles"]:
            person["roles"].append(role)
        person["fields"].extend(name for name in fields if name not in person["fields"])

    if obj.created_by_id is not None:
        add(obj.created_by_id, obj.created_by.get_username(), "created")
    target = {"content_type": ContentType.objects.get_for_model(type(obj)), "object_id": obj.pk}
    for change in BehaviourChange.objects.filter(**target).order_by("pk"):
        add(change.changed_by_id, change.changed_by_username, "changed", change.fields)
    for submission in Submission.objects.filter(**target).order_by("pk"):
        add(submission.submitted_by_id, submission.submitted_by_username, "submitted")
    return list(people.values())


def contribution_of(obj, user) -> str | None:
    """What ``user`` did to this version, in words ("created and submitted"), or None if nothing."""
    person = next((p for p in contributors(obj) if p["user_id"] is not None and p["user_id"] == user.pk), None)
    if person is None:
        return None
    words = {"created": "created", "submitted": "submitted",
             "changed": f"changed the behaviour fields {', '.join(person['fields'])} of"}
    return " and ".join(words[role] for role in person["roles"])
