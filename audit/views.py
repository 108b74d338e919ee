"""The audit trail's portal page: the API's filters (``audit.api.views.AuditEntryFilterSet``) plus free text."""
from audit.api.views import AuditEntryFilterSet
from audit.models import AuditEntry
from records.api.filtersets import RecordFilterSet
from records.pages import Column, RecordListView


class AuditPageFilterSet(RecordFilterSet, AuditEntryFilterSet):
    search_fields = ("action", "target_key", "actor_username")

    class Meta(AuditEntryFilterSet.Meta):
        pass


class AuditListView(RecordListView):
    model = AuditEntry
    filterset_class = AuditPageFilterSet
    related = ()
    title = "Audit trail"
    intro = "Every change, transition and execution, hash-chained and append-only (newest first)."
    nav = "audit"
    noun = "entry"
    empty_hint = "Entries appear as soon as anyone changes a record or runs a policy."
    filter_fields = ("actor", "action_prefix", "target_type")
    columns = (
        Column("#", "seq", "text", "seq"),
        Column("When", "timestamp", "time", "timestamp"),
        Column("Who", "actor_username"),
        Column("Action", "action", "mono"),
        Column("Target", "target_key", "mono"),
        Column("Type", "target_type"),
    )
    default_sort = "-seq"
