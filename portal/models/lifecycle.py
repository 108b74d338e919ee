"""The governed-lifecycle mixin shared by policies and graphs (governance.md §2)."""
from django.contrib.contenttypes.fields import GenericRelation
from django.db import models

from portal.choices import LifecycleStatus


class GovernedModel(models.Model):
    """A versioned record that is reviewed before it may run.

    ``status`` moves only through the lifecycle service functions (submit, approve, reject, deprecate,
    retire); the API's update routes treat it as read-only. ``frozen_fields`` are those that change
    behaviour: once approved they can't change (409), while descriptive fields stay editable.
    """

    frozen_fields: tuple[str, ...] = ()

    status = models.CharField(
        max_length=20, choices=LifecycleStatus.choices, default=LifecycleStatus.DRAFT, db_index=True
    )
    # Review rounds and the release (portal.models.governance): generic so that every governed model shares
    # them; declared here so that they are deleted with the version and can be prefetched for listings.
    submissions = GenericRelation("portal.Submission")
    releases = GenericRelation("portal.Release")

    class Meta:
        abstract = True

    @property
    def is_executable(self) -> bool:
        return self.status in LifecycleStatus.executable()

    @property
    def is_frozen(self) -> bool:
        return self.status != LifecycleStatus.DRAFT
