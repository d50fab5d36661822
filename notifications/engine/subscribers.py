"""Subscribers: the people of an organization as a client application knows them.

A subscriber is a user of the organization whose membership carries the client's own id
(`external_id`, unique in the organization) and its `data`; the user row holds the
addresses, display name, locale and time zone every channel reads. Client applications
create and update them by external id (REST, bulk REST, the command bus, or inline in an
event); every path ends in `subscribers_upsert`, which is set-based: a fixed number of
queries whatever the number of subscribers.

Addresses are copied onto deliveries when an event is taken in (the delivery row is what a
worker sends to), so a changed address is written through to the subscriber's deliveries
that have not gone out yet (pending, scheduled, held) in the same transaction; one removed
altogether skips them. Rows already claimed by a worker are in flight and keep the address
they were claimed with.
"""
from __future__ import annotations

import functools
import hashlib
import uuid
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Membership, MembershipRole, Organization
from common.exceptions import NotFound, ValidationError
from notifications.enums import (
    CHANNEL_ADDRESS_FIELD,
    NOTIFICATION_FINAL_STATUSES,
    AuditAction,
    DeliveryStatus,
)
from notifications.models import Notification, NotificationAuditLog, NotificationDelivery

from .bulk import bulk_insert
from .bulk import bulk_update_rows
from .status import notifications_status_refresh
from .audit import AuditActor

MAX_BULK = 10_000
EXTERNAL_ID_MAX = 255
PROFILE_FIELDS = ("email", "phone", "display_name", "locale", "timezone", "data")
ADDRESS_FIELDS = ("email", "phone")
# Deliveries that have not gone out: a changed address still applies, a cancel still stops them.
# (Scheduled deliveries are PENDING with a future next_retry_at.)
UNSENT_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.HELD)


@dataclass(frozen=True)
class SubscriberIn:
    """One validated subscriber of a request: its external id and only the fields it gave."""

    external_id: str
    fields: dict[str, Any]

    @property
    def has_address(self) -> bool:
        return bool(self.fields.get("email") or self.fields.get("phone"))


@dataclass
class Subscriber:
    id: int
    external_id: str
    email: str
    phone: str
    display_name: str
    locale: str
    timezone: str
    data: dict[str, Any] = field(default_factory=dict)
    status: str = "unchanged"  # created | updated | unchanged

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "external_id": self.external_id, "email": self.email, "phone": self.phone,
            "display_name": self.display_name, "locale": self.locale, "timezone": self.timezone, "data": self.data,
        }


# --- validation -------------------------------------------------------------------------------


