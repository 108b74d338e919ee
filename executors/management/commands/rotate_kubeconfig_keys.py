"""``manage.py rotate_kubeconfig_keys``: re-encrypt every stored kubeconfig with the newest key.

Rotation (docs/kubernetes.md): put a new Fernet key first in ``POLICYGRID_KUBECONFIG_KEYS`` (keeping the old ones
after it), restart the portal and workers, run this command, then drop the old keys. Audited, with no secret.
"""
from django.core.management.base import BaseCommand

from audit.services import audit_object
from executors.cluster import credentials
from executors.models import PolicyExecutor


class Command(BaseCommand):
    help = "Re-encrypt every stored kubeconfig with the first key of POLICYGRID_KUBECONFIG_KEYS."

    def handle(self, *args, **options):
        count = 0
        for executor in PolicyExecutor.objects.exclude(cluster_config="").only("id", "executor_id", "cluster_config"):
            executor.cluster_config = credentials.rotate(executor.cluster_config)
            executor.save(update_fields=["cluster_config", "updated_at"])
            audit_object(None, "executor.kubeconfig_rotate", executor, {})
            count += 1
        self.stdout.write(f"re-encrypted {count} kubeconfig(s) with the newest key")
