from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Permission
from django.db.models import Exists, OuterRef, Q, QuerySet

from .models import ApiKey, Membership, MembershipRole, Organization, User, hash_api_key


def api_key_get_active(*, raw_key: str) -> ApiKey | None:
    """The unrevoked key, with `creator_is_member` (is whoever created it still a member of its
    organization?) read in the same query — or from this process's memo (accounts.key_cache),
    which any change to keys, organizations, memberships or users invalidates everywhere."""
    from .key_cache import api_key_copy, api_keys

    key_hash = hash_api_key(raw_key)
    key = api_keys.get(key_hash, lambda: _api_key_read(key_hash), keep=_api_key_plainly_valid)
    return api_key_copy(key) if key is not None else None


def _api_key_read(key_hash: str) -> ApiKey | None:
    return (
        ApiKey.objects.select_related("organization", "created_by")
        .annotate(creator_is_member=Exists(
            Membership.objects.filter(user_id=OuterRef("created_by_id"), organization_id=OuterRef("organization_id"))
        ))
        .filter(key_hash=key_hash, revoked_at__isnull=True)
        .first()
    )


def _api_key_plainly_valid(key: ApiKey | None) -> bool:
    """Kept in the memo only when that one query settles it: no creator, or an active member
    (a key kept alive by its creator's permissions is checked against them on every call)."""
    if key is None:
        return False
    creator = key.created_by
    return creator is None or (creator.is_active and bool(getattr(key, "creator_is_member", False)))


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


# --- administration: which organizations may this caller administer -----------------------------

ADMIN_ORGANIZATION_PARAM = "organization"


@dataclass(frozen=True)
class AdminScope:
    """What `admin_scope` answers about a caller of an admin endpoint."""

    acting: Organization | None  # the organization the request acts for (request_organization)
    platform_admin: bool
    # The one organization the request is about; None only for platform administrators who
    # named none (?organization=): every organization.
    organization_id: int | None

    def filter(self, qs: QuerySet, field: str = "organization_id") -> QuerySet:
        return qs if self.organization_id is None else qs.filter(**{field: self.organization_id})


def admin_scope(request, *, api_keys: bool = False) -> AdminScope:
    """Which organizations may this caller administer? The one answer every admin endpoint uses.

    Platform administrators (`user_is_platform_admin`): every organization, or the one the
    `?organization=<id>` query parameter names. An organization's owners and admins — and its
    API keys where the endpoint allows them (`api_keys`) — their acting organization only (the
    API key's, or the `X-Organization` one, or the user's primary one). Anyone else: 403."""
    from common.exceptions import PermissionDenied, ValidationError
    from common.query import is_db_id

    params = getattr(request, "query_params", None) or getattr(request, "GET", {})
    if "organization_id" in params:
        # The one name is `organization`: an old name must not silently widen the answer to every organization.
        raise ValidationError({"organization_id": [f"Use ?{ADMIN_ORGANIZATION_PARAM}=<id>."]})
    user = getattr(request, "user", None)
    acting = request_organization(request)
    if isinstance(getattr(request, "auth", None), ApiKey):
        if api_keys and acting is not None:
            return AdminScope(acting=acting, platform_admin=False, organization_id=acting.pk)
        raise PermissionDenied("Administration needs a signed-in organization admin, not an API key.")
    if user_is_platform_admin(user):
        wanted = params.get(ADMIN_ORGANIZATION_PARAM)
        if wanted in (None, ""):
            return AdminScope(acting=acting, platform_admin=True, organization_id=None)
        if not is_db_id(str(wanted)):
            raise ValidationError({ADMIN_ORGANIZATION_PARAM: ["Expected an organization id."]})
        return AdminScope(acting=acting, platform_admin=True, organization_id=int(wanted))
    if not isinstance(user, User) or acting is None or not user_is_org_admin(user=user, organization=acting):
        raise PermissionDenied("Only organization owners and admins may do this.")
    return AdminScope(acting=acting, platform_admin=False, organization_id=acting.pk)