def external_id_error(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "A non-empty string is required."
    if len(value) > EXTERNAL_ID_MAX:
        return f"At most {EXTERNAL_ID_MAX} characters."
    if value != value.strip() or "/" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "Must not contain '/', control characters, or leading/trailing spaces."
    return None


@functools.lru_cache(maxsize=4096)
def _e164(phone: str) -> str | None:
    # Cached: a bulk call often repeats numbers, and parsing is the slowest part of validation.
    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def external_id_checked(external_id: Any) -> str:
    """An external id from a URL or a command, or a 400 (PostgreSQL would refuse a NUL in it)."""
    if (message := external_id_error(external_id)) is not None:
        raise ValidationError({"external_id": [message]})
    return external_id


def subscriber_clean(item: Any, *, external_id: Any = None) -> tuple[SubscriberIn | None, dict[str, list[str]]]:
    """Validate one subscriber object; the external id comes from the item unless given.

    Emails are lower-cased, phones normalized to E.164, locales checked against LANGUAGES and
    time zones against the IANA database — the same rules as bare event recipients and
    invitations. An empty string or null clears email, phone or display name.
    """
    if not isinstance(item, Mapping):
        return None, {"non_field_errors": ["Expected an object."]}
    errors: dict[str, list[str]] = {}
    ext = item.get("external_id") if external_id is None else external_id
    if (message := external_id_error(ext)) is not None:
        errors["external_id"] = [message]
    fields: dict[str, Any] = {}
    if "email" in item:
        email = item.get("email")
        if email not in (None, "") and not isinstance(email, str):
            errors["email"] = ["Expected a string."]
        else:
            email = (email or "").strip().lower()
            if email:
                try:
                    validate_email(email)
                except DjangoValidationError:
                    errors["email"] = [f"Not a valid email address: {email!r}."]
            fields["email"] = email
    if "phone" in item:
        phone = item.get("phone")
        if phone not in (None, "") and not isinstance(phone, str):
            errors["phone"] = ["Expected a string."]
        else:
            phone = (phone or "").strip()
            if phone:
                normalized = _e164(phone)
                if normalized is None:
                    errors["phone"] = [f"Not a valid E.164 phone number (e.g. +14155550100): {phone!r}."]
                phone = normalized or phone
            fields["phone"] = phone
    name_key = "display_name" if "display_name" in item else ("name" if "name" in item else None)
    if name_key is not None:
        name = item.get(name_key)
        if name not in (None, "") and not isinstance(name, str):
            errors["display_name"] = ["Expected a string."]
        elif name and len(name) > 150:
            errors["display_name"] = ["At most 150 characters."]
        else:
            fields["display_name"] = (name or "").strip()
    if item.get("locale") not in (None, ""):
        locale = item["locale"]
        languages = {code for code, _ in settings.LANGUAGES}
        if not isinstance(locale, str) or locale.split("-")[0].split("_")[0].lower() not in languages:
            errors["locale"] = [f"Unsupported locale {locale!r}; use one of {', '.join(sorted(languages))}."]
        else:
            fields["locale"] = locale.split("-")[0].split("_")[0].lower()
    if item.get("timezone") not in (None, ""):
        tz_name = item["timezone"]
        try:
            if not isinstance(tz_name, str):
                raise ValueError
            zoneinfo.ZoneInfo(tz_name)
            fields["timezone"] = tz_name
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = [f"Unknown time zone {tz_name!r}."]
    if "data" in item and item["data"] is not None:
        if not isinstance(item["data"], Mapping):
            errors["data"] = ["Expected an object."]
        else:
            fields["data"] = dict(item["data"])
    if errors:
        return None, errors
    return SubscriberIn(external_id=str(ext), fields=fields), {}


def subscribers_clean(items: Any, *, max_items: int = MAX_BULK, field_name: str = "subscribers") -> list[SubscriberIn]:
    """Validate a batch: every error at once (keyed by index), duplicates named; nothing written."""
    if not isinstance(items, list) or not items:
        raise ValidationError({field_name: ["Expected a non-empty list of subscribers."]})
    if len(items) > max_items:
        raise ValidationError({field_name: [f"At most {max_items} subscribers per call."]})
    out: list[SubscriberIn] = []
    errors: dict[str, Any] = {}
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        cleaned, item_errors = subscriber_clean(item)
        if item_errors:
            errors[str(index)] = item_errors
            continue
        assert cleaned is not None
        if cleaned.external_id in first_index:
            errors[str(index)] = {"external_id": [f"Duplicate of item {first_index[cleaned.external_id]} ({cleaned.external_id!r})."]}
            continue
        first_index[cleaned.external_id] = index
        out.append(cleaned)
    if errors:
        raise ValidationError({field_name: errors})
    return out


# --- reads -----------------------------------------------------------------------------------------

_USER_VALUES = ("user_id", "external_id", "data", "user__email", "user__phone", "user__display_name", "user__locale",
                "user__timezone", "user__is_active", "pk")


def _from_row(row: Mapping[str, Any]) -> Subscriber:
    return Subscriber(
        id=row["user_id"], external_id=row["external_id"], email=row["user__email"] or "", phone=row["user__phone"] or "",
        display_name=row["user__display_name"] or "", locale=row["user__locale"] or "", timezone=row["user__timezone"] or "",
        data=dict(row["data"] or {}),
    )


def subscribers_by_external_id(*, organization: Organization, external_ids: Iterable[str]) -> dict[str, Subscriber]:
    """Active subscribers of the organization among these external ids, in one query."""
    ids = list(dict.fromkeys(external_ids))
    if not ids:
        return {}
    rows = Membership.objects.filter(organization=organization, external_id__in=ids, user__is_active=True).values(*_USER_VALUES)
    return {row["external_id"]: _from_row(row) for row in rows}


def subscriber_get(*, organization: Organization, external_id: str) -> Subscriber:
    external_id_checked(external_id)
    found = subscribers_by_external_id(organization=organization, external_ids=[external_id])
    if external_id not in found:
        raise NotFound(f"No subscriber {external_id!r} in this organization.")
    return found[external_id]


# --- writes ----------------------------------------------------------------------------------------


def _lock(organization_id: int) -> None:
    """Serialize subscriber writers of one organization until commit.

    Two requests creating the same new external id would otherwise both miss it and the
    second would hit the unique constraint; with the lock the second finds the first's row.
    """
    if connection.vendor != "postgresql":
        return  # SQLite serializes writers anyway
    digest = hashlib.blake2b(f"subscribers:{organization_id}".encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)])


