"""Organization scoping and secrets, across every API endpoint and web page.

The URL patterns are walked from the resolver, so an endpoint added later is covered without
touching this module; only the public ones (schema and docs, the style catalogue, calls
authenticated by an invitation token, provider and incoming webhooks, health, login) are
listed, in PUBLIC_PREFIXES.

Two organizations, A and B, each get an owner, an admin, a member, an API key and rows in
every model. A's people and A's key then call every endpoint with B's ids (and every list
endpoint), and these must hold:
- anonymous callers get 401/403 from the API and a redirect to the login page from pages;
- a list never shows one of B's rows, a detail or action on B's id answers 404, and B's rows
  are unchanged after every write attempt;
- A's member gets 403 from everything under /api/v1/admin/;
- no response body and no log record carries a planted secret (provider credentials,
  webhook secrets, raw API keys, invitation tokens).

The world is built once for the module inside a transaction that is rolled back at the end;
each test runs in its own savepoint.
"""
from __future__ import annotations

import json
import logging
import re
import secrets as pysecrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.signals import request_finished
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey, Membership, MembershipRole, Organization, Project, Team, User
from accounts.services import api_key_create
from batchjobs.models import BatchJob
from invitations.models import StoryInvitation
from invitations.notify import invitations_notify_sent
from invitations.services import content_invitations_send, invitations_send
from news.content import NEWS
from news.models import NewsArticle, NewsNarration
from news.services import article_create
from roleplay.models import RoleplayCharacterRole, RoleplayTemplate
from roleplay.services import roleplay_template_create
from narrations.models import Story
from narrations.services import story_create
from notifications.engine.audit import AuditActor
from notifications.engine.subscribers import subscriber_upsert
from notifications.engine.webhooks import webhook_create
from notifications.enums import (
    AuditAction,
    Channel,
    DeadLetterStatus,
    DeliveryStatus,
    EventCategory,
    PreferenceLevel,
    WebhookDirection,
)
from notifications.models import (
    ChannelConfiguration,
    DeadLetter,
    EscalationChain,
    EscalationLevel,
    EventType,
    Notification,
    NotificationAuditLog,
    NotificationDelivery,
    NotificationPreference,
    NotificationTemplate,
    QuietHours,
    TemplateChannel,
    Topic,
    TopicSubscription,
    Webhook,
)
from providers.models import NotificationProvider
from providers.models import PushSubscription
from providers.services import provider_create

from .conftest import ensure_notification_catalog
from .factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.postgres]

A_MARK = "aa0rgmark"
B_MARK = "zz0rgmark"

# Reachable without a session or key: each authenticates by its own means (a token in the URL,
# a provider's signature) or is public product copy. Paths relative to the site root.
PUBLIC_PREFIXES = (
    "api/v1/schema/",
    "api/v1/docs/",
    "api/v1/redoc/",
    "api/v1/conversation-styles/",
    "api/v1/invitations/by-token/",
    "webhooks/",
    "health/",
    "accounts/login/",
    "accounts/logout/",
    "accounts/signup/",
    "accounts/password-reset/",
    "accounts/reset/",
    "accounts/verify-email/",  # signed link in the URL
    "i/",  # invitation landing page, token in the URL
    "n/",  # signed acknowledgment link
    "u/",  # signed unsubscribe link
    "^media/",  # user uploads (narration audio), served only in development
)
# The Django admin is the staff console: checked once below, not walked (hundreds of patterns).
STAFF_CONSOLE = "admin/"
# Pages for superusers only (or staff while DEBUG is on): they do not exist for anyone else.
STAFF_ONLY_PAGES = {"outbox"}
# Machine endpoints for platform staff or a bearer token: anyone else gets a 401, no redirect.
STAFF_OR_TOKEN = {"metrics"}
# Pages that only take a form's POST (a GET is a 405 to everyone).
POST_ONLY_PAGES = {"me-phone-code", "me-phone-confirm"}

# Each path parameter → the tenant attribute whose id fills it. A new parameter name fails the
# sweep until it is added here, so no endpoint goes unchecked.
PARAM_OBJECTS = {
    "story_id": "story",
    "invitation_id": "invitation",
    "pk": "notification",
    "notification_id": "notification",
    "template_id": "template",
    "webhook_id": "webhook",
    "dead_letter_id": "dead_letter",
    "chain_id": "chain",
    "configuration_id": "channel_configuration",
    "delivery_id": "delivery",
    "provider_id": "provider",
    "external_id": "subscriber",  # filled with the subscriber's external id, not a pk
    "article_id": "article",
    "roleplay_template_id": "roleplay_template",
    "job_id": "batch_job",
    "key": "topic",  # filled with the topic's key, not a pk
}

# Path parameters that name something inside the object of another parameter (an in-app action
# of the notification, a version of the template): the object's scope decides.
PARAM_LITERALS = {"action_id": "open", "version": "1"}  # version: a template version number

METHODS = ("get", "post", "put", "patch", "delete")


# --- the world ------------------------------------------------------------------------------------------


@dataclass
class Tenant:
    mark: str
    organization: Organization
    team: Team
    owner: User
    admin: User
    member: User
    raw_key: str
    story: Story
    invitation: StoryInvitation
    notification: Notification
    delivery: NotificationDelivery
    dead_letter: DeadLetter
    template: NotificationTemplate
    provider: NotificationProvider
    webhook: Webhook
    chain: EscalationChain
    channel_configuration: ChannelConfiguration
    preference: NotificationPreference
    subscriber: Membership
    article: NewsArticle
    roleplay_template: RoleplayTemplate
    batch_job: BatchJob
    topic: Topic
    secrets: list[str] = field(default_factory=list)
    ids: dict[str, set[int]] = field(default_factory=dict)

    @property
    def users(self) -> list[User]:
        return [self.owner, self.admin, self.member]


