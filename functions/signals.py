"""How functions follow the lifecycle of the policy versions they run."""
from django.dispatch import receiver

from functions.models import Function
from governance.signals import version_retired
from policies.models import PolicyRule
from records.services import MAX_NAMED


@receiver(version_retired, sender=PolicyRule, dispatch_uid="functions-policy-retired")
def flag_policy_retired(sender, version, actor, **kwargs) -> list[str]:
    """A function keeps running a retired version, flagged ``policy_retired`` (docs/governance.md §2)."""
    described = []
    for function in Function.objects.filter(policy=version).order_by("function_id"):
        function.policy_retired = True
        function.save(update_fields=["policy_retired", "updated_at"])  # save(): the search index follows
        described.append(f"function {function.function_id}")
    return described[:MAX_NAMED]
