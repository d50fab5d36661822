from __future__ import annotations

import functools
import zoneinfo
from typing import Any

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from common.exceptions import ValidationError

from .models import ApiKey, Membership, MembershipRole, Organization, User, hash_api_key

PROFILE_FIELDS = ("display_name", "phone", "locale", "timezone")


@transaction.atomic
def organization_create(*, name: str, owner: User, slug: str | None = None) -> Organization:
    base = slug or slugify(name)[:90] or "org"
    candidate, n = base, 1
    while Organization.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    org = Organization.objects.create(name=name, slug=candidate)
    Membership.objects.create(user=owner, organization=org, role=MembershipRole.OWNER)
    return org


def api_key_create(*, organization: Organization, name: str, created_by: User | None = None) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw value, which is never stored and never shown again."""
    raw = ApiKey.generate_raw_key()
    key = ApiKey.objects.create(
        organization=organization,
        name=name,
        prefix=raw[: ApiKey.PREFIX_LEN + 4],
        key_hash=hash_api_key(raw),
        created_by=created_by,
    )
    return key, raw


def membership_departed(*, user_id: int, organization_id: int) -> int:
    """What a member held in an organization ends with the membership: the API keys they
    created for it are revoked (a later return does not revive them). Returns how many."""
    from .key_cache import api_keys_changed

    revoked = ApiKey.objects.filter(
        organization_id=organization_id, created_by_id=user_id, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    api_keys_changed()  # no process may accept them any more (accounts.key_cache)
    return revoked


def api_key_revoke(*, api_key: ApiKey) -> None:
    from .key_cache import api_keys_changed

    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_keys_changed()  # refused by every process from its next call (accounts.key_cache)


# --- people: sign-up, profile, account emails ------------------------------------------------


def user_ensure_personal_organization(*, user: User) -> Organization:
    """The user's organization, creating their personal one if they belong to none.

    Everything a person sends (invitations, events) is delivered in an organization's name; a
    user created without one (by staff in the admin, before sign-up existed) gets one the first
    time it is needed instead of their invitations being silently dropped.
    """
    from .selectors import user_primary_organization

    organization = user_primary_organization(user=user)
    if organization is not None:
        return organization
    return organization_create(name=f"{user.get_display_name()}'s space"[:200], owner=user, slug=slugify(user.username)[:80] or None)


def _signup_errors(*, username: str, email: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if User.objects.filter(username__iexact=username).exists():
        errors["username"] = ["This username is taken."]
    if User.objects.filter(email__iexact=email).exists():
        errors["email"] = ["An account already uses this email address. Sign in or reset your password."]
    return errors


@transaction.atomic
def user_signup(*, username: str, email: str, password: str, display_name: str = "", active: bool = True) -> User:
    """Create a person's account and their personal organization (they own it).

    `active=False` when email verification is mandatory: the account opens once the link of
    the verification email is followed. The password is validated by the caller's form.
    """
    username, email = username.strip(), email.strip().lower()
    errors = _signup_errors(username=username, email=email)
    if errors:
        raise ValidationError(errors)
    user = User(username=username, email=email, display_name=display_name.strip()[:150], is_active=active)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # the same username, signed up concurrently
        raise ValidationError({"username": ["This username is taken."]}) from None
    organization_create(name=f"{user.get_display_name()}'s space"[:200], owner=user, slug=slugify(username)[:80] or None)
    return user


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def profile_clean(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalize profile fields; raises ValidationError with every field's errors."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    unknown = sorted(set(changes) - set(PROFILE_FIELDS))
    if unknown:
        errors["non_field_errors"] = [f"Unknown or read-only field(s): {', '.join(unknown)}."]
    for name in PROFILE_FIELDS:
        if name not in changes:
            continue
        value = changes[name]
        if value is None:
            value = ""
        if not isinstance(value, str):
            errors[name] = ["Expected a string."]
            continue
        value = value.strip()
        if "\x00" in value:
            errors[name] = ["Null characters are not allowed."]
            continue
        if name == "display_name":
            if len(value) > 150:
                errors[name] = ["At most 150 characters."]
                continue
        elif name == "phone" and value:
            try:
                parsed = phonenumbers.parse(value, None)
                if not phonenumbers.is_valid_number(parsed):
                    raise phonenumbers.NumberParseException(0, "invalid")
            except phonenumbers.NumberParseException:
                errors[name] = [f"Not a valid phone number in international (E.164) format, e.g. +14155550100: {value!r}."]
                continue
            value = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        elif name == "locale":
            languages = [code for code, _ in settings.LANGUAGES]
            if value not in languages:
                errors[name] = [f"Unsupported language {value!r}; use one of {', '.join(languages)}."]
                continue
        elif name == "timezone":
            if value not in _time_zones():
                errors[name] = [f"Unknown time zone {value!r}; use an IANA name such as Europe/Paris."]
                continue
        clean[name] = value
    if errors:
        raise ValidationError(errors)
    return clean


@transaction.atomic(durable=True)
def user_profile_update(*, user: User, changes: dict[str, Any]) -> User:
    """Change the person's display name, phone, language or time zone — all or nothing.

    The time zone is also the one of their quiet hours (the routing reads quiet windows in
    it), so both move together.
    """
    from notifications.models import QuietHours

    clean = profile_clean(changes)
    user = User.objects.select_for_update().get(pk=user.pk)
    changed = [name for name, value in clean.items() if getattr(user, name) != value]
    for name in changed:
        setattr(user, name, clean[name])
    if "phone" in changed and user.phone_verified_at is not None:
        user.phone_verified_at = None  # the code we texted confirmed the old number, not this one
        changed.append("phone_verified_at")
    if changed:
        user.save(update_fields=changed)
    if "timezone" in changed:
        QuietHours.objects.filter(user=user).update(timezone=user.timezone, updated_at=timezone.now())
    if "phone" in changed:
        # Addresses are copied onto deliveries at intake: the new number applies to those not sent yet.
        from notifications.engine.subscribers import user_addresses_apply

        user_addresses_apply(changes={user.pk: {"phone": user.phone}})
    return user


@transaction.atomic(durable=True)
def user_email_verify(*, user_id: int, email: str) -> User | None:
    """Mark the address verified (and open an account that waited for it). None if the link no
    longer matches the account (the address changed since)."""
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None or user.email.lower() != email.lower():
        return None
    fields = []
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        fields.append("email_verified_at")
    if not user.is_active and user.last_login is None:
        # Only an account that never opened (mandatory verification): staff deactivations stay.
        user.is_active = True
        fields.append("is_active")
    if fields:
        user.save(update_fields=fields)
    return user
