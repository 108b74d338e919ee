"""How an audit entry and a signed checkpoint read in the API."""
from rest_framework import serializers

from audit.checkpoints import as_record
from audit.models import AuditCheckpoint, AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_username", read_only=True)

    class Meta:
        model = AuditEntry
        fields = ["seq", "timestamp", "actor", "actor_id", "action", "target_type", "target_key",
                  "request_id", "data", "prev_hash", "entry_hash"]
        read_only_fields = fields


class AuditCheckpointSerializer(serializers.ModelSerializer):
    """Exactly the export file's line: ``at`` in the signed form, so that a client verifies what it reads."""

    class Meta:
        model = AuditCheckpoint
        fields = ["seq", "entry_hash", "at", "key_id", "signature"]
        read_only_fields = fields

    def to_representation(self, instance):
        return as_record(instance)
