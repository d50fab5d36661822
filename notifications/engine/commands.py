"""What a client application drives remotely: organization-scoped operations and the command bus.

Every command on `notification.commands` (seed 004 §2.1) has a REST twin under
`/api/v1/admin/`; both validate with the same serializer and call the same service, so
there is one implementation of each operation. `command_execute` adds what the bus needs:
the organization from the body, idempotency by command id (the BusCommand row is written in
the transaction that ran the command, so a redelivery after a crash between commit and ack
answers the first result instead of acting twice), and an audit row with actor SYSTEM.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from rest_framework import serializers

from accounts.models import Membership, Organization
from common.api import DB_BIGINT_MAX
from common.exceptions import NotFound, TroubadourError, ValidationError
from notifications.enums import AuditAction, AuditActorType, AuditOutcome, PreferenceLevel
from notifications.models import BusCommand, Notification, NotificationAuditLog

from .cancel import MAX_IDS, notifications_cancel
from .audit import AuditActor
from .payloads import organization_resolve
from .subscribers import external_id_checked, subscriber_delete, subscriber_upsert

logger = logging.getLogger(__name__)

MAX_OPERATOR_IDS = 500


# --- operations that had no organization-scoped service yet ---------------------------------------


def subscriber_user_id(*, organization: Organization, external_id: str) -> int:
    external_id_checked(external_id)
    user_id = (
        Membership.objects.filter(organization=organization, external_id=external_id, user__is_active=True)
        .values_list("user_id", flat=True).first()
    )
    if user_id is None:
        raise NotFound(f"No subscriber {external_id!r} in this organization.")
    return user_id


def notification_acknowledge_in_organization(
    *, organization: Organization, notification_id: int, actor: AuditActor, by_external_id: str | None = None,
) -> dict[str, Any]:
    """Acknowledge one of the organization's notifications (stops its escalation), optionally
    on behalf of one of its subscribers. Another organization's notification is a 404."""
    from .ack import notification_acknowledge

    if not Notification.objects.filter(pk=notification_id, organization=organization).exists():
        raise NotFound("Notification not found.")
    user_id = subscriber_user_id(organization=organization, external_id=by_external_id) if by_external_id else None
    detail = f"{actor.label} ({actor.type})" + (f" for subscriber {by_external_id}" if by_external_id else "")
    notification = notification_acknowledge(notification_id=notification_id, source="api", user_id=user_id, detail=detail)
    acknowledged_at = notification.acknowledged_at
    return {"notification_id": notification.pk, "acknowledged_at": acknowledged_at.isoformat() if acknowledged_at else None}


def deliveries_retry(*, organization: Organization, delivery_ids: list[int], actor: AuditActor) -> dict[str, Any]:
    """Retry now each of these deliveries of the organization (all or nothing)."""
    from .retry import delivery_retry_now

    retried = []
    with transaction.atomic():
        for pk in sorted(set(delivery_ids)):
            delivery = delivery_retry_now(delivery_id=pk, organization_id=organization.pk, user_id=None)
            retried.append({"id": delivery.pk, "status": delivery.status})
    return {"deliveries": retried}


def dead_letters_replay_in_organization(*, organization: Organization, dead_letter_ids: list[int], actor: AuditActor) -> dict[str, Any]:
    from .retry import dead_letters_replay

    queued = dead_letters_replay(dead_letter_ids=dead_letter_ids, organization_id=organization.pk, user_id=None)
    return {"replayed": sorted(set(dead_letter_ids)), "delivery_ids": queued}


def subscriber_preferences_set(
    *, organization: Organization, external_id: str, items: list[dict[str, Any]], actor: AuditActor
) -> dict[str, Any]:
    """A subscriber's own preference rows (what the user would PUT on /api/v1/preferences/)."""
    from .preferences import preferences_replace

    user_id = subscriber_user_id(organization=organization, external_id=external_id)
    saved = preferences_replace(
        level=PreferenceLevel.USER, items=items, user_id=user_id, actor_type=actor.type, actor_id=actor.id[:100],
        actor_label=actor.label[:200], audit_organization_id=organization.pk,
    )
    return {"external_id": external_id, "user_id": user_id, "preference_ids": [p.pk for p in saved]}