def _audit(*, organization: Organization, actor: AuditActor, action: str, user_id: int | None, details: dict) -> NotificationAuditLog:
    return NotificationAuditLog(
        organization=organization, action=action, actor_type=actor.type, actor_id=actor.id[:100],
        actor_label=actor.label[:200], user_id=user_id, details=details,
    )


def user_addresses_apply(*, changes: Mapping[int, Mapping[str, str]], organization: Organization | None = None) -> dict[str, int]:
    """Write changed addresses through to the users' unsent deliveries and open notifications.

    ``changes`` maps a user id to its new {"email": …, "phone": …} (only the changed ones);
    ``organization`` limits it to one organization (a subscriber), None covers all of the user's
    (a person editing their own profile). Four queries whatever the number of users. A delivery
    whose address was removed is skipped. Call inside the transaction that changed the users.
    """
    if not changes:
        return {"deliveries_readdressed": 0, "deliveries_skipped": 0}
    now = timezone.now()
    channels_for = {name: [ch for ch, f in CHANNEL_ADDRESS_FIELD.items() if f == name] for name in ADDRESS_FIELDS}
    wanted_channels = [ch for name in ADDRESS_FIELDS for ch in channels_for[name]]
    scope = {"organization": organization} if organization is not None else {}
    rows = list(
        NotificationDelivery.objects.select_for_update(of=("self",))
        .filter(**scope, notification__recipient_id__in=list(changes), status__in=UNSENT_STATUSES, channel__in=wanted_channels)
        .order_by("pk")
        .values("pk", "channel", "notification_id", "notification__recipient_id", "recipient_address")
    )
    readdressed: list[NotificationDelivery] = []
    skipped: list[NotificationDelivery] = []
    for row in rows:
        address_field = CHANNEL_ADDRESS_FIELD[row["channel"]] or ""  # only addressed channels were selected
        new = changes[row["notification__recipient_id"]].get(address_field)
        if new is None or new == row["recipient_address"]:
            continue
        if new:
            readdressed.append(NotificationDelivery(pk=row["pk"], recipient_address=new[:320], updated_at=now))
        else:
            skipped.append(NotificationDelivery(
                pk=row["pk"], notification_id=row["notification_id"], recipient_address="", status=DeliveryStatus.SKIPPED,
                skip_reason=f"The subscriber no longer has an {address_field} address.", next_retry_at=None, updated_at=now,
            ))
    bulk_update_rows(NotificationDelivery, readdressed, ["recipient_address", "updated_at"])
    bulk_update_rows(NotificationDelivery, skipped, ["recipient_address", "status", "skip_reason", "next_retry_at", "updated_at"])
    # Open notifications keep the address too: a fallback delivery created later reads it there.
    notifications = list(
        Notification.objects.filter(**scope, recipient_id__in=list(changes))
        .exclude(status__in=NOTIFICATION_FINAL_STATUSES)
        .values_list("pk", "recipient_id", "recipient_email", "recipient_phone")
    )
    changed_notifications = []
    for pk, user_id, email, phone in notifications:
        moved = changes[user_id]
        n_email, n_phone = moved.get("email", email), moved.get("phone", phone)
        if (n_email, n_phone) != (email, phone):
            changed_notifications.append(Notification(pk=pk, recipient_email=n_email, recipient_phone=n_phone, updated_at=now))
    bulk_update_rows(Notification, changed_notifications, ["recipient_email", "recipient_phone", "updated_at"])
    if skipped:
        notifications_status_refresh(notification_ids={d.notification_id for d in skipped}, now=now)
    return {"deliveries_readdressed": len(readdressed), "deliveries_skipped": len(skipped)}


def _new_username() -> str:
    return f"sub-{uuid.uuid4().hex}"


