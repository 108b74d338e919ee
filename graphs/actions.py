"""What the portal's run pages do, through ``graphs.services`` only (the API's own checks, gate and audit): the Run
form of a version read into an ``execute_graph`` request (always asynchronous: the page follows the run), and the
page data of a run (the API's own representation, so the live updates and the first render agree)."""
from __future__ import annotations

import io
from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse
from policygrid.errors import PolicyGridError
from rest_framework.exceptions import APIException, ParseError, ValidationError

from graphs import services
from graphs.api.serializers import GraphRunSerializer
from graphs.choices import RunStatus
from graphs.models import Graph, GraphRun
from records.api.parsers import JsonParser


@dataclass
class RunForm:
    """The Run form of a graph version: what was typed, and what was wrong with it."""

    graph: Graph
    modes: list[str]
    input_data: str = "{}"
    dry_run: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def dry_run_only(self) -> bool:
        """A draft: its author and reviewers may only dry-run it."""
        return "run" not in self.modes


def run_form(user, graph: Graph) -> RunForm | None:
    """The empty Run form, or None when ``user`` may not run ``graph`` (not the role, not a runnable version)."""
    modes = services.run_modes(user, graph)
    return RunForm(graph, modes, dry_run="run" not in modes) if modes else None


def start(user, form: RunForm, post) -> GraphRun | None:
    """The posted form as an asynchronous ``services.execute_graph``: the run, or None with ``form.errors`` said
    (malformed JSON, an input the graph's schema refuses, a version that can't run now)."""
    form.input_data = post.get("input_data", "").strip() or "{}"
    form.dry_run = form.dry_run_only or post.get("dry_run") == "on"
    raw = form.input_data.encode()
    if len(raw) > settings.API_MAX_BODY_BYTES:  # the API's own limit on a request body
        form.errors.append(f"The input is {len(raw):,} bytes: the limit is {settings.API_MAX_BODY_BYTES:,}")
        return None
    try:  # the API's JSON parser: its depth limit, NUL and lone surrogates refused, finite numbers
        input_data = JsonParser().parse(io.BytesIO(raw))
    except ParseError as exc:
        form.errors.append(f"The input is not JSON: {exc.detail}")
        return None
    except ValidationError as exc:
        form.errors.extend(f"The input's {name}: {'; '.join(map(str, reasons))}" for name, reasons in exc.detail.items())
        return None
    body = {"graph_uri": form.graph.graph_uri, "input_data": input_data, "async": True, "dry_run": form.dry_run}
    try:
        return services.execute_graph(user, body)
    except PolicyGridError as exc:  # the input schema (400), the lifecycle gate (409)
        form.errors.append(exc.message)
        form.errors.extend(f"{name}: {'; '.join(map(str, reasons))}" for name, reasons in (exc.errors or {}).items())
    except APIException as exc:
        form.errors.append(str(exc.detail))
    return None


def page_data(run: GraphRun) -> dict:
    """What the run page's script draws: the run as GET /graph/runs/<run_id> answers it, the graph's edges (from
    the run's plan: the graph as it ran) and where to poll."""
    return {"run": GraphRunSerializer(run).data, "ids": run.plan.get("ids", []),
            "parents": run.plan.get("parents", {}), "api": f"/graph/runs/{run.run_id}",
            "active": run.status in RunStatus.ACTIVE}


def trace(run: GraphRun) -> dict:
    """The editor's read-only overlay of a run: its node states, and where to follow it."""
    return {"run_id": str(run.run_id), "status": run.status, "api": f"/graph/runs/{run.run_id}",
            "nodes": {node.node_id: node.status for node in run.nodes.all()},
            "page_url": reverse("portal-graph-run", args=[run.run_id])}