@dataclass
class World:
    a: Tenant
    b: Tenant
    secrets: list[str]
    setup_logs: list[logging.LogRecord]
    b_state: dict[str, list[dict[str, Any]]]


def _secret(prefix: str) -> str:
    return f"{prefix}{pysecrets.token_urlsafe(24)}"


def _notification(tenant_org: Organization, recipient: User, mark: str, event_type: str) -> Notification:
    return Notification.objects.create(
        organization=tenant_org, recipient=recipient, event_type=event_type, category=EventCategory.PROJECT_MANAGEMENT,
        title=f"{mark} note for {recipient.username}", body=f"{mark} body", actor_name=f"{mark} actor",
        channels_requested=[Channel.IN_APP, Channel.EMAIL], trace={"mark": mark},
    )


def _build_tenant(mark: str, event_type: EventType) -> Tenant:
    organization = Organization.objects.create(name=f"{mark} organization", slug=f"{mark}-org")
    team = Team.objects.create(organization=organization, name=f"{mark} team")
    Project.objects.create(organization=organization, name=f"{mark} project")
    people = {}
    for role in (MembershipRole.OWNER, MembershipRole.ADMIN, MembershipRole.MEMBER):
        person = UserFactory(username=f"{mark}-{role}", email=f"{role}@{mark}.example", display_name=f"{mark} {role}",
                             phone="+14155550100")
        MembershipFactory(user=person, organization=organization, role=role)
        people[role] = person
    owner = people[MembershipRole.OWNER]
    _, raw_key = api_key_create(organization=organization, name=f"{mark} key")

    story = story_create(owner=owner, title=f"{mark} story", content="Once upon a time, a lamp.",
                         characters=[{"name": "Mara"}], organization=organization)
    sent = invitations_send(story=story, inviter=owner, items=[
        {"email": f"guest@{mark}.example", "conversation_style": "jovial"},
        {"email": f"friend@{mark}.example", "conversation_style": "business"},
    ])
    invitation = sent.invitations[0]
    tokens = list(sent.tokens.values())
    # What runs after commit in production: the invitation emails, whose links carry the tokens.
    invitations_notify_sent(invitation_ids=[i.pk for i in sent.invitations], tokens=dict(sent.tokens))

    notifications = {role: _notification(organization, person, mark, event_type.key) for role, person in people.items()}
    deliveries = []
    for person_notification in notifications.values():
        deliveries.append(NotificationDelivery.objects.create(
            notification=person_notification, organization=organization, channel=Channel.IN_APP,
            status=DeliveryStatus.DELIVERED, recipient_address=str(person_notification.recipient_id),
        ))
        deliveries.append(NotificationDelivery.objects.create(
            notification=person_notification, organization=organization, channel=Channel.EMAIL,
            status=DeliveryStatus.FAILED, recipient_address=f"{mark}-inbox@{mark}.example", attempts=4,
            failed_at=timezone.now(), error=f"{mark} 503", provider="sendgrid",
        ))
    notification = notifications[MembershipRole.OWNER]
    delivery = deliveries[1]
    dead_letter = DeadLetter.objects.create(
        organization=organization, delivery=delivery, channel=Channel.EMAIL, reason=f"{mark} exhausted",
        payload={"notification_id": notification.pk}, error_history=[{"attempt": 1, "error": "503"}],
        status=DeadLetterStatus.OPEN,
    )

    template = NotificationTemplate.objects.create(
        key=event_type.template_key or event_type.key, event_type=event_type.key, name=f"{mark} template",
        organization=organization, variables=[],
    )
    TemplateChannel.objects.create(template=template, channel=Channel.IN_APP, title=f"{mark} title", body="Hello.")
    TemplateChannel.objects.create(template=template, channel=Channel.SMS, body="Hello by SMS.")
    TemplateChannel.objects.create(template=template, channel=Channel.EMAIL, subject="Hello", body="Hello by email.")

    preference = NotificationPreference.objects.create(level=PreferenceLevel.ORGANIZATION, organization=organization)
    NotificationPreference.objects.create(level=PreferenceLevel.TEAM, organization=organization, team=team, enabled=False)
    NotificationPreference.objects.create(level=PreferenceLevel.USER, user=owner, organization=organization)
    QuietHours.objects.create(organization=organization, timezone="Europe/Paris")
    QuietHours.objects.create(user=owner, organization=organization, timezone="Europe/Paris")

    provider_secret, sendgrid_secret = _secret("twtok_"), _secret("SG.")
    provider = provider_create(
        organization_id=organization.pk, code="twilio_sms", name=f"{mark} twilio",
        config={"account_sid": "AC" + "0" * 32, "from_number": "+14155550199"}, secrets={"auth_token": provider_secret},
    )
    provider_create(organization_id=organization.pk, code="sendgrid", name=f"{mark} sendgrid",
                    secrets={"api_key": sendgrid_secret})

    outgoing_secret, incoming_secret = _secret("whsec_"), _secret("whin_")
    webhook = webhook_create(
        organization_id=organization.pk, secret=outgoing_secret, user_id=owner.pk, actor_label=owner.username,
        values={"name": f"{mark} outgoing hook", "direction": WebhookDirection.OUTGOING, "url": "https://hooks.example.com/in"},
    )
    webhook_create(
        organization_id=organization.pk, secret=incoming_secret, user_id=owner.pk, actor_label=owner.username,
        values={"name": f"{mark} incoming hook", "direction": WebhookDirection.INCOMING},
    )

    chain = EscalationChain.objects.create(organization=organization, name=f"{mark} chain")
    EscalationLevel.objects.create(chain=chain, level=1, delay_minutes=5, channels=[Channel.SMS])
    channel_configuration = ChannelConfiguration.objects.create(
        organization=organization, channel=Channel.SMS, settings={"label": f"{mark} sms"}
    )
    NotificationAuditLog.objects.create(organization=organization, action=AuditAction.NOTIFICATION_CREATED,
                                        actor_label=f"{mark} auditor", notification=notification)
    PushSubscription.objects.create(user=owner, endpoint=f"https://push.example.com/{mark}", p256dh="key", auth="auth")
    # The external id is the client's own string (echoed back to whoever names it): no marker in it.
    subscriber_upsert(organization=organization, external_id=f"crm-{mark[:2]}",
                      fields={"email": f"subscriber@{mark}.example", "display_name": f"{mark} subscriber"}, actor=AuditActor())
    subscriber = Membership.objects.get(organization=organization, external_id=f"crm-{mark[:2]}")
    article = article_create(organization=organization, created_by=owner,
                             body={"title": f"{mark} article", "summary": f"{mark} summary", "category": "local"})
    shared = content_invitations_send(kind=NEWS, content=article, inviter=owner,
                                      items=[{"email": f"reader@{mark}.example", "conversation_style": "siblings"}])
    invitations_notify_sent(invitation_ids=[i.pk for i in shared.invitations], tokens=dict(shared.tokens))
    roleplay_template = roleplay_template_create(story=story, created_by=owner, body={
        "template_name": f"{mark} roleplay", "difficulty_level": "beginner",
        "roles": [{"character_id": story.characters.get().pk, "role_name": f"{mark} role"}]})
    batch_job = BatchJob.objects.get(pk=invitation.batch_job_id)
    # Both organizations use the same key: only the caller's own topic may ever answer.
    topic = Topic.objects.create(organization=organization, key=f"alerts-{mark.lower()}", name=f"{mark} topic")  # keys are per organization
    TopicSubscription.objects.create(topic=topic, membership=subscriber)

    tenant = Tenant(
        mark=mark, organization=organization, team=team, owner=owner, admin=people[MembershipRole.ADMIN],
        member=people[MembershipRole.MEMBER], raw_key=raw_key, story=story, invitation=invitation,
        notification=notification, delivery=delivery, dead_letter=dead_letter, template=template, provider=provider,
        webhook=webhook, chain=chain, channel_configuration=channel_configuration, preference=preference, subscriber=subscriber,
        article=article, roleplay_template=roleplay_template, batch_job=batch_job, topic=topic,
        secrets=[raw_key, *tokens, *shared.tokens.values(), provider_secret, sendgrid_secret, outgoing_secret, incoming_secret],
    )
    tenant.ids = _ids_of(organization)
    return tenant


