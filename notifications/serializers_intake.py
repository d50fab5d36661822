"""Serializers of the intake side: events, preferences, quiet hours, presence, traces."""
from __future__ import annotations

from typing import Any, ClassVar, cast

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api import DB_BIGINT_MAX
from notifications.enums import (
    Channel,
    Criticality,
    DigestFrequency,
    EventCategory,
    PreferenceLevel,
    PreferenceScope,
    PresenceStatus,
    QuietHoursAction,
)
from notifications.models import NotificationPreference, QuietHours

# --- events -------------------------------------------------------------------------------------


class ActorSerializer(serializers.Serializer):
    id = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=100)
    type = serializers.CharField(required=False, allow_blank=True, max_length=20)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)


class ResourceSerializer(serializers.Serializer):
    id = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=100)
    type = serializers.CharField(required=False, allow_blank=True, max_length=50)
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)


class BareRecipientSerializer(serializers.Serializer):
    """A recipient given by address, or a subscriber named by the client's own `external_id`
    (with an address, an unknown one is created on the fly)."""

    external_id = serializers.CharField(required=False, max_length=255, trim_whitespace=False)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=20)
    locale = serializers.CharField(required=False, allow_blank=True, max_length=10)
    timezone = serializers.CharField(required=False, allow_blank=True, max_length=64)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    display_name = serializers.CharField(required=False, allow_blank=True, max_length=150)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("external_id") and not attrs.get("email") and not attrs.get("phone"):
            raise serializers.ValidationError("An external_id, an email or a phone number is required.")
        return attrs


@extend_schema_field({
    "type": "object",
    "description": "Options per channel (IN_APP, EMAIL, PUSH, SMS, WHATSAPP, VOICE), merged over the template's; "
                   "unknown keys are refused. See API.md \"Channel options on an event\".",
    "additionalProperties": {"type": "object"},
})
class ChannelOptionsField(serializers.Field):
    """`channel_options`: checked by the engine (notifications.engine.channel_options), errors keyed by channel."""

    def to_internal_value(self, data: Any) -> dict[str, dict[str, Any]]:
        from common.exceptions import ValidationError
        from notifications.engine.channel_options import channel_options_clean

        try:
            return channel_options_clean(data)
        except ValidationError as exc:
            # channel_options_clean keys its errors under "channel_options".
            raise serializers.ValidationError(cast(dict[str, Any], exc.detail)["channel_options"]) from None

    def to_representation(self, value: Any) -> Any:
        return value


class EventInSerializer(serializers.Serializer):
    """The body of POST /api/v1/events/ and of an AMQP event, after normalization."""

    type = serializers.CharField(max_length=100)
    recipient_ids = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list, max_length=10_000)
    recipients = BareRecipientSerializer(many=True, required=False, default=list)
    audience = serializers.JSONField(
        required=False, allow_null=True,
        help_text='Instead of recipients: {"organization": true}, {"team": id}, {"project": id} or {"topic": "key"}.',
    )
    category = serializers.ChoiceField(choices=EventCategory.choices, required=False, allow_null=True)
    actor = ActorSerializer(required=False, allow_null=True)
    resource = ResourceSerializer(required=False, allow_null=True)
    organization_id = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=100)
    team_id = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=40)
    project_id = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=40)
    criticality = serializers.ChoiceField(choices=Criticality.choices, required=False, allow_null=True)
    channels = serializers.ListField(child=serializers.ChoiceField(choices=Channel.choices), required=False, allow_null=True, allow_empty=True)
    data = serializers.DictField(required=False, default=dict)  # type: ignore[assignment]  # a declared field, not Serializer.data
    metadata = serializers.DictField(required=False, default=dict)
    deduplication_key = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=255)
    correlation_id = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=100)
    scheduled_for = serializers.DateTimeField(required=False, allow_null=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    channel_options = ChannelOptionsField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("audience") is not None:
            if attrs.get("recipient_ids") or attrs.get("recipients"):
                raise serializers.ValidationError({"audience": ["Give either an audience or recipients, not both."]})
            return attrs
        if not attrs.get("recipient_ids") and not attrs.get("recipients"):
            raise serializers.ValidationError({"recipient_ids": ["At least one recipient is required."]})
        return attrs


class EmittedNotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    recipient_id = serializers.CharField(allow_null=True)
    status = serializers.CharField()


class EventOutSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    notifications = EmittedNotificationSerializer(many=True)
    batch_job_id = serializers.IntegerField(required=False, help_text="An audience fanned out in chunks: its batch job.")


# --- preferences ------------------------------------------------------------------------------------


class ChannelPreferenceInSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(required=False)
    only_when_offline = serializers.BooleanField(required=False)
    digest_frequency = serializers.ChoiceField(choices=DigestFrequency.choices, required=False)
    # When the digest goes out, in the user's own time zone (default 08:00; weekly: Monday).
    digest_hour = serializers.IntegerField(min_value=0, max_value=23, required=False, allow_null=True)
    digest_day_of_week = serializers.IntegerField(min_value=0, max_value=6, required=False, allow_null=True)


_CHANNEL_PREFERENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "enabled": {"type": "boolean"},
        "only_when_offline": {"type": "boolean"},
        "digest_frequency": {"type": "string", "enum": list(DigestFrequency.values)},
        "digest_hour": {"type": "integer", "minimum": 0, "maximum": 23, "nullable": True},
        "digest_day_of_week": {"type": "integer", "minimum": 0, "maximum": 6, "nullable": True},
    },
}