def subscribers_upsert(
    *, organization: Organization, items: Sequence[SubscriberIn], actor: AuditActor, source: str = "api"
) -> list[Subscriber]:
    """Create or update subscribers by external id, in the caller's transaction (or its own).

    Returns them in input order with `status` created/updated/unchanged. The query count does
    not depend on the number of items: one lookup, one INSERT per table for the new ones, one
    UPDATE per table for the changed ones, the address write-through, one audit INSERT.
    """
    if not items:
        return []
    User = get_user_model()
    with transaction.atomic():
        _lock(organization.pk)
        existing = {
            row["external_id"]: row
            for row in Membership.objects.filter(organization=organization, external_id__in=[i.external_id for i in items])
            .select_related(None)
            .values(*_USER_VALUES)
        }
        now = timezone.now()
        new_items = [i for i in items if i.external_id not in existing]
        # One unusable password for the whole batch: nobody signs in as a subscriber, and
        # hashing ten thousand random ones would cost seconds for nothing.
        unusable = make_password(None)
        users = [
            User(
                username=_new_username(), password=unusable, email=i.fields.get("email", ""), phone=i.fields.get("phone", ""),
                display_name=i.fields.get("display_name", ""), locale=i.fields.get("locale") or "en",
                timezone=i.fields.get("timezone") or "UTC", date_joined=now,
            )
            for i in new_items
        ]
        if users:
            # COPY, not INSERT: ten thousand rows cost milliseconds instead of seconds of SQL building.
            bulk_insert(User, users)
            bulk_insert(Membership, [
                Membership(user=u, organization=organization, role=MembershipRole.MEMBER, external_id=i.external_id,
                           data=i.fields.get("data", {}))
                for u, i in zip(users, new_items, strict=True)
            ])
        created = {i.external_id: u for i, u in zip(new_items, users, strict=True)}

        user_updates: list[Any] = []
        membership_updates: list[Membership] = []
        address_changes: dict[int, dict[str, str]] = {}
        out: list[Subscriber] = []
        audit: list[NotificationAuditLog] = []
        for item in items:
            if item.external_id in created:
                u = created[item.external_id]
                sub = Subscriber(id=u.pk, external_id=item.external_id, email=u.email, phone=u.phone,
                                 display_name=u.display_name, locale=u.locale, timezone=u.timezone,
                                 data=item.fields.get("data", {}), status="created")
                out.append(sub)
                audit.append(_audit(organization=organization, actor=actor, action=AuditAction.SUBSCRIBER_UPSERTED,
                                    user_id=u.pk, details={"external_id": item.external_id, "created": True, "source": source,
                                                           "fields": sorted(item.fields)}))
                continue
            row = existing[item.external_id]
            sub = _from_row(row)
            changed_fields = [f for f in PROFILE_FIELDS if f in item.fields and item.fields[f] != getattr(sub, f)]
            if not row["user__is_active"]:
                raise ValidationError({"external_id": [f"Subscriber {item.external_id!r} is deactivated."]})
            for name in changed_fields:
                setattr(sub, name, item.fields[name])
            if changed_fields:
                sub.status = "updated"
                user_updates.append(User(pk=sub.id, email=sub.email, phone=sub.phone, display_name=sub.display_name,
                                         locale=sub.locale, timezone=sub.timezone))
                if "data" in changed_fields:
                    membership_updates.append(Membership(pk=row["pk"], data=sub.data))
                moved = {f: item.fields[f] for f in ADDRESS_FIELDS if f in changed_fields}
                if moved:
                    address_changes[sub.id] = moved
                audit.append(_audit(organization=organization, actor=actor, action=AuditAction.SUBSCRIBER_UPSERTED,
                                    user_id=sub.id, details={"external_id": item.external_id, "created": False,
                                                             "source": source, "fields": changed_fields}))
            out.append(sub)
        bulk_update_rows(User, user_updates, ["email", "phone", "display_name", "locale", "timezone"])
        bulk_update_rows(Membership, membership_updates, ["data"])
        user_addresses_apply(organization=organization, changes=address_changes)
        bulk_insert(NotificationAuditLog, audit)
    return out


def subscriber_upsert(
    *, organization: Organization, external_id: str, fields: Mapping[str, Any], actor: AuditActor, source: str = "api"
) -> Subscriber:
    """One subscriber (PUT /api/v1/admin/subscribers/{external_id}/, command `subscriber.upsert`)."""
    cleaned, errors = subscriber_clean(fields, external_id=external_id)
    if errors:
        raise ValidationError(errors)
    assert cleaned is not None
    return subscribers_upsert(organization=organization, items=[cleaned], actor=actor, source=source)[0]