def _rows(organization: Organization) -> dict[str, Any]:
    """Every row an organization owns, by kind: what another organization must never see or change."""
    users = list(Membership.objects.filter(organization=organization).values_list("user_id", flat=True))
    return {
        "stories": Story.objects.filter(organization=organization),
        "invitations": StoryInvitation.objects.filter(
            Q(story__organization=organization)
            | Q(content_type="news_article", content_id__in=[str(pk) for pk in NewsArticle.objects.filter(
                organization=organization).values_list("pk", flat=True)])),
        "news_articles": NewsArticle.objects.filter(organization=organization),
        "news_narrations": NewsNarration.objects.filter(article__organization=organization),
        "roleplay_templates": RoleplayTemplate.objects.filter(story__organization=organization),
        "roleplay_roles": RoleplayCharacterRole.objects.filter(template__story__organization=organization),
        "batch_jobs": BatchJob.objects.filter(organization=organization),
        "topics": Topic.objects.filter(organization=organization),
        "topic_subscriptions": TopicSubscription.objects.filter(topic__organization=organization),
        "notifications": Notification.objects.filter(organization=organization),
        "deliveries": NotificationDelivery.objects.filter(organization=organization),
        "dead_letters": DeadLetter.objects.filter(organization=organization),
        "templates": NotificationTemplate.objects.filter(organization=organization),
        "template_channels": TemplateChannel.objects.filter(template__organization=organization),
        "preferences": NotificationPreference.objects.filter(Q(organization=organization) | Q(user_id__in=users)),
        "quiet_hours": QuietHours.objects.filter(Q(organization=organization) | Q(user_id__in=users)),
        "providers": NotificationProvider.objects.filter(organization=organization),
        "webhooks": Webhook.objects.filter(organization=organization),
        "chains": EscalationChain.objects.filter(organization=organization),
        "levels": EscalationLevel.objects.filter(chain__organization=organization),
        "channel_configurations": ChannelConfiguration.objects.filter(organization=organization),
        "audit": NotificationAuditLog.objects.filter(organization=organization),
        "api_keys": ApiKey.objects.filter(organization=organization),
        "memberships": Membership.objects.filter(organization=organization),
        "users": User.objects.filter(pk__in=users),
        "push_subscriptions": PushSubscription.objects.filter(user_id__in=users),
    }


def _ids_of(organization: Organization) -> dict[str, set[int]]:
    return {kind: set(qs.values_list("pk", flat=True)) for kind, qs in _rows(organization).items()}


