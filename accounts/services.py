from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from .models import ApiKey, Membership, MembershipRole, Organization, User, hash_api_key


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


def api_key_revoke(*, api_key: ApiKey) -> None:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