# --- input shapes, shared by the REST twins and the bus ---------------------------------------------

def _id() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=DB_BIGINT_MAX)


class ExternalIdSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=255, trim_whitespace=False)


class CancelSerializer(serializers.Serializer):
    notification_ids = serializers.ListField(child=_id(), required=False, allow_empty=False, max_length=MAX_IDS)
    deduplication_key = serializers.CharField(required=False, max_length=255)
    correlation_id = serializers.CharField(required=False, max_length=100)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [k for k in ("notification_ids", "deduplication_key", "correlation_id") if attrs.get(k)]
        if len(given) != 1:
            raise serializers.ValidationError("Give exactly one of notification_ids, deduplication_key or correlation_id.")
        return attrs


class AcknowledgeSerializer(serializers.Serializer):
    notification_id = serializers.IntegerField(min_value=1, max_value=DB_BIGINT_MAX)
    by_external_id = serializers.CharField(required=False, allow_blank=True, max_length=255, trim_whitespace=False)


class DeliveryIdsSerializer(serializers.Serializer):
    delivery_ids = serializers.ListField(child=_id(), allow_empty=False, max_length=MAX_OPERATOR_IDS)


class DeadLetterIdsSerializer(serializers.Serializer):
    dead_letter_ids = serializers.ListField(child=_id(), allow_empty=False, max_length=MAX_OPERATOR_IDS)


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise ValidationError(serializer.errors)
    return dict(serializer.validated_data)


def preference_items(body: Any) -> list[dict[str, Any]]:
    """The body of PUT /api/v1/preferences/ — {"preferences": [...]} or the list itself — validated."""
    from notifications.serializers_intake import PreferencesPutSerializer

    data = {"preferences": body} if isinstance(body, list) else body
    return [dict(i) for i in validated(PreferencesPutSerializer, data)["preferences"]]


# --- the command registry ----------------------------------------------------------------------------

Handler = Callable[[Organization, Mapping[str, Any], AuditActor], dict[str, Any]]


def _subscriber_upsert(organization: Organization, body: Mapping[str, Any], actor: AuditActor) -> dict[str, Any]:
    external_id = validated(ExternalIdSerializer, body)["external_id"]
    fields = {k: v for k, v in body.items() if k not in ("external_id", "organization_id", "command_id")}
    sub = subscriber_upsert(organization=organization, external_id=external_id, fields=fields, actor=actor, source="command")
    # No addresses in the answer: it is stored (replayed on redelivery) and audited, and must
    # not outlive the subscriber's deletion.
    return {"id": sub.id, "external_id": sub.external_id, "status": sub.status, "created": sub.status == "created"}


def _subscriber_delete(organization: Organization, body: Mapping[str, Any], actor: AuditActor) -> dict[str, Any]:
    external_id = validated(ExternalIdSerializer, body)["external_id"]
    return subscriber_delete(organization=organization, external_id=external_id, actor=actor, source="command")


def _notification_cancel(organization: Organization, body: Mapping[str, Any], actor: AuditActor) -> dict[str, Any]:
    data = validated(CancelSerializer, body)
    return notifications_cancel(organization=organization, actor=actor, **data)


def _notification_acknowledge(organization: Organization, body: Mapping[str, Any], actor: AuditActor) -> dict[str, Any]:
    data = validated(AcknowledgeSerializer, body)
    return notification_acknowledge_in_organization(
        organization=organization, notification_id=data["notification_id"], by_external_id=data.get("by_external_id") or None,
        actor=actor,
    )