def _state(organization: Organization) -> dict[str, list[dict[str, Any]]]:
    return {kind: list(qs.order_by("pk").values()) for kind, qs in _rows(organization).items()}


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _build_world() -> World:
    event_type = EventType.objects.filter(is_active=True).order_by("key").first()
    assert event_type is not None, "the event catalogue is loaded by a data migration"
    platform_secret = _secret("pm_")
    if not NotificationProvider.objects.filter(organization__isnull=True, code="postmark").exists():
        provider_create(organization_id=None, code="postmark", name="Platform postmark", secrets={"server_token": platform_secret})
    a = _build_tenant(A_MARK, event_type)
    b = _build_tenant(B_MARK, event_type)
    return World(a=a, b=b, secrets=[*a.secrets, *b.secrets, platform_secret], setup_logs=[],
                 b_state=_state(b.organization))


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:
    keys = override_settings(FIELD_ENCRYPTION_KEYS=[Fernet.generate_key().decode()])
    keys.enable()
    handler = _ListHandler()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    ensure_notification_catalog(django_db_blocker)
    with django_db_blocker.unblock():
        # Like Django's TestCase.setUpClass: a class-wide transaction each test nests a savepoint
        # in, marked as the test case's own so durable services may run inside it.
        block = transaction.atomic()
        block._from_testcase = True
        block.__enter__()
        try:
            built = _build_world()
        except BaseException:
            transaction.set_rollback(True)
            block.__exit__(None, None, None)
            keys.disable()
            raise
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
    built.setup_logs = handler.records
    yield built
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        block.__exit__(None, None, None)
    keys.disable()


# --- the endpoints ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    route: str  # relative to the site root, e.g. "api/v1/stories/<int:story_id>/"
    name: str | None
    methods: tuple[str, ...]

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/v1/")

    @property
    def is_admin_api(self) -> bool:
        return self.route.startswith("api/v1/admin/")

    @property
    def params(self) -> list[str]:
        return re.findall(r"<(?:\w+:)?(\w+)>", self.route)

    def url(self, tenant: Tenant) -> str:
        def fill(match: re.Match) -> str:
            name = match.group(1)
            if name in PARAM_LITERALS:
                return PARAM_LITERALS[name]
            if name not in PARAM_OBJECTS:
                raise AssertionError(f"{self.route}: no object for the path parameter {name!r}; add it to PARAM_OBJECTS")
            obj = getattr(tenant, PARAM_OBJECTS[name])
            return str(obj.external_id if name == "external_id" else obj.key if name == "key" else obj.pk)

        return "/" + re.sub(r"<(?:\w+:)?(\w+)>", fill, self.route)


def _methods(callback: Callable) -> tuple[str, ...]:
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:
        return ("get", "post")  # a function view: try a read and a write
    allowed = getattr(view_class, "http_method_names", METHODS)
    return tuple(m for m in METHODS if m in allowed and hasattr(view_class, m))


def _walk(patterns: list, prefix: str = "") -> Iterator[Endpoint]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route == STAFF_CONSOLE:
                continue
            yield from _walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield Endpoint(route=route, name=entry.name, methods=_methods(entry.callback))


def _is_public(endpoint: Endpoint) -> bool:
    return endpoint.route.startswith(PUBLIC_PREFIXES)


ENDPOINTS = [e for e in _walk(get_resolver().url_patterns) if not _is_public(e)]
API_ENDPOINTS = [e for e in ENDPOINTS if e.is_api]
PAGE_ENDPOINTS = [e for e in ENDPOINTS if not e.is_api]
WITH_IDS = [e for e in ENDPOINTS if e.params]
WITHOUT_IDS = [e for e in ENDPOINTS if not e.params]


def _bodies(world: World) -> dict[tuple[str | None, str], Any]:
    """Write bodies valid enough that an unscoped endpoint would really act on B's rows."""
    b = world.b
    channels = [{"channel": Channel.IN_APP, "content": {"en": {"title": "Taken", "body": "Taken."}}}]
    level = [{"level": 1, "delay_minutes": 1, "channels": [Channel.EMAIL]}]
    return {
        ("invitation-detail", "patch"): {"conversation_style": "playful"},
        ("story-invitations", "post"): {"invitations": [{"email": "someone@example.com", "conversation_style": "jovial"}]},
        ("admin-template", "put"): {"event_type": b.template.event_type, "name": "taken", "channels": channels},
        ("admin-template", "patch"): {"name": "taken"},
        ("admin-template-preview", "post"): {},
        ("admin-template-test-send", "post"): {"channel": Channel.EMAIL},
        ("admin-webhook", "put"): {"name": "taken", "is_active": False, "secret": "replaced-secret"},
        ("admin-webhook", "patch"): {"name": "taken", "is_active": False, "secret": "replaced-secret"},
        ("admin-escalation-chain", "put"): {"name": "taken", "levels": level},
        ("admin-escalation-chain", "patch"): {"name": "taken", "levels": level},
        ("admin-channel-configuration", "patch"): {"enabled": False},
        ("admin-provider", "patch"): {"name": "taken", "is_active": False, "secrets": {"auth_token": "replaced"}},
        # Bodies that point at B's rows from endpoints without an id in the path.
        ("admin-dead-letters-replay", "post"): {"ids": [b.dead_letter.pk]},
        ("admin-dead-letters-discard", "post"): {"ids": [b.dead_letter.pk]},
        ("admin-notifications-cancel", "post"): {"notification_ids": [b.notification.pk]},
        ("admin-deliveries-retry", "post"): {"delivery_ids": [b.delivery.pk]},
        ("admin-subscribers-bulk", "post"): {"subscribers": [{"external_id": b.subscriber.external_id, "email": "taken@example.com"}]},
        ("admin-subscriber", "put"): {"email": "taken@example.com"},
        ("admin-subscriber-preferences", "put"): {"preferences": [{"channels": {"EMAIL": False}}]},
        ("admin-escalation-chains", "post"): {
            "organization_id": b.organization.pk, "name": "planted", "levels": [
                {"level": 1, "delay_minutes": 1, "channels": [Channel.EMAIL], "recipient_type": "USER",
                 "recipient_user_id": b.owner.pk}]},
        ("admin-channel-configurations", "post"): {"organization_id": b.organization.pk, "channel": Channel.VOICE},
        ("admin-providers", "post"): {"organization_id": b.organization.pk, "code": "log_sms", "name": "planted"},
        ("admin-webhooks", "post"): {"organization_id": b.organization.pk, "name": "planted",
                                     "direction": WebhookDirection.OUTGOING, "url": "https://hooks.example.com/x"},
        ("admin-preferences", "put"): {"level": PreferenceLevel.TEAM, "team_id": b.team.pk,
                                       "preferences": [{"scope": "ALL", "channels": {"EMAIL": False}}]},
        ("admin-preferences", "post"): {"level": PreferenceLevel.TEAM, "team_id": b.team.pk,
                                        "preferences": [{"scope": "ALL", "channels": {"EMAIL": False}}]},
        ("admin-templates", "post"): {"event_type": b.template.event_type, "name": "planted", "channels": channels,
                                      "organization_id": b.organization.pk},
        ("events", "post"): {"type": b.template.event_type, "recipient_ids": [str(b.owner.pk)],
                             "organization_id": str(b.organization.pk)},
        ("stories", "post"): {"title": "mine", "content": "A story.", "organization": b.organization.pk},
        ("push-subscriptions", "delete"): {"endpoint": f"https://push.example.com/{B_MARK}"},
        ("push-subscriptions", "post"): {"endpoint": f"https://push.example.com/{B_MARK}",
                                         "keys": {"p256dh": "taken", "auth": "taken"}},
    }


