"""Audiences (an organization, a team, a project's team or a named topic) and topics.

An event may name its recipients by audience instead of listing them:

    "audience": {"organization": true} | {"team": <id>} | {"project": <id>} | {"topic": "<key>"}

(``team_id``/``project_id`` are accepted for ``team``/``project``). The audience is resolved
to the organization's current members, in user-id order, always inside the caller's
organization: another organization's team, project or topic is "unknown" — the same answer
as one that does not exist. Topics and their subscribers are managed through
``/api/v1/admin/topics/`` (notifications.api.topics); a subscription belongs to a membership,
so leaving the organization ends it.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from batchjobs.models import BatchJobType
from batchjobs.services import batch_job_create
from common.publish import tasks_publish_on_commit

from accounts.models import Membership, Organization, Project, Team
from common.exceptions import NotFound, ValidationError
from notifications.models import Topic, TopicSubscription
from notifications.models.audiences import TOPIC_KEY_VALIDATOR

from .audit import AuditActor

AUDIENCE_KINDS = ("organization", "team", "project", "topic")
MAX_SUBSCRIBERS_PER_CALL = 10_000


@dataclass(frozen=True)
class Audience:
    kind: str  # one of AUDIENCE_KINDS
    id: int | None = None  # team id, the project's team id, or topic id
    label: str = ""  # what the caller named (for the job record and the audit trail)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Audience:
        return cls(kind=str(data["kind"]), id=data.get("id"), label=str(data.get("label") or ""))


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def audience_clean(*, organization: Organization, audience: Any) -> Audience:
    """Validate an event's ``audience`` against the caller's organization (400 with field errors)."""
    if not isinstance(audience, Mapping):
        raise ValidationError({"audience": ["Expected an object: {\"organization\": true}, {\"team\": id}, "
                                            "{\"project\": id} or {\"topic\": \"key\"}."]})
    given = {("team" if k == "team_id" else "project" if k == "project_id" else k): v for k, v in audience.items()}
    unknown = sorted(k for k in given if k not in AUDIENCE_KINDS)
    if unknown:
        raise ValidationError({"audience": {k: ["Unknown audience kind."] for k in unknown}})
    named = [k for k in AUDIENCE_KINDS if k in given]
    if len(named) != 1:
        raise ValidationError({"audience": [f"Expected exactly one of {', '.join(AUDIENCE_KINDS)}."]})
    kind, value = named[0], given[named[0]]
    if kind == "organization":
        if value is not True:
            raise ValidationError({"audience": {"organization": ["Expected true."]}})
        return Audience(kind="organization", label=organization.slug)
    if kind == "topic":
        if not isinstance(value, str) or not value:
            raise ValidationError({"audience": {"topic": ["Expected a topic key."]}})
        topic = Topic.objects.filter(organization=organization, key=value).values_list("pk", flat=True).first()
        if topic is None:
            raise ValidationError({"audience": {"topic": [f"Unknown topic {value!r} in this organization."]}})
        return Audience(kind="topic", id=topic, label=value)
    pk = _int(value)
    if pk is None:
        raise ValidationError({"audience": {kind: [f"Expected a {kind} id."]}})
    if kind == "team":
        if not Team.objects.filter(pk=pk, organization=organization).exists():
            raise ValidationError({"audience": {"team": [f"Unknown team {pk} in this organization."]}})
        return Audience(kind="team", id=pk, label=str(pk))
    project = Project.objects.filter(pk=pk, organization=organization).values("team_id").first()
    if project is None:
        raise ValidationError({"audience": {"project": [f"Unknown project {pk} in this organization."]}})
    if project["team_id"] is None:
        raise ValidationError({"audience": {"project": [f"Project {pk} has no team: it has no audience."]}})
    return Audience(kind="project", id=project["team_id"], label=str(pk))


def audience_memberships(*, organization_id: int, audience: Audience) -> QuerySet[Membership]:
    """The organization's active members in the audience (not ordered)."""
    qs = Membership.objects.filter(organization_id=organization_id, user__is_active=True)
    if audience.kind in ("team", "project"):
        qs = qs.filter(teams=audience.id)
    elif audience.kind == "topic":
        # A topic audience always carries its topic id (audience_clean sets it; from_dict reads as_dict back).
        qs = qs.filter(topic_subscriptions__topic_id=cast(int, audience.id))
    return qs


