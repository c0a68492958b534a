"""Shapes of the playbooks API: definitions in, playbooks and versions out."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from playbooks.models import Playbook, PlaybookVersion


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": "YAML or JSON text"},
            {"type": "object", "additionalProperties": True},
        ],
        "description": "A playbook definition (SPEC §3); its JSON Schema is at /playbooks/schema/.",
    }
)
class DefinitionField(serializers.JSONField):
    """A definition as YAML/JSON text or as an object."""

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if not isinstance(value, (str, dict)):
            raise serializers.ValidationError("must be YAML/JSON text or an object")
        return value


class DefinitionInputSerializer(serializers.Serializer[Any]):
    """The body of create, new version and validate."""

    definition = DefinitionField()


class ProblemSerializer(serializers.Serializer[Any]):
    path = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer[Any]):
    """The API's error shape (config/api_errors.py)."""

    error = serializers.CharField()
    # DRF's metaclass pops declared fields, so this does not shadow Serializer.errors.
    errors = ProblemSerializer(many=True)  # type: ignore[assignment]


class ValidationResultSerializer(serializers.Serializer[Any]):
    valid = serializers.BooleanField()
    errors = ProblemSerializer(many=True)  # type: ignore[assignment]  # see ErrorSerializer


class VersionSerializer(serializers.ModelSerializer[PlaybookVersion]):
    """A version without its definition, as listed under its playbook."""

    author = serializers.SlugRelatedField[User](slug_field="username", read_only=True)
    published_by = serializers.SlugRelatedField[User](slug_field="username", read_only=True)

    class Meta:
        model = PlaybookVersion
        fields = [
            "number",
            "state",
            "content_hash",
            "author",
            "created_at",
            "published_at",
            "published_by",
            "retired_at",
        ]
        read_only_fields = fields


class VersionDetailSerializer(VersionSerializer):
    """A version with its definition and, when it was written as text, that text."""

    playbook = serializers.CharField(source="playbook.name", read_only=True)

    class Meta(VersionSerializer.Meta):
        fields = ["playbook", *VersionSerializer.Meta.fields, "definition", "source_text"]
        read_only_fields = fields


class PlaybookSerializer(serializers.ModelSerializer[Playbook]):
    """A playbook in the list: which version is active and which is the latest."""

    # Annotated by the view's queryset (the model's `active_version` is the row itself).
    active_version = serializers.IntegerField(
        source="active_number", read_only=True, allow_null=True
    )
    latest_version = serializers.IntegerField(
        source="latest_number", read_only=True, allow_null=True
    )

    class Meta:
        model = Playbook
        fields = ["name", "title", "description", "active_version", "latest_version", "created_at"]
        read_only_fields = fields


class PlaybookDetailSerializer(PlaybookSerializer):
    """A playbook with all its versions."""

    versions = VersionSerializer(many=True, read_only=True)

    class Meta(PlaybookSerializer.Meta):
        fields = [*PlaybookSerializer.Meta.fields, "versions"]
        read_only_fields = fields
