"""How graphs follow the lifecycle of the policy versions their functions run."""
from django.dispatch import receiver

from governance.signals import version_retired
from graphs.models import Graph
from policies.models import PolicyRule
from records.services import MAX_NAMED


@receiver(version_retired, sender=PolicyRule, dispatch_uid="graphs-policy-retired")
def flag_uses_retired_policy(sender, version, actor, **kwargs) -> list[str]:
    """A graph with a function that runs a retired version is flagged ``uses_retired_policy``."""
    described = []
    for graph in Graph.objects.filter(functions__policy=version).distinct().order_by("graph_uri"):
        graph.uses_retired_policy = True
        graph.save(update_fields=["uses_retired_policy", "updated_at"])
        described.append(f"graph {graph.graph_uri}")
    return described[:MAX_NAMED]