def _close_stream(response) -> None:
    """Close the inbox stream unread (its status is what matters, not minutes of events), as the
    test client does: without closing the database connection the test's transaction lives on."""
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


# What the calls whose body points at B's rows must answer to A's owner and admin.
CROSS_REFERENCE_STATUS = {
    ("admin-dead-letters-replay", "post"): 404,
    ("admin-dead-letters-discard", "post"): 404,
    ("admin-deliveries-retry", "post"): 404,
    ("admin-escalation-chains", "post"): 400,  # B's owner is not a member of A
    ("admin-providers", "post"): 403,  # organization_id of B
    ("admin-preferences", "put"): 400,  # B's team
    ("admin-preferences", "post"): 400,
}


# Upserts keyed by the client's own id, which is per organization: a PUT of B's external id
# creates A's own subscriber under that id (B unchanged), and the DELETE after it removes that one.
UPSERT_BY_CLIENT_ID = {("admin-subscriber", "put"): {201}, ("admin-subscriber", "delete"): {200}}


# --- the checks --------------------------------------------------------------------------------------------


class Sweep:
    """Sends requests and collects every violation, so one run reports them all."""

    def __init__(self, world: World, client: APIClient, who: str) -> None:
        self.world = world
        self.client = client
        self.who = who
        self.problems: list[str] = []
        self.bodies = _bodies(world)
        self.secrets = list(world.secrets)
        self.baseline = world.b_state
        self.requests = 0

    def problem(self, method: str, url: str, text: str) -> None:
        self.problems.append(f"{self.who}: {method.upper()} {url}: {text}")

    def call(self, endpoint: Endpoint, method: str, url: str, **extra: Any):
        body = self.bodies.get((endpoint.name, method), {})
        kwargs: dict[str, Any] = {"format": "json"} if method != "get" else {}
        if method != "get":
            kwargs["data"] = body
        response = getattr(self.client, method)(url, **kwargs, **extra)
        self.requests += 1
        if getattr(response, "streaming", False):
            _close_stream(response)
        else:
            self.check_secrets(method, url, response)
        if response.status_code >= 500:
            self.problem(method, url, f"answered {response.status_code}")
        return response

    def text(self, response) -> str:
        if getattr(response, "streaming", False):
            return ""
        return response.content.decode("utf-8", "replace")

    def check_secrets(self, method: str, url: str, response) -> None:
        text = self.text(response) + "".join(f"{k}: {v}\n" for k, v in response.items())
        for value in self.secrets:
            if value in text:
                self.problem(method, url, f"the response carries a planted secret ({value[:6]}…)")

    def check_no_b(self, method: str, url: str, response, endpoint: Endpoint) -> None:
        """Nothing of B in the answer: no marker text, no B organization id, no B row id in a typed list."""
        text = self.text(response)
        if B_MARK in text.lower():
            snippet = text[max(0, text.lower().index(B_MARK) - 80): text.lower().index(B_MARK) + 40]
            self.problem(method, url, f"shows organization B's data: …{snippet}…")
        if not text or "json" not in response.get("Content-Type", ""):
            return
        try:
            data = json.loads(text)
        except ValueError:
            return
        b_org = self.world.b.organization.pk
        for key, value in _walk_json(data):
            if key == "organization_id" and value == b_org:
                self.problem(method, url, "shows a row with organization_id of B")
                break
        kind = LIST_KINDS.get(endpoint.name or "")
        if kind and isinstance(data, dict | list):
            rows = data.get("results", []) if isinstance(data, dict) else data
            leaked = {row.get("id") for row in rows if isinstance(row, dict)} & self.world.b.ids[kind]
            if leaked:
                self.problem(method, url, f"lists B's {kind} {sorted(leaked)}")

    def check_b_unchanged(self, method: str, url: str) -> None:
        if method == "get":
            return
        now = _state(self.world.b.organization)
        for kind, rows in self.baseline.items():
            if now[kind] != rows:
                self.problem(method, url, f"changed organization B's {kind}")
        self.baseline = now  # report each change once, at the request that made it

    def report(self) -> None:
        assert not self.problems, f"{len(self.problems)} violation(s):\n" + "\n".join(self.problems)


