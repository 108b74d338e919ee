"""``GET /keys``: the public keys that verify release signatures, with their status (docs/governance.md §5)."""
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, authentication_classes, permission_classes

from records.api.viewsets import ok


@extend_schema(
    responses={200: {"type": "array", "items": {"type": "object", "properties": {
        "key_id": {"type": "string"}, "algorithm": {"type": "string"}, "public_key": {"type": "string"},
        "status": {"type": "string", "enum": ["active", "retired", "revoked"]},
        "created_at": {"type": "string"}, "retired_at": {"type": ["string", "null"]},
        "revoked_at": {"type": ["string", "null"]}}}}},
    description="Public Ed25519 keys (base64, raw) with key_id and status: active signs new releases, "
    "retired still verifies old ones, revoked verifies nothing.",
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def keys(request):
    # Public keys are public: loaders on executors fetch them without a user account.
    from governance.signing import published_keys

    return ok(published_keys())
