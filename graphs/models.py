"""Graph: a versioned DAG of Type 4 functions, validated when it is registered (not when it runs); GraphRun and
NodeRun: the rows the run engine (graphs.engine) advances."""
import uuid
from graphlib import CycleError, TopologicalSorter

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from functions.models import Function
from governance.models import GovernedModel
from graphs.choices import MergeMode, NodeStatus, RunStatus
from records.models import RecordModel
from records.validators import validate_name, validate_release_tag, validate_version, versioned_uri


def graph_order(function_ids: list[str], connections: dict[str, list[str]]) -> list[str]:
    """Topological order of the nodes; raises ValidationError naming a cycle or a dangling edge."""
    known = set(function_ids)
    predecessors: dict[str, set[str]] = {node: set() for node in function_ids}
    for source, targets in connections.items():
        if source not in known:
            raise ValidationError({"graph_connection_data": [f"edge from '{source}', which is not in graph_function_ids"]})
        for target in targets:
            if target not in known:
                raise ValidationError({"graph_connection_data": [f"edge '{source}' → '{target}': '{target}' is not in graph_function_ids"]})
            predecessors[target].add(source)
    try:
        return list(TopologicalSorter(predecessors).static_order())
    except CycleError as exc:
        cycle = exc.args[1]
        raise ValidationError({"graph_connection_data": [f"the graph has a cycle: {' → '.join(reversed(cycle))}"]}) from None


NODE_OPTIONS = {"retries": (int, 0, 10), "retry_backoff_seconds": ((int, float), 0, 3600),
                "timeout_seconds": ((int, float), 0.001, 86400)}


def node_option_errors(options, ids: list[str]) -> None:
    """``graph_node_options`` names nodes of the graph, each with known options in their ranges."""
    if not isinstance(options, dict):
        raise ValidationError({"graph_node_options": ["must be a JSON object mapping a function id to its options"]})
    for node, given in options.items():
        where = f"graph_node_options.{node}"
        if node not in ids:
            raise ValidationError({where: [f"'{node}' is not in graph_function_ids"]})
        if not isinstance(given, dict):
            raise ValidationError({where: [f"must be an object with any of {', '.join(NODE_OPTIONS)}"]})
        for name, value in given.items():
            if name not in NODE_OPTIONS:
                raise ValidationError({f"{where}.{name}": [f"unknown option: use {', '.join(NODE_OPTIONS)}"]})
            kind, low, high = NODE_OPTIONS[name]
            if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
                raise ValidationError({f"{where}.{name}": [f"must be a number from {low} to {high}"
                                                           + (" (an integer)" if kind is int else "")]})


class Graph(GovernedModel, RecordModel):
    """``{graph_name}:{graph_version}-{graph_release_tag}``: nodes are functions, edges parent → children."""

    lookup_field = "graph_uri"
    identity_fields = ("graph_uri", "graph_name", "graph_version", "graph_release_tag")
    frozen_fields = ("graph_function_ids", "graph_connection_data", "graph_input_schema",
                     "graph_output_schema", "graph_merge_mode", "graph_node_options")
    internal_fields = ("functions",)

    graph_uri = models.CharField(max_length=255, unique=True, editable=False)
    graph_name = models.CharField(max_length=100, validators=[validate_name], db_index=True)
    graph_version = models.CharField(max_length=50, validators=[validate_version])
    graph_release_tag = models.CharField(max_length=100, validators=[validate_release_tag])
    graph_metadata = models.JSONField(default=dict, blank=True)
    graph_function_ids = models.JSONField()
    graph_connection_data = models.JSONField(blank=True)  # {} for a graph of one node
    graph_search_tags = models.JSONField(default=list, blank=True)
    graph_description = models.TextField(blank=True, default="")
    graph_input_schema = models.JSONField(default=dict, blank=True)
    graph_output_schema = models.JSONField(default=dict, blank=True)
    graph_merge_mode = models.CharField(max_length=10, choices=MergeMode.choices, default=MergeMode.LIST)
    # Per node: {"<function id>": {"retries": 0-10, "retry_backoff_seconds": ≥ 0, "timeout_seconds": > 0}}.
    graph_node_options = models.JSONField(default=dict, blank=True)
    # Set when a policy version one of its functions runs is retired (docs/governance.md §2).
    uses_retired_policy = models.BooleanField(default=False)
    # The functions graph_function_ids names, kept by save(): a function in a graph can't be deleted.
    functions = models.ManyToManyField(Function, through="GraphNode", related_name="graphs", editable=False)

    class Meta:
        ordering = ["graph_name", "graph_version", "graph_release_tag"]
        constraints = [
            models.UniqueConstraint(
                fields=["graph_name", "graph_version", "graph_release_tag"],
                name="%(app_label)s_%(class)s_unique_identity",
            ),
        ]
        permissions = [
            ("review_graph", "Can approve, reject, deprecate and retire graphs"),
            ("execute_graph", "Can execute approved graphs"),
        ]

    def compute_derived_fields(self) -> None:
        self.graph_uri = versioned_uri(self.graph_name, self.graph_version, self.graph_release_tag)

    def clean(self):
        ids, edges = self.graph_function_ids, self.graph_connection_data
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValidationError({"graph_function_ids": ["must be a JSON array of function ids"]})
        if not ids:
            raise ValidationError({"graph_function_ids": ["the graph is empty: give at least one function id"]})
        if len(set(ids)) != len(ids):
            raise ValidationError({"graph_function_ids": ["lists a function id more than once"]})
        if not isinstance(edges, dict) or not all(
            isinstance(t, list) and all(isinstance(x, str) for x in t) for t in edges.values()
        ):
            raise ValidationError({"graph_connection_data": ["must be an object mapping an id to a list of ids"]})
        for field in ("graph_metadata", "graph_input_schema", "graph_output_schema"):
            if not isinstance(getattr(self, field), dict):
                raise ValidationError({field: ["must be a JSON object"]})
        if not isinstance(self.graph_search_tags, list):
            raise ValidationError({"graph_search_tags": ["must be a JSON array"]})
        graph_order(ids, edges)
        node_option_errors(self.graph_node_options, ids)
        registered = set(Function.objects.filter(function_id__in=ids).values_list("function_id", flat=True))
        missing = [i for i in ids if i not in registered]
        if missing:
            raise ValidationError({"graph_function_ids": [f"not registered functions: {', '.join(missing)}"]})

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "graph_function_ids" in update_fields:
            self.sync_nodes()

    def sync_nodes(self) -> None:
        """One node per registered function of ``graph_function_ids`` (unregistered ids: see ``clean()``)."""
        ids = self.graph_function_ids if isinstance(self.graph_function_ids, list) else []
        self.functions.set(Function.objects.filter(function_id__in=[i for i in ids if isinstance(i, str)]))


