from __future__ import annotations

from django.db.models import QuerySet

from .models import ApiKey, Membership, MembershipRole, Organization, User, hash_api_key


def api_key_get_active(*, raw_key: str) -> ApiKey | None:
    return (
        ApiKey.objects.select_related("organization")
        .filter(key_hash=hash_api_key(raw_key), revoked_at__isnull=True)
        .first()
    )


def organizations_for_user(*, user: User) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user)


def user_primary_organization(*, user: User) -> Organization | None:
    membership = Membership.objects.select_related("organization").filter(user=user).order_by("created_at", "pk").first()
    return membership.organization if membership else None


def user_is_org_admin(*, user: User, organization: Organization) -> bool:
    if user.is_staff:
        return True
    return Membership.objects.filter(
        user=user, organization=organization, role__in=[MembershipRole.OWNER, MembershipRole.ADMIN]
    ).exists()


def request_organization(request) -> Organization | None:
    """The organization a request acts for: the API key's, else the user's primary one.

    A user in several organizations may pick one with the `X-Organization` header (slug or id).
    """
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        return auth.organization
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    wanted = request.headers.get("X-Organization") if hasattr(request, "headers") else None
    if wanted:
        qs = organizations_for_user(user=user) if not user.is_staff else Organization.objects.all()
        if wanted.isascii() and wanted.isdigit():
            if int(wanted) > 2**63 - 1:  # beyond bigint: no such organization (not a database error)
                return None
            lookup = {"pk": int(wanted)}
        else:
            lookup = {"slug": wanted}
        return qs.filter(**lookup).first()
    return user_primary_organization(user=user)
