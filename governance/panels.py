"""Panels other apps add to a governed version's page (schemas, where it is used, the playground link, the
graph editor), so that ``governance`` shows them without importing any resource app.

A panel is ``fn(request, obj) -> dict | None``: the dict holds ``template`` (rendered with ``panel`` in its
context) and whatever that template reads; None leaves the panel out (nothing to show, or not for this role).
"""
from collections.abc import Callable

# model label ("policies.policyrule") → its panels, in registration order; "side" panels go in the side column.
PANELS: dict[str, list[tuple[str, Callable]]] = {}


def register(model_label: str, column: str = "main"):
    def add(fn: Callable) -> Callable:
        entries = PANELS.setdefault(model_label, [])
        if all(existing is not fn for _, existing in entries):
            entries.append((column, fn))
        return fn

    return add


def panels_for(request, obj) -> dict[str, list[dict]]:
    shown: dict[str, list[dict]] = {"main": [], "side": []}
    for column, fn in PANELS.get(obj._meta.label_lower, []):
        panel = fn(request, obj)
        if panel is not None:
            shown[column].append(panel)
    return shown


def used_by(title: str, testid: str, rows: list[tuple[str, str, str]], empty: str, more: str = "") -> dict:
    """A "where it is used" panel: ``rows`` of (label, url, status), ``empty`` said when there are none."""
    return {"template": "portal/panels/used_by.html", "title": title, "testid": testid, "empty": empty,
            "rows": [{"label": label, "url": url, "status": status} for label, url, status in rows], "more": more}
