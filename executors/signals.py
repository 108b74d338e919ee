"""Signals executors send, for the apps that live on them to react in their own code (dependencies point here)."""
from django.dispatch import Signal

# Sent by remove-infra once the executor's objects are deleted from its cluster (its jobs' and functions' with them;
# ``executors.cluster.infra.remove_infra``), with ``executor`` and ``actor``: the records of what ran there follow.
infra_removed = Signal()