@extend_schema_field({
    "oneOf": [
        {"type": "object", "additionalProperties": _CHANNEL_PREFERENCE_SCHEMA,
         "description": "Keyed by channel (" + ", ".join(Channel.values) + ")."},
        {"type": "array", "items": {**_CHANNEL_PREFERENCE_SCHEMA, "required": ["channel"], "properties": {
            "channel": {"type": "string", "enum": list(Channel.values)}, **_CHANNEL_PREFERENCE_SCHEMA["properties"],
        }}},
    ],
})
class ChannelsField(serializers.Field):
    """`{"EMAIL": {"enabled": false}}`, or `[{"channel": "EMAIL", "enabled": false}]`; `{"EMAIL": null}` drops it."""

    # DRF formats these with str.format(): literal braces are doubled.
    default_error_messages: ClassVar[dict[str, Any]] = {"invalid": "Expected an object keyed by channel, or a list of {{channel, …}}."}

    def to_internal_value(self, data: Any) -> dict[str, dict[str, Any]]:
        if isinstance(data, list):
            pairs = []
            for item in data:
                if not isinstance(item, dict) or "channel" not in item:
                    self.fail("invalid")
                pairs.append((item["channel"], {k: v for k, v in item.items() if k != "channel"}))
        elif isinstance(data, dict):
            pairs = list(data.items())
        else:
            self.fail("invalid")
        out: dict[str, dict[str, Any]] = {}
        errors: dict[str, Any] = {}
        for channel, cfg in pairs:
            if channel not in Channel.values:
                errors[str(channel)] = [f"Unknown channel. Valid: {', '.join(Channel.values)}."]
                continue
            if cfg is None:  # drop this row's setting for the channel: the levels above decide again
                out[channel] = None
                continue
            if isinstance(cfg, bool):
                cfg = {"enabled": cfg}
            s = ChannelPreferenceInSerializer(data=cfg)
            if not s.is_valid():
                errors[channel] = s.errors
                continue
            out[channel] = dict(s.validated_data)
        if errors:
            raise serializers.ValidationError(errors)
        return out

    def to_representation(self, value: Any) -> Any:
        return value


class PreferenceInSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=PreferenceScope.choices, required=False, default=PreferenceScope.ALL)
    category = serializers.ChoiceField(choices=EventCategory.choices, required=False, allow_blank=True)
    event_type = serializers.CharField(required=False, allow_blank=True, max_length=100)
    enabled = serializers.BooleanField(required=False)
    min_criticality = serializers.ChoiceField(choices=Criticality.choices, required=False)
    critical_override = serializers.BooleanField(required=False)
    locked = serializers.BooleanField(
        required=False, help_text="Organization, team and project levels: members cannot override this row. Ignored for a user's own rows."
    )
    channels = ChannelsField(required=False)
    delete = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        scope = attrs.get("scope")
        # A category or an event type given without a scope says which scope is meant.
        if scope == PreferenceScope.ALL and attrs.get("event_type"):
            scope = attrs["scope"] = PreferenceScope.EVENT_TYPE
        elif scope == PreferenceScope.ALL and attrs.get("category"):
            scope = attrs["scope"] = PreferenceScope.CATEGORY
        if scope == PreferenceScope.CATEGORY and not attrs.get("category"):
            raise serializers.ValidationError({"category": ["Required for a CATEGORY preference."]})
        if scope == PreferenceScope.EVENT_TYPE and not attrs.get("event_type"):
            raise serializers.ValidationError({"event_type": ["Required for an EVENT_TYPE preference."]})
        return attrs


