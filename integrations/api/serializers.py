"""Shapes of connection requests and responses; credentials go in, never out."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from integrations import connections, health
from integrations.crypto import DecryptionError
from integrations.models import Connection


def _check(validator: Any, value: Any) -> Any:
    try:
        validator(value)
    except connections.ConnectionInvalid as exc:
        raise serializers.ValidationError(exc.message) from None
    return value


class ConnectionInputSerializer(serializers.Serializer[Any]):
    """POST and PATCH bodies; on PATCH, integration and name cannot change."""

    integration = serializers.CharField(max_length=63)
    name = serializers.CharField(max_length=63)
    base_url = serializers.CharField(max_length=connections.MAX_BASE_URL_LENGTH)
    credentials = serializers.DictField(required=False, default=dict, write_only=True)
    allow_private_network = serializers.BooleanField(required=False, default=False)
    options = serializers.DictField(required=False, default=dict)
    rate_limit_per_minute = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=100_000
    )
    circuit_failures = serializers.IntegerField(required=False, min_value=1, max_value=1000)
    circuit_cooldown_seconds = serializers.FloatField(required=False, min_value=1, max_value=86_400)

    def validate_integration(self, value: str) -> str:
        return str(_check(connections.validate_integration, value))

    def validate_name(self, value: str) -> str:
        return str(_check(connections.validate_name, value))


class ConnectionUpdateSerializer(serializers.Serializer[Any]):
    """PATCH bodies: every field optional; integration and name are fixed."""

    base_url = serializers.CharField(max_length=connections.MAX_BASE_URL_LENGTH, required=False)
    credentials = serializers.DictField(required=False, write_only=True)
    allow_private_network = serializers.BooleanField(required=False)
    options = serializers.DictField(required=False)
    rate_limit_per_minute = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=100_000
    )
    circuit_failures = serializers.IntegerField(required=False, min_value=1, max_value=1000)
    circuit_cooldown_seconds = serializers.FloatField(required=False, min_value=1, max_value=86_400)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        fixed = sorted({"integration", "name"} & set(self.initial_data))
        if fixed:
            raise serializers.ValidationError(
                {field: "cannot be changed; delete and re-create the connection" for field in fixed}
            )
        return attrs


class ConnectionSerializer(serializers.ModelSerializer[Connection]):
    """A connection as the API shows it: which credential keys it holds, never their values."""

    has_credentials = serializers.BooleanField(read_only=True)
    credential_keys = serializers.SerializerMethodField()
    health = serializers.SerializerMethodField()
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = Connection
        fields = [
            "integration",
            "name",
            "base_url",
            "allow_private_network",
            "options",
            "rate_limit_per_minute",
            "circuit_failures",
            "circuit_cooldown_seconds",
            "health",
            "has_credentials",
            "credential_keys",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_health(self, obj: Connection) -> dict[str, Any]:
        """The circuit breaker's state and the rate limiter's counts, shared by all workers."""
        return health.describe(obj)

    def get_credential_keys(self, obj: Connection) -> list[str] | None:
        """Sorted credential key names; null when the stored value cannot be decrypted."""
        try:
            return sorted(obj.credentials)
        except DecryptionError:
            return None


class ConnectionTestSerializer(serializers.Serializer[Any]):
    ok = serializers.BooleanField()
    message = serializers.CharField()
    duration_ms = serializers.FloatField(required=False)


class ActionSerializer(serializers.Serializer[Any]):
    """One action of the catalogue (integrations.registry.ActionSpec)."""

    name = serializers.CharField()
    integration = serializers.CharField()
    side_effect = serializers.CharField()
    description = serializers.CharField()
    output = serializers.CharField()
    idempotent = serializers.BooleanField()
    input_schema = serializers.SerializerMethodField()
    connection = serializers.SerializerMethodField()

    def get_input_schema(self, spec: Any) -> dict[str, Any]:
        schema: dict[str, Any] = spec.input_schema()
        return schema

    def get_connection(self, spec: Any) -> dict[str, Any] | None:
        """The integration whose connection the action uses, and whether it must have one."""
        if spec.connection_integration is None:
            return None
        return {"integration": spec.connection_integration, "required": spec.connection_required}