def _delivery_retry(organization: Organization, body: Mapping[str, Any], actor: AuditActor) -> dict[str, Any]:
    return deliveries_retry(organization=organization, delivery_ids=validated(DeliveryIdsSerializer, body)["delivery_ids"], actor=actor)


def _dead_letter_replay(organization: Organization, body: Mapping[str, Any], actor: AuditActor) -> dict[str, Any]:
    ids = validated(DeadLetterIdsSerializer, body)["dead_letter_ids"]
    return dead_letters_replay_in_organization(organization=organization, dead_letter_ids=ids, actor=actor)


def _preferences_set(organization: Organization, body: Mapping[str, Any], actor: AuditActor) -> dict[str, Any]:
    external_id = validated(ExternalIdSerializer, body)["external_id"]
    if "preferences" not in body:
        raise ValidationError({"preferences": ["This field is required."]})
    items = preference_items(body["preferences"])
    return subscriber_preferences_set(organization=organization, external_id=external_id, items=items, actor=actor)


COMMANDS: dict[str, Handler] = {
    "subscriber.upsert": _subscriber_upsert,
    "subscriber.delete": _subscriber_delete,
    "notification.cancel": _notification_cancel,
    "notification.acknowledge": _notification_acknowledge,
    "delivery.retry": _delivery_retry,
    "dead_letter.replay": _dead_letter_replay,
    "preferences.set": _preferences_set,
}


@dataclass
class CommandOutcome:
    name: str
    command_id: str
    organization_id: int
    result: dict[str, Any]
    replayed: bool = False


def _command_id(body: Mapping[str, Any], message_id: str | None) -> str:
    raw = body.get("command_id") or message_id
    if not isinstance(raw, (str, int)) or isinstance(raw, bool) or not str(raw).strip():
        raise ValidationError(
            {"command_id": ["Required: a command_id field or the AMQP message_id property (it makes redelivery harmless)."]},
            code="missing_command_id",
        )
    value = str(raw).strip()
    if len(value) > 255:
        raise ValidationError({"command_id": ["At most 255 characters."]})
    return value


def command_execute(*, name: str, body: Any, message_id: str | None = None) -> CommandOutcome:
    """Run one bus command in one transaction; raise TroubadourError for a command that cannot run.

    A command id seen before in the organization answers the stored result without acting.
    """
    if name not in COMMANDS:
        raise ValidationError({"command": [f"Unknown command {name!r}. Known: {', '.join(sorted(COMMANDS))}."]},
                              code="unknown_command")
    if not isinstance(body, Mapping):
        raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
    organization = organization_resolve(body.get("organization_id"))
    actor = AuditActor(type=AuditActorType.SYSTEM, id="", label=f"command {name}")
    command_id = ""
    try:
        command_id = _command_id(body, message_id)
        actor.id = command_id[:100]
        with transaction.atomic():
            done = BusCommand.objects.filter(organization=organization, command_id=command_id).first()
            if done is not None:
                return CommandOutcome(name=done.name, command_id=command_id, organization_id=organization.pk,
                                      result=done.result, replayed=True)
            result = COMMANDS[name](organization, body, actor)
            BusCommand.objects.create(organization=organization, command_id=command_id, name=name, result=result)
            NotificationAuditLog.objects.create(
                organization=organization, action=AuditAction.COMMAND_EXECUTED, actor_type=actor.type,
                actor_id=actor.id, actor_label=actor.label, details={"command": name, "command_id": command_id, "result": result},
            )
    except TroubadourError as exc:
        NotificationAuditLog.objects.create(
            organization=organization, action=AuditAction.COMMAND_FAILED, outcome=AuditOutcome.FAILURE,
            actor_type=actor.type, actor_id=actor.id, actor_label=actor.label,
            details={"command": name, "command_id": command_id}, error_message=str(exc.detail)[:2000],
        )
        raise
    return CommandOutcome(name=name, command_id=command_id, organization_id=organization.pk, result=result)
