"""Reading an event's input for intake: date-times, ids and channel lists, its recipients
(organization members by id, bare addresses, subscribers by external id, each with its own
data and resource overrides) and its team/project context. All errors at once, as 400s."""
from __future__ import annotations

import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from common.query import id_array
from accounts.models import Organization, Project, Team
from common.exceptions import ValidationError
from common.links import link_problem
from common.sealing import is_sealed
from notifications.enums import (
    Channel,
)

from .audit import AuditActor
from .routing import Recipient



# --- validation helpers ------------------------------------------------------------------------


def _as_datetime(value: Any, *, field_name: str) -> datetime | None:
    if value in (None, ""):
        return None
    parsed: datetime | None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            raise ValidationError({field_name: [f"Expected an ISO 8601 date-time, got {value!r}."]})
    else:
        raise ValidationError({field_name: ["Expected an ISO 8601 date-time."]})
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def _as_id(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _channels(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise ValidationError({"channels": ["Expected a list of channels."]})
    unknown = [c for c in value if c not in Channel.values]
    if unknown:
        raise ValidationError({"channels": [f"Unknown channel(s): {', '.join(map(str, unknown))}. Valid: {', '.join(Channel.values)}."]})
    return list(dict.fromkeys(value))


@dataclass(frozen=True)
class RecipientOverride:
    """What one bare recipient brings on top of the event: its own `data` keys and `resource`.

    Lets one event carry what differs per recipient (an invitee's own link) without one event
    per recipient: `data` is merged over the event's data, `resource` over its resource.
    """

    data: dict[str, Any]
    resource: dict[str, Any]


def _link_errors(data: Mapping[str, Any], *, prefix: str) -> dict[str, Any]:
    """Field errors of the links in an event's data that end in an href (see common.links)."""
    errors: dict[str, Any] = {}
    for key, value in data.items():
        # action_url, actionUrl, inviteUrl, image_url…: whatever a template may put in an href.
        # A sealed value (common.sealing: an invitation link waiting for the worker) is opened only
        # at render time, where the rendered links are checked again.
        if isinstance(key, str) and key.lower().endswith("url") and not is_sealed(value):
            problem = link_problem(value)
            if problem:
                errors.setdefault(prefix, {})[key] = [problem]
    return errors


def _bare_recipients(items: Sequence[Mapping[str, Any]]) -> tuple[list[Recipient], list[RecipientOverride | None]]:
    """Validate bare addresses ({email?, phone?, locale?, timezone?, name?, data?, resource?}); all errors at once.

    Returns the recipients and, aligned with them, each one's override (None when it has none).
    """
    errors: dict[str, dict[str, list[str]]] = {}
    out: list[Recipient] = []
    overrides: list[RecipientOverride | None] = []
    seen: set[tuple[str, str]] = set()
    languages = {code for code, _ in settings.LANGUAGES}
    for index, item in enumerate(items):
        item_errors: dict[str, list[str]] = {}
        if not isinstance(item, Mapping):
            errors[str(index)] = {"non_field_errors": ["Expected an object with an email and/or a phone."]}
            continue
        email = str(item.get("email") or "").strip().lower()
        phone = str(item.get("phone") or "").strip()
        if not email and not phone:
            item_errors["non_field_errors"] = ["An email or a phone number is required."]
        if email:
            try:
                validate_email(email)
            except DjangoValidationError:
                item_errors["email"] = [f"Not a valid email address: {email!r}."]
        if phone:
            try:
                parsed = phonenumbers.parse(phone, None)
                if not phonenumbers.is_valid_number(parsed):
                    raise phonenumbers.NumberParseException(0, "invalid")
                phone = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            except phonenumbers.NumberParseException:
                item_errors["phone"] = [f"Not a valid E.164 phone number: {phone!r}."]
        locale = str(item.get("locale") or "").strip()
        if locale and locale.split("-")[0].lower() not in languages:
            item_errors["locale"] = [f"Unsupported locale {locale!r}; use one of {', '.join(sorted(languages))}."]
        tz_name = str(item.get("timezone") or "").strip()
        if tz_name:
            try:
                zoneinfo.ZoneInfo(tz_name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                item_errors["timezone"] = [f"Unknown time zone {tz_name!r}."]
        own_data, own_resource = item.get("data"), item.get("resource")
        if own_data is not None and not isinstance(own_data, Mapping):
            item_errors["data"] = ["Expected an object."]
        if own_resource is not None and not isinstance(own_resource, Mapping):
            item_errors["resource"] = ["Expected an object."]
        if isinstance(own_data, Mapping):
            item_errors.update(_link_errors(own_data, prefix="data"))
        if item_errors:
            errors[str(index)] = item_errors
            continue
        if (email, phone) in seen:
            continue
        seen.add((email, phone))
        out.append(
            Recipient(
                key=f"a:{email or phone}", email=email, phone=phone, locale=locale.split("-")[0].lower() if locale else "",
                timezone=tz_name, name=str(item.get("name") or "")[:200],
            )
        )
        overrides.append(
            RecipientOverride(data=dict(own_data or {}), resource=dict(own_resource or {})) if own_data or own_resource else None
        )
    if errors:
        raise ValidationError({"recipients": errors})
    return out, overrides


def _user_recipients(*, organization: Organization, recipient_ids: Sequence[Any]) -> list[Recipient]:
    """Members of the organization, in request order; unknown ids are a 400 listing them all."""
    wanted: list[int] = []
    seen: set[int] = set()
    unknown: list[str] = []
    for raw in recipient_ids:
        pk = _as_id(raw)
        if pk is None:
            unknown.append(str(raw))
        elif pk not in seen:
            seen.add(pk)
            wanted.append(pk)
    rows = {}
    if wanted:
        User = get_user_model()
        rows = {
            row["id"]: row
            for row in User.objects.filter(pk__any=id_array(wanted), is_active=True, memberships__organization=organization).values(
                "id", "email", "phone", "locale", "timezone", "display_name", "username"
            )
        }
    unknown += [str(pk) for pk in wanted if pk not in rows]
    if unknown:
        raise ValidationError(
            {"recipient_ids": [f"Unknown recipient(s) in this organization: {', '.join(unknown)}."]}, code="unknown_recipients"
        )
    return [
        Recipient(
            key=f"u:{pk}", user_id=pk, email=rows[pk]["email"] or "", phone=rows[pk]["phone"] or "",
            locale=rows[pk]["locale"] or "", timezone=rows[pk]["timezone"] or "UTC",
            name=rows[pk]["display_name"] or rows[pk]["username"],
        )
        for pk in wanted
    ]


def _subscriber_recipients(
    *, organization: Organization, items: Sequence[Any], raw: Sequence[Mapping[str, Any]], members: Sequence[Recipient],
    audit_actor: AuditActor, source: str,
) -> tuple[list[Recipient], list[RecipientOverride | None]]:
    """Recipients named by external id (engine.subscribers, inline identify), minus members already named by id."""
    from .subscribers import subscriber_recipients

    resolved = subscriber_recipients(organization=organization, items=items, actor=audit_actor, source=source)
    overrides_by_id: dict[str, RecipientOverride] = {}
    for item in raw:
        own_data, own_resource = item.get("data"), item.get("resource")
        if isinstance(own_data, Mapping) and own_data or isinstance(own_resource, Mapping) and own_resource:
            overrides_by_id.setdefault(str(item["external_id"]), RecipientOverride(
                data=dict(own_data or {}) if isinstance(own_data, Mapping) else {},
                resource=dict(own_resource or {}) if isinstance(own_resource, Mapping) else {},
            ))
    taken = {m.user_id for m in members}
    recipients: list[Recipient] = []
    overrides: list[RecipientOverride | None] = []
    for sub in resolved:
        if sub.id in taken:
            continue
        taken.add(sub.id)
        recipients.append(Recipient(
            key=f"u:{sub.id}", user_id=sub.id, email=sub.email, phone=sub.phone, locale=sub.locale,
            timezone=sub.timezone or "UTC", name=sub.display_name or sub.external_id,
        ))
        overrides.append(overrides_by_id.get(sub.external_id))
    return recipients, overrides


def _context_ids(*, organization: Organization, team_id: Any, project_id: Any) -> tuple[int | None, int | None]:
    errors: dict[str, list[str]] = {}
    team_pk, project_pk = _as_id(team_id), _as_id(project_id)
    if team_id not in (None, "") and team_pk is None:
        errors["team_id"] = ["Expected a team id."]
    if project_id not in (None, "") and project_pk is None:
        errors["project_id"] = ["Expected a project id."]
    if errors:
        raise ValidationError(errors)
    if project_pk is not None:
        project = Project.objects.filter(pk=project_pk, organization=organization).values("team_id").first()
        if project is None:
            raise ValidationError({"project_id": [f"Unknown project {project_pk} in this organization."]})
        if team_pk is None:
            team_pk = project["team_id"]
        elif project["team_id"] and project["team_id"] != team_pk:
            raise ValidationError({"project_id": [f"Project {project_pk} does not belong to team {team_pk}."]})
    if team_pk is not None and _as_id(team_id) is not None and not Team.objects.filter(pk=team_pk, organization=organization).exists():
        raise ValidationError({"team_id": [f"Unknown team {team_pk} in this organization."]})
    return team_pk, project_pk