def audience_count(*, organization_id: int, audience: Audience) -> int:
    return audience_memberships(organization_id=organization_id, audience=audience).count()


def audience_user_ids(*, organization_id: int, audience: Audience, after: int = 0, limit: int | None = None) -> list[int]:
    """User ids of the audience above ``after``, in id order (the fan-out's cursor)."""
    qs = (audience_memberships(organization_id=organization_id, audience=audience)
          .filter(user_id__gt=after).order_by("user_id").values_list("user_id", flat=True))
    return list(qs[:limit] if limit else qs)


# --- audience events ------------------------------------------------------------------------------


def _inline_max() -> int:
    return int(getattr(settings, "FANOUT_INLINE_MAX", 1000))


def audience_event(
    *, organization: Organization, audience: Audience, event: dict[str, Any], source: str, audit_actor: AuditActor,
    size_check: Callable[[int], None] | None = None,
) -> tuple[list[int] | None, Any]:
    """(user ids, None) for an audience small enough to take in now; (None, (job id, event id))
    once a bigger one's batch job is recorded (engine.fanout_jobs runs its chunks after commit).
    ``size_check(count)`` may refuse the event for its audience's size (a 400, nothing saved)."""
    total = audience_count(organization_id=organization.pk, audience=audience)
    if total == 0:
        raise ValidationError({"audience": [f"The {audience.kind} audience has no member."]})
    if size_check is not None:
        size_check(total)
    if total <= _inline_max():
        return audience_user_ids(organization_id=organization.pk, audience=audience), None
    event_id = uuid.uuid4()
    job = batch_job_create(
        organization=organization, job_type=BatchJobType.EVENT_FANOUT, total_count=total, event_id=event_id,
        metadata={"source": source, "fanout": {
            "audience": audience.as_dict(), "event": event, "source": source,
            "actor": {"type": audit_actor.type, "id": audit_actor.id, "label": audit_actor.label},
            "cursor": 0, "written": 0, "chunks": 0, "done": False, "heartbeat": timezone.now().isoformat(),
        }},
    )
    tasks_publish_on_commit("notifications.fanout_run", calls=[[job.pk]])
    return None, (job.pk, event_id)


# --- topics ---------------------------------------------------------------------------------------


def topic_get(*, organization: Organization, key: str) -> Topic:
    topic = Topic.objects.filter(organization=organization, key=key).first()
    if topic is None:
        raise NotFound("Topic not found.")
    return topic