# List endpoint name → the kind of row its `results` (or top-level list) holds.
LIST_KINDS = {
    "story-list": "stories",
    "story-invitations": "invitations",
    "inbox-list": "notifications",
    "admin-history": "notifications",
    "admin-audit-log": "audit",
    "admin-templates": "templates",
    "admin-webhooks": "webhooks",
    "admin-dead-letters": "dead_letters",
    "admin-deliveries": "deliveries",
    "admin-escalation-chains": "chains",
    "admin-channel-configurations": "channel_configurations",
    "admin-providers": "providers",
    "admin-preferences": "preferences",
}
# Lists where A's owner must find A's own rows: proof the sweep reads real answers.
OWN_ROWS_LISTED = {
    "story-list", "inbox-list", "admin-history", "admin-audit-log", "admin-templates", "admin-webhooks",
    "admin-dead-letters", "admin-deliveries", "admin-escalation-chains", "admin-channel-configurations", "admin-providers",
}


def _walk_json(data: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield key, value
            yield from _walk_json(value)
    elif isinstance(data, list):
        for item in data:
            yield from _walk_json(item)


def _client_for(world: World, who: str) -> APIClient:
    client = APIClient()
    if who == "key":
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {world.a.raw_key}")
    elif who != "anonymous":
        client.force_login(getattr(world.a, who))
    return client


def _check_logs(records: list[logging.LogRecord], world: World, extra: list[str] | None = None) -> list[str]:
    formatter = logging.Formatter()
    leaks = []
    for record in records:
        try:
            text = formatter.format(record) + repr(record.__dict__)
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is still searched raw
            text = repr(record.__dict__)
        for value in [*world.secrets, *(extra or [])]:
            if value in text:
                leaks.append(f"log record {record.name} {record.levelname} carries a planted secret ({value[:6]}…)")
    return leaks


@pytest.fixture(autouse=True)
def _realtime_calls_in_the_test_transaction(settings):
    # The sweep's requests run in this process, inside the test's open transaction (the session
    # of force_login lives there): the stream's database calls take Channels' own thread, whose
    # connection sees it, not the realtime tier's pool of threads with connections of their own.
    settings.REALTIME_DB_THREADS = 0


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


# --- tests ---------------------------------------------------------------------------------------------------


def test_the_sweep_covers_every_endpoint(world):
    """Guards the walk itself: API and pages are found, every id parameter has an object."""
    assert len(API_ENDPOINTS) >= 45 and len(PAGE_ENDPOINTS) >= 3
    names = {e.name for e in ENDPOINTS}
    assert {"story-detail", "admin-providers", "admin-webhook-test", "inbox-read", "story-page", "outbox"} <= names
    assert not {e.name for e in ENDPOINTS if e.name and e.name.startswith(("invitation-by-token", "webhook-incoming"))}
    for endpoint in WITH_IDS:
        assert endpoint.url(world.b).count("/") >= 2


def test_anonymous_callers_get_401_403_or_the_login_page(world, db, debug_logs):
    sweep = Sweep(world, _client_for(world, "anonymous"), "anonymous")
    for endpoint in ENDPOINTS:
        url = endpoint.url(world.a)
        for method in endpoint.methods:
            response = sweep.call(endpoint, method, url)
            if endpoint.is_api:
                if response.status_code not in (401, 403):
                    sweep.problem(method, url, f"answered {response.status_code}, expected 401/403")
            elif endpoint.name in STAFF_ONLY_PAGES:
                if response.status_code != 404:
                    sweep.problem(method, url, f"answered {response.status_code}, expected 404 (no such page)")
            elif response.status_code not in (302, 401, 403) or (
                response.status_code == 302 and "login" not in response["Location"]
            ):
                sweep.problem(method, url, f"answered {response.status_code}, expected a redirect to the login page")
            sweep.check_b_unchanged(method, url)
    sweep.problems += _check_logs(debug_logs.records, world)
    sweep.report()


@pytest.mark.parametrize("who", ["owner", "admin", "member", "key"])
def test_b_ids_answer_404_and_change_nothing(world, db, debug_logs, who):
    sweep = Sweep(world, _client_for(world, who), f"A's {who}")
    for endpoint in WITH_IDS:
        url = endpoint.url(world.b)
        for method in endpoint.methods:
            response = sweep.call(endpoint, method, url)
            allowed = {404}
            if (endpoint.name, method) in UPSERT_BY_CLIENT_ID:
                allowed = UPSERT_BY_CLIENT_ID[(endpoint.name, method)]
            if who == "member" and endpoint.is_admin_api:
                allowed = {403}
            elif who == "key":
                # An API key is neither a person nor an admin, and pages only know sessions.
                allowed = ({403, 404} | allowed) if endpoint.is_api else {302}
            if response.status_code not in allowed or (
                response.status_code == 302 and "login" not in response["Location"]
            ):
                sweep.problem(method, url, f"answered {response.status_code}, expected {sorted(allowed)}")
            sweep.check_no_b(method, url, response, endpoint)
            sweep.check_b_unchanged(method, url)
    sweep.problems += _check_logs(debug_logs.records, world)
    sweep.report()


@pytest.mark.parametrize("who", ["owner", "admin", "member", "key"])
def test_lists_and_id_less_calls_never_show_or_touch_b(world, db, debug_logs, who):
    sweep = Sweep(world, _client_for(world, who), f"A's {who}")
    for endpoint in WITHOUT_IDS:
        url = endpoint.url(world.a)
        for method in endpoint.methods:
            response = sweep.call(endpoint, method, url)
            if who == "member" and endpoint.is_admin_api and response.status_code != 403:
                sweep.problem(method, url, f"answered {response.status_code} to a member, expected 403")
            expected = CROSS_REFERENCE_STATUS.get((endpoint.name, method))
            if who in ("owner", "admin") and expected and response.status_code != expected:
                sweep.problem(method, url, f"answered {response.status_code} to a body naming B's rows, expected {expected}")
            sweep.check_no_b(method, url, response, endpoint)
            sweep.check_b_unchanged(method, url)
            if (method == "get" and who == "owner" and endpoint.name in OWN_ROWS_LISTED
                    and A_MARK not in sweep.text(response).lower()):
                sweep.problem(method, url, f"answered {response.status_code} without A's own rows")
    sweep.problems += _check_logs(debug_logs.records, world)
    sweep.report()


def test_filters_and_organization_header_cannot_reach_b(world, db, debug_logs):
    """Query parameters naming B and an X-Organization header of B are ignored or refused."""
    b = world.b
    sweep = Sweep(world, _client_for(world, "owner"), "A's owner")
    queries = (
        f"organization_id={b.organization.pk}&organization={b.organization.pk}"
        f"&notification={b.notification.pk}&notification_id={b.notification.pk}&recipient={b.owner.pk}"
        f"&team_id={b.team.pk}&user_id={b.owner.pk}&webhook_id={b.webhook.pk}"
    )
    for endpoint in WITHOUT_IDS:
        if "get" not in endpoint.methods or endpoint.name == "inbox-stream":
            continue
        url = endpoint.url(world.a)
        sweep.check_no_b("get", url + "?" + queries, sweep.call(endpoint, "get", url + "?" + queries), endpoint)
        for header in (b.organization.slug, str(b.organization.pk)):
            response = sweep.call(endpoint, "get", url, HTTP_X_ORGANIZATION=header)
            sweep.check_no_b("get", f"{url} (X-Organization: {header})", response, endpoint)
    sweep.problems += _check_logs(debug_logs.records, world)
    sweep.report()


def test_a_owner_reads_own_rows_by_id_without_secrets(world, db, debug_logs):
    """The positive control: A's ids answer 200 to A's owner, with every secret still hidden."""
    sweep = Sweep(world, _client_for(world, "owner"), "A's owner")
    for endpoint in WITH_IDS:
        if "get" not in endpoint.methods:
            continue
        url = endpoint.url(world.a)
        response = sweep.call(endpoint, "get", url)
        if response.status_code != 200:
            sweep.problem("get", url, f"answered {response.status_code} for A's own row")
        sweep.check_no_b("get", url, response, endpoint)
    sweep.problems += _check_logs(debug_logs.records, world)
    sweep.report()


def test_staff_console_and_setup_logs(world, db):
    client = _client_for(world, "owner")
    response = client.get("/admin/")
    assert response.status_code == 302 and "login" in response["Location"]
    assert _check_logs(world.setup_logs, world) == []
    # The planted secrets really are in the database, encrypted or hashed, never in clear.
    a = world.a
    stored = json.dumps(list(NotificationProvider.objects.filter(organization=a.organization).values("config", "secrets")))
    stored += json.dumps(list(Webhook.objects.filter(organization=a.organization).values("secret", "settings")))
    assert not [value for value in a.secrets if value in stored]
    assert NotificationProvider.objects.get(pk=a.provider.pk).secrets


def test_a_event_cannot_notify_b_people(world, db, debug_logs):
    sweep = Sweep(world, _client_for(world, "key"), "A's key")
    events = next(e for e in WITHOUT_IDS if e.name == "events")
    for body in (
        {"type": world.b.template.event_type, "recipient_ids": [str(world.b.owner.pk)]},
        {"type": world.b.template.event_type, "recipient_ids": [str(world.a.owner.pk)],
         "organization_id": str(world.b.organization.pk)},
    ):
        sweep.bodies[("events", "post")] = body
        response = sweep.call(events, "post", "/api/v1/events/")
        if response.status_code not in (400, 403):
            sweep.problem("post", "/api/v1/events/", f"answered {response.status_code} to {body}")
        sweep.check_b_unchanged("post", "/api/v1/events/")
    sweep.problems += _check_logs(debug_logs.records, world)
    sweep.report()


def test_secrets_set_through_the_api_are_never_read_back(world, db, debug_logs):
    """A's owner sets fresh secrets and sends invitations; only the one-time answers may show them."""
    a = world.a
    client = _client_for(world, "owner")
    fresh = [_secret("whnew_"), _secret("whpost_"), _secret("twnew_"), _secret("mgkey_"), _secret("mgsig_")]
    answers = [
        client.patch(f"/api/v1/admin/webhooks/{a.webhook.pk}/", {"secret": fresh[0]}, format="json"),
        client.post("/api/v1/admin/webhooks/", {"name": "fresh", "direction": WebhookDirection.OUTGOING,
                                                "url": "https://hooks.example.com/fresh", "secret": fresh[1]}, format="json"),
        client.patch(f"/api/v1/admin/providers/{a.provider.pk}/", {"secrets": {"auth_token": fresh[2]}}, format="json"),
        client.post("/api/v1/admin/providers/", {"code": "mailgun", "name": "fresh mailgun", "config": {"domain": "mg.example.com"},
                                                 "secrets": {"api_key": fresh[3], "webhook_signing_key": fresh[4]}}, format="json"),
    ]
    assert [r.status_code for r in answers] == [200, 201, 200, 201], [r.content[:300] for r in answers]
    for response in answers:
        assert not [value for value in fresh if value in response.content.decode()]
    # Shown once: a generated signing secret and the invitation links of the create answers.
    generated = client.post("/api/v1/admin/webhooks/", {"name": "generated", "direction": WebhookDirection.OUTGOING,
                                                        "url": "https://hooks.example.com/generated"}, format="json")
    assert generated.status_code == 201 and generated.json()["secret"].startswith("whsec_")
    invited = client.post(f"/api/v1/stories/{a.story.pk}/invitations/",
                          {"invitations": [{"email": "fresh-guest@example.com", "conversation_style": "siblings"}]}, format="json")
    assert invited.status_code == 201
    invite_token = invited.json()["invitations"][0]["invite_url"].rstrip("/").rsplit("/", 1)[-1]
    fresh += [generated.json()["secret"], invite_token]

    sweep = Sweep(world, client, "A's owner after setting secrets")
    sweep.secrets += fresh
    for endpoint in ENDPOINTS:
        if "get" not in endpoint.methods or endpoint.name == "inbox-stream":
            continue
        url = endpoint.url(a)
        response = sweep.call(endpoint, "get", url)
        expected = (404 if endpoint.name in STAFF_ONLY_PAGES else 401 if endpoint.name in STAFF_OR_TOKEN
                    else 405 if endpoint.name in POST_ONLY_PAGES else 200)
        if response.status_code != expected:
            sweep.problem("get", url, f"answered {response.status_code} to A's owner, expected {expected}")
    sweep.problems += _check_logs(debug_logs.records, world, extra=fresh)
    sweep.report()


def test_an_organizations_own_changes_stay_in_its_audit_log(world, db):
    """Deleting an organization's template override is audited under that organization, so its
    admins find it in their audit log (and it is not a platform-level row only staff can see)."""
    a = world.a
    client = _client_for(world, "admin")
    assert client.delete(f"/api/v1/admin/templates/{a.template.pk}/").status_code == 204
    rows = client.get("/api/v1/admin/audit-log/?action=TEMPLATE_DELETED").json()["results"]
    assert [(row["organization_id"], row["details"]["template_id"]) for row in rows] == [(a.organization.pk, a.template.pk)]
    b_admin = APIClient()
    b_admin.force_login(world.b.admin)
    assert b_admin.get("/api/v1/admin/audit-log/?action=TEMPLATE_DELETED").json()["results"] == []


@pytest.fixture
def echo_peer():
    """A loopback endpoint that answers every call with an error echoing the credentials it was sent."""
    import base64

    from tests.providers.peers import HttpPeer, Reply

    def echo(recorded) -> Reply:
        sent = [recorded.header(name) for name in ("Authorization", "X-Api-Key", "X-Postmark-Server-Token")]
        for value in list(sent):
            if value.startswith("Basic "):
                sent.append(base64.b64decode(value[6:]).decode(errors="replace"))
        return Reply(401, {"message": f"rejected credentials {sent}", "errors": [{"message": f"{sent}"}]})

    peer = HttpPeer()
    for method in ("GET", "POST"):
        peer.on(method, r"/.*", echo)
    peer.start()
    yield peer
    peer.stop()


def test_actions_on_own_rows_never_echo_credentials(world, db, debug_logs, echo_peer, settings):
    """Webhook tests, provider health checks and template test-sends of A's own rows, against an
    endpoint that echoes the credentials back in its error: none reaches an answer, a stored
    error, the audit log or a log record."""
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    a = world.a
    client = _client_for(world, "owner")
    fresh: list[str] = []
    for auth_type in ("BEARER", "API_KEY", "BASIC"):
        secret = _secret(f"wh{auth_type.lower()}_")
        fresh.append(secret)
        made = client.post("/api/v1/admin/webhooks/", {
            "name": f"echo {auth_type}", "direction": WebhookDirection.OUTGOING, "url": f"{echo_peer.url}/hook",
            "auth_type": auth_type, "secret": secret}, format="json")
        assert made.status_code == 201, made.content
        tested = client.post(f"/api/v1/admin/webhooks/{made.json()['id']}/test/", format="json")
        assert tested.status_code == 200 and tested.json()["delivered"] is False
    records = []
    for code, config in (("sendgrid", {"api_url": f"{echo_peer.url}/v3/"}),
                         ("twilio_sms", {"base_url": echo_peer.url})):
        record = NotificationProvider.objects.get(organization=a.organization, code=code)
        assert client.patch(f"/api/v1/admin/providers/{record.pk}/", {"config": {**record.config, **config}},
                            format="json").status_code == 200
        records.append(record)
    # Sends first (the providers are still healthy, so they are tried), then the health checks.
    answers = [client.post(f"/api/v1/admin/templates/{a.template.pk}/test-send/", {"channel": channel}, format="json")
               for channel in (Channel.SMS, Channel.EMAIL)]
    assert len(echo_peer.calls()) >= 5, "webhooks and providers reached the endpoint"
    for record in records:
        checked = client.post(f"/api/v1/admin/providers/{record.pk}/health-check/", format="json")
        assert checked.status_code == 200 and checked.json()["check"]["is_healthy"] is False
        answers.append(checked)

    sweep = Sweep(world, client, "A's owner after actions")
    sweep.secrets += fresh
    for response in answers:
        sweep.check_secrets("post", response.wsgi_request.path, response)
    for endpoint in ENDPOINTS:
        if "get" in endpoint.methods and endpoint.name != "inbox-stream":
            sweep.call(endpoint, "get", endpoint.url(a))
    stored = json.dumps(list(Webhook.objects.filter(organization=a.organization).values("last_error")), default=str)
    stored += json.dumps(list(NotificationProvider.objects.filter(organization=a.organization).values("health_message")))
    stored += json.dumps(list(NotificationAuditLog.objects.filter(organization=a.organization).values("details", "error_message")),
                         default=str)
    sweep.problems += [f"a stored error carries a secret ({value[:6]}…)" for value in sweep.secrets if value in stored]
    sweep.problems += _check_logs(debug_logs.records, world, extra=fresh)
    sweep.report()
