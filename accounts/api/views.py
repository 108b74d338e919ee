"""API routes of a user's own tokens: create (the key is shown once), list, revoke."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated

from accounts.models import ApiToken
from accounts.services import issue_token, revoke_token
from records.api.serializers import refuse_coercion
from records.api.viewsets import ok


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]


class NewTokenSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    def to_internal_value(self, data):
        if isinstance(data, dict):
            refuse_coercion(self.fields, data)
        return super().to_internal_value(data)


class ApiTokenViewSet(viewsets.ViewSet):
    """Tokens belong to their owner: each user sees and revokes only their own."""

    permission_classes = [IsAuthenticated]
    lookup_value_regex = r"[0-9]+"

    @extend_schema(responses=ApiTokenSerializer(many=True))
    def list(self, request):
        tokens = ApiToken.objects.filter(user=request.user)
        return ok(ApiTokenSerializer(tokens, many=True).data)

    @extend_schema(request=NewTokenSerializer, responses=ApiTokenSerializer)
    def create(self, request):
        body = NewTokenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, key = issue_token(request.user, name=body.validated_data["name"], actor=request.user)
        return ok({**ApiTokenSerializer(token).data, "key": key}, status.HTTP_201_CREATED)

    @extend_schema(responses=ApiTokenSerializer)
    def destroy(self, request, pk=None):
        token = ApiToken.objects.filter(user=request.user, pk=pk).first()
        if token is None:
            raise NotFound(f"you have no token with id {pk}")
        revoke_token(token, actor=request.user)
        return ok(ApiTokenSerializer(token).data)