class GraphNode(models.Model):
    """A function in a graph: deleting the graph drops its nodes; a function in a graph can't be deleted."""

    graph = models.ForeignKey(Graph, on_delete=models.CASCADE, related_name="nodes")
    function = models.ForeignKey(Function, on_delete=models.PROTECT, related_name="graph_nodes")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["graph", "function"], name="%(app_label)s_%(class)s_once_per_graph"),
        ]

    def __str__(self) -> str:
        return f"graph {self.graph.graph_uri}"


class GraphRun(models.Model):
    """One execution of a graph version (``graphs.choices.RunStatus`` draws its transitions). ``plan`` is the
    graph as it was when the run started (nodes, parents, sinks, merge mode, node options, output schema), so a
    retry runs the same graph. Readable while it runs; written by the engine only."""

    lookup_field = "run_id"

    run_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    graph = models.ForeignKey(Graph, on_delete=models.CASCADE, related_name="runs")
    graph_uri = models.CharField(max_length=255, db_index=True)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.PENDING, db_index=True)
    attempt = models.PositiveIntegerField(default=1)
    dry_run = models.BooleanField(default=False)
    input_data = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    error_type = models.CharField(max_length=40, blank=True, default="")
    failed_node = models.CharField(max_length=63, blank=True, default="")
    plan = models.JSONField(default=dict)
    uses_retired_policy = models.BooleanField(default=False)
    warnings = models.JSONField(default=list, blank=True)
    timeout_seconds = models.FloatField()
    deadline_at = models.DateTimeField(null=True, blank=True)
    # Who started it (the API shows its username as ``actor``).
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["graph_uri", "-created_at"], name="graphs_graphrun_by_graph")]

    @property
    def key(self) -> str:
        return str(self.run_id)

    @property
    def duration_ms(self) -> float | None:
        """From start to end, once it has ended (the API's ``duration_ms``)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds() * 1000, 3)

    def __str__(self) -> str:
        return f"run {self.run_id} of {self.graph_uri}"


class NodeRun(models.Model):
    """One node of one run (``graphs.choices.NodeStatus``). A worker claims it with a conditional UPDATE
    (pending → running), so no node runs twice; ``lease_until`` is when a running node whose worker went
    silent counts as lost (the periodic reconciliation fails or retries it)."""

    run = models.ForeignKey(GraphRun, on_delete=models.CASCADE, related_name="nodes")
    node_id = models.CharField(max_length=63)
    position = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=NodeStatus.choices, default=NodeStatus.PENDING)
    attempt = models.PositiveIntegerField(default=0)  # calls started (1 + retries so far)
    run_attempt = models.PositiveIntegerField(default=1)  # the run attempt that last ran it
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    error_type = models.CharField(max_length=40, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)  # a retry waits for its backoff
    lease_until = models.DateTimeField(null=True, blank=True, db_index=True)
    worker = models.CharField(max_length=255, blank=True, default="")  # host:pid of the process that ran it

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "node_id"], name="%(app_label)s_%(class)s_once_per_run"),
        ]

    def __str__(self) -> str:
        return f"node {self.node_id} of run {self.run_id}"
