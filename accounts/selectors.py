from __future__ import annotations

from django.contrib.auth.models import Permission
from django.db.models import Exists, OuterRef, Q, QuerySet

from .models import ApiKey, Membership, MembershipRole, Organization, User, hash_api_key


def api_key_get_active(*, raw_key: str) -> ApiKey | None:
    """The unrevoked key, with `creator_is_member` (is whoever created it still a member of its
    organization?) read in the same query."""
    return (
        ApiKey.objects.select_related("organization", "created_by")
        .annotate(creator_is_member=Exists(
            Membership.objects.filter(user_id=OuterRef("created_by_id"), organization_id=OuterRef("organization_id"))
        ))
        .filter(key_hash=hash_api_key(raw_key), revoked_at__isnull=True)
        .first()
    )


def api_key_creator_problem(key: ApiKey) -> str | None:
    """Why a key no longer acts for its organization because of who created it, else None.

    A key made by a member dies with their membership (or their account); one made by platform
    operators in the admin (not members, but allowed to create keys) lives on."""
    creator = key.created_by
    if creator is None:
        return None
    if not creator.is_active:
        return "The account that created this API key is deactivated."
    if getattr(key, "creator_is_member", True):
        return None
    if user_is_platform_admin(creator) or creator.has_perm("accounts.add_apikey"):
        return None
    return "The person who created this API key is no longer a member of its organization."


def organizations_for_user(*, user: User) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user)


def user_is_member(*, user_id: int | None, organization_id: int | None) -> bool:
    """Is the user a member of the organization right now? Read from the database every time:
    a removed member loses what membership gave at once (no session or cache keeps it)."""
    if not user_id or not organization_id:
        return False
    return Membership.objects.filter(user_id=user_id, organization_id=organization_id).exists()


def user_primary_organization(*, user: User) -> Organization | None:
    membership = Membership.objects.select_related("organization").filter(user=user).order_by("created_at", "pk").first()
    return membership.organization if membership else None


PLATFORM_ADMIN_PERMISSION = "accounts.administer_platform"


def user_is_platform_admin(user) -> bool:
    """May act across organizations through the API: a superuser, or a user explicitly granted
    `accounts.administer_platform`. Staff status alone only opens the Django admin."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    if getattr(user, "pk", None) is None:  # an organization API key is never the platform
        return False
    if user.is_superuser:
        return True
    # One query, granted to the user or through a group (what ModelBackend.has_perm reads, without
    # loading every permission the user has).
    app_label, codename = PLATFORM_ADMIN_PERMISSION.split(".")
    return Permission.objects.filter(content_type__app_label=app_label, codename=codename).filter(
        Q(user=user) | Q(group__user=user)
    ).exists()


def user_is_org_admin(*, user: User, organization: Organization) -> bool:
    if Membership.objects.filter(
        user=user, organization=organization, role__in=[MembershipRole.OWNER, MembershipRole.ADMIN]
    ).exists():
        return True
    return user_is_platform_admin(user)


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
        qs = Organization.objects.all() if user_is_platform_admin(user) else organizations_for_user(user=user)
        if wanted.isascii() and wanted.isdigit():
            if int(wanted) > 2**63 - 1:  # beyond bigint: no such organization (not a database error)
                return None
            lookup = {"pk": int(wanted)}
        else:
            lookup = {"slug": wanted}
        return qs.filter(**lookup).first()
    return user_primary_organization(user=user)


def request_user(request) -> User:
    """The signed-in person behind a request (a page behind `login_required`, a session-only
    endpoint); anyone else — anonymous, an organization API key — is refused."""
    from django.core.exceptions import PermissionDenied as DjangoPermissionDenied

    user = getattr(request, "user", None)
    if not isinstance(user, User):
        raise DjangoPermissionDenied("This needs a signed-in user.")
    return user