class PreferencesPutSerializer(serializers.Serializer):
    # many=True makes a ListSerializer, which takes max_length (the stubs type the child's arguments).
    preferences = PreferenceInSerializer(many=True, allow_empty=True, max_length=500)  # type: ignore[call-arg]


class AdminPreferencesPutSerializer(PreferencesPutSerializer):
    level = serializers.ChoiceField(choices=[
        (PreferenceLevel.ORGANIZATION, "Organization"), (PreferenceLevel.TEAM, "Team"), (PreferenceLevel.PROJECT, "Project"),
    ])
    team_id = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=DB_BIGINT_MAX)
    project_id = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=DB_BIGINT_MAX)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        level = attrs["level"]
        if level == PreferenceLevel.TEAM and not attrs.get("team_id"):
            raise serializers.ValidationError({"team_id": ["Required for TEAM preferences."]})
        if level == PreferenceLevel.PROJECT and not attrs.get("project_id"):
            raise serializers.ValidationError({"project_id": ["Required for PROJECT preferences."]})
        return attrs


class PreferenceOutSerializer(serializers.ModelSerializer):
    channels = serializers.SerializerMethodField()

    class Meta:
        model = NotificationPreference
        fields = (
            "id", "level", "organization", "team", "project", "user", "scope", "category", "event_type",
            "enabled", "min_criticality", "critical_override", "locked", "channels", "updated_at",
        )

    def get_channels(self, obj: NotificationPreference) -> dict[str, dict[str, Any]]:
        return {
            cp.channel: {"enabled": cp.enabled, "only_when_offline": cp.only_when_offline, "digest_frequency": cp.digest_frequency,
                         "digest_hour": cp.digest_hour, "digest_day_of_week": cp.digest_day_of_week}
            for cp in obj.channel_preferences.all()
        }


# --- quiet hours and presence ---------------------------------------------------------------------------


class QuietScheduleSerializer(serializers.Serializer):
    days_of_week = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=6), required=False, allow_empty=False)
    start = serializers.TimeField()
    end = serializers.TimeField()


class QuietRuleSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    action = serializers.ChoiceField(choices=QuietHoursAction.choices)
    allow_critical = serializers.BooleanField(required=False, default=True)


class QuietHoursPutSerializer(serializers.Serializer):
    timezone = serializers.CharField(required=False, allow_blank=True, max_length=64)
    enabled = serializers.BooleanField(required=False, default=True)
    default_action = serializers.ChoiceField(choices=QuietHoursAction.choices, required=False, default=QuietHoursAction.HOLD)
    allow_critical = serializers.BooleanField(required=False, default=True)
    schedules = QuietScheduleSerializer(many=True, required=False, default=list)
    channel_rules = QuietRuleSerializer(many=True, required=False, default=list)


class QuietHoursOutSerializer(serializers.ModelSerializer):
    schedules = serializers.SerializerMethodField()
    channel_rules = serializers.SerializerMethodField()

    class Meta:
        model = QuietHours
        fields = (
            "id", "timezone", "enabled", "dnd_until", "default_action", "allow_critical", "schedules", "channel_rules", "updated_at",
        )

    def get_schedules(self, obj: QuietHours) -> list[dict[str, Any]]:
        return [
            {"id": s.pk, "days_of_week": s.days_of_week, "start": s.start_time.strftime("%H:%M"), "end": s.end_time.strftime("%H:%M")}
            for s in obj.schedules.all()
        ]

    def get_channel_rules(self, obj: QuietHours) -> list[dict[str, Any]]:
        return [{"channel": r.channel, "action": r.action, "allow_critical": r.allow_critical} for r in obj.channel_rules.all()]


class DndSerializer(serializers.Serializer):
    until = serializers.DateTimeField(allow_null=True)


class HeartbeatSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=PresenceStatus.choices, required=False, default=PresenceStatus.ONLINE)
    device_type = serializers.CharField(required=False, allow_blank=True, max_length=20, default="")
    connection_id = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
