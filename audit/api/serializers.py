"""How an audit entry reads in the API."""
from rest_framework import serializers

from audit.models import AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_username", read_only=True)

    class Meta:
        model = AuditEntry
        fields = ["seq", "timestamp", "actor", "actor_id", "action", "target_type", "target_key",
                  "request_id", "data", "prev_hash", "entry_hash"]
        read_only_fields = fields