def _topic_fields(data: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    if not partial or "key" in data:
        key = data.get("key")
        if not isinstance(key, str) or not key:
            errors["key"] = ["This field is required."]
        else:
            try:
                TOPIC_KEY_VALIDATOR(key)
                out["key"] = key
            except DjangoValidationError as exc:
                errors["key"] = list(exc.messages)
    for name, limit in (("name", 200), ("description", 5000)):
        if name in data:
            value = data.get(name)
            if value is None:
                value = ""
            if not isinstance(value, str):
                errors[name] = ["Expected a string."]
            elif len(value) > limit:
                errors[name] = [f"At most {limit} characters."]
            else:
                out[name] = value
    unknown = sorted(set(data) - {"key", "name", "description"})
    for name in unknown:
        errors[name] = ["Unknown field."]
    if errors:
        raise ValidationError(errors)
    return out


def topic_create(*, organization: Organization, data: Mapping[str, Any]) -> Topic:
    fields = _topic_fields(data, partial=False)
    try:
        with transaction.atomic():
            return Topic.objects.create(organization=organization, **fields)
    except IntegrityError:
        raise ValidationError({"key": [f"A topic {fields['key']!r} already exists in this organization."]}) from None


def topic_update(*, organization: Organization, key: str, data: Mapping[str, Any]) -> Topic:
    topic = topic_get(organization=organization, key=key)
    fields = _topic_fields(data, partial=True)
    for name, value in fields.items():
        setattr(topic, name, value)
    try:
        with transaction.atomic():
            topic.save()
    except IntegrityError:
        raise ValidationError({"key": [f"A topic {fields['key']!r} already exists in this organization."]}) from None
    return topic


def topic_delete(*, organization: Organization, key: str) -> None:
    topic_get(organization=organization, key=key).delete()


def _memberships_named(*, organization: Organization, data: Any) -> list[int]:
    """Membership ids named by ``user_ids`` and/or ``external_ids`` (all unknown ones listed in a 400)."""
    if not isinstance(data, Mapping):
        raise ValidationError({"non_field_errors": ["Expected {\"user_ids\": [...], \"external_ids\": [...]}."]})
    errors: dict[str, list[str]] = {}
    user_ids_raw, external_raw = data.get("user_ids") or [], data.get("external_ids") or []
    for name, value in (("user_ids", user_ids_raw), ("external_ids", external_raw)):
        if not isinstance(value, Sequence) or isinstance(value, str | bytes):
            errors[name] = ["Expected a list."]
    if errors:
        raise ValidationError(errors)
    if not user_ids_raw and not external_raw:
        raise ValidationError({"user_ids": ["Name at least one member by user_ids or external_ids."]})
    if len(user_ids_raw) + len(external_raw) > MAX_SUBSCRIBERS_PER_CALL:
        raise ValidationError({"user_ids": [f"At most {MAX_SUBSCRIBERS_PER_CALL} per call."]})
    user_ids = [_int(v) for v in user_ids_raw]
    bad = [str(raw) for raw, v in zip(user_ids_raw, user_ids, strict=True) if v is None]
    external_ids = [str(v) for v in external_raw if isinstance(v, str | int) and not isinstance(v, bool)]
    bad_external = [str(v) for v in external_raw if not (isinstance(v, str | int) and not isinstance(v, bool))]
    found: dict[str, int] = {}
    rows = Membership.objects.filter(organization=organization)
    by_user = dict(rows.filter(user_id__in=[v for v in user_ids if v is not None]).values_list("user_id", "pk"))
    by_external = dict(rows.filter(external_id__in=external_ids).values_list("external_id", "pk")) if external_ids else {}
    bad += [str(v) for v in user_ids if v is not None and v not in by_user]
    bad_external += [v for v in external_ids if v not in by_external]
    if bad:
        errors["user_ids"] = [f"Unknown member(s) of this organization: {', '.join(dict.fromkeys(bad))}."]
    if bad_external:
        errors["external_ids"] = [f"Unknown subscriber(s) of this organization: {', '.join(dict.fromkeys(bad_external))}."]
    if errors:
        raise ValidationError(errors)
    found.update({f"u:{k}": v for k, v in by_user.items()})
    found.update({f"x:{k}": v for k, v in by_external.items()})
    return sorted(set(found.values()))


def topic_subscribe(*, organization: Organization, key: str, data: Any) -> int:
    """Subscribe members (idempotent); returns how many were added."""
    topic = topic_get(organization=organization, key=key)
    memberships = _memberships_named(organization=organization, data=data)
    before = TopicSubscription.objects.filter(topic=topic).count()
    TopicSubscription.objects.bulk_create(
        [TopicSubscription(topic=topic, membership_id=pk) for pk in memberships], ignore_conflicts=True, batch_size=2000
    )
    return TopicSubscription.objects.filter(topic=topic).count() - before


def topic_unsubscribe(*, organization: Organization, key: str, data: Any) -> int:
    topic = topic_get(organization=organization, key=key)
    memberships = _memberships_named(organization=organization, data=data)
    deleted, _ = TopicSubscription.objects.filter(topic=topic, membership_id__in=memberships).delete()
    return deleted


def topic_subscribers(*, organization: Organization, key: str) -> QuerySet:
    topic = topic_get(organization=organization, key=key)
    return (TopicSubscription.objects.filter(topic=topic, membership__organization=organization)
            .order_by("membership__user_id")
            .values("membership__user_id", "membership__external_id", "membership__user__display_name", "created_at"))