def subscriber_delete(*, organization: Organization, external_id: str, actor: AuditActor, source: str = "api") -> dict[str, Any]:
    """Anonymize a subscriber and cancel what is still pending for them.

    The notification and delivery rows stay (history counts and analytics keep adding up) but
    lose their addresses; the user row loses every personal field and can no longer receive
    anything; the external id is free again. Idempotency is the caller's: a second delete is 404.
    """
    from providers.models import PushSubscription

    from .cancel import notifications_cancel

    external_id_checked(external_id)
    with transaction.atomic():
        _lock(organization.pk)
        membership = (
            Membership.objects.select_for_update().select_related("user")
            .filter(organization=organization, external_id=external_id).first()
        )
        if membership is None:
            raise NotFound(f"No subscriber {external_id!r} in this organization.")
        user = membership.user
        cancelled = notifications_cancel(organization=organization, recipient_user_id=user.pk, actor=actor,
                                         reason="subscriber_deleted")
        Notification.objects.filter(organization=organization, recipient_id=user.pk).update(recipient_email="", recipient_phone="")
        NotificationDelivery.objects.filter(organization=organization, notification__recipient_id=user.pk).update(recipient_address="")
        membership.external_id = None
        membership.data = {}
        membership.save(update_fields=["external_id", "data"])
        only_here = not Membership.objects.filter(user=user).exclude(organization=organization).exists()
        if only_here:
            # Another organization's member keeps their account; a subscriber of this one only is erased.
            User = get_user_model()
            User.objects.filter(pk=user.pk).update(
                username=f"deleted-{uuid.uuid4().hex}", email="", phone="", display_name="", first_name="", last_name="",
                is_active=False, password=make_password(None),
            )
            PushSubscription.objects.filter(user=user).delete()
        _audit(
            organization=organization, actor=actor, action=AuditAction.SUBSCRIBER_DELETED, user_id=user.pk,
            details={"external_id": external_id, "source": source, **cancelled},
        ).save()
    return {"id": user.pk, "external_id": external_id, "deleted": True, **cancelled}


# --- events naming recipients by external id -----------------------------------------------------


def subscriber_recipients_clean(items: Sequence[tuple[int, Any]]) -> list[SubscriberIn]:
    """Validate the `{"external_id": …, email?, phone?, …}` items of an event (index, item); no queries.

    Their `data` and `resource` are the per-recipient event overrides, not subscriber data.
    """
    out: list[SubscriberIn] = []
    errors: dict[str, Any] = {}
    seen: set[str] = set()
    for index, item in items:
        profile = {k: v for k, v in item.items() if k not in ("data", "resource")} if isinstance(item, Mapping) else item
        cleaned, item_errors = subscriber_clean(profile)
        if item_errors:
            errors[str(index)] = item_errors
            continue
        assert cleaned is not None
        if cleaned.external_id not in seen:
            seen.add(cleaned.external_id)
            out.append(cleaned)
    if errors:
        raise ValidationError({"recipients": errors})
    return out


def subscriber_recipients(
    *, organization: Organization, items: Sequence[SubscriberIn], actor: AuditActor, source: str
) -> list[Subscriber]:
    """The subscribers an event names, in item order; unknown ones that bring an address are
    created and known ones whose given fields differ are updated (inline identify), in the
    caller's transaction. Unknown ones without an address are a 400 naming every one of them.

    One query when every subscriber is known and unchanged; a fixed few more otherwise.
    """
    found = subscribers_by_external_id(organization=organization, external_ids=[i.external_id for i in items])
    missing = [i.external_id for i in items if i.external_id not in found and not i.has_address]
    if missing:
        raise ValidationError(
            {"recipients": [f"Unknown subscriber(s) in this organization, and no email or phone to create them with: "
                            f"{', '.join(missing)}."]},
            code="unknown_subscribers",
        )
    to_write = [
        i for i in items
        if i.external_id not in found or any(i.fields[f] != getattr(found[i.external_id], f) for f in i.fields)
    ]
    if to_write:
        for sub in subscribers_upsert(organization=organization, items=to_write, actor=actor, source=source):
            found[sub.external_id] = sub
    return [found[i.external_id] for i in items]
