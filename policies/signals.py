"""Side effects of policy records that every writer gets: an asset's stored file goes with its row, and the
lifecycle's checks of a version include its package's."""
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from governance.signals import checking_version
from policies.models import Asset, PolicyRule
from policies.registration import register_package
from policies.storage import asset_storage


@receiver(post_delete, sender=Asset, dispatch_uid="policies-asset-file")
def remove_asset_file(sender, instance, using=None, **kwargs):
    key = instance.storage_key
    if key:
        # Only once the row is gone for good: a rolled-back delete keeps its file.
        transaction.on_commit(lambda: asset_storage().delete(key), using=using)


@receiver(checking_version, sender=PolicyRule, dispatch_uid="policies-check-package")
def check_version_package(sender, version, copied_from=None, **kwargs):
    """Submission checks the package again; a new version copied from a checked one keeps its check."""
    if copied_from is not None:
        version.checked_package = copied_from.checked_package
    register_package(version, again=copied_from is None)
