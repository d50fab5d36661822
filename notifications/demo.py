"""Demo data of the notification platform for `make run` (called by `manage.py seed_demo`).

Shows every feature working on the first run: people with phones and time zones, an
organization preference with a user override, quiet hours, an escalation chain, a log provider
per channel — the organization's own SMS provider in a simulated outage, so deliveries fail
over to the platform's — a digest preference, some traffic and a few dead letters. Everything
goes through the same services as the API. Idempotent: a second run changes nothing.
"""
from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import ApiKey, Membership, MembershipRole, Organization, User, hash_api_key
from notifications.enums import (
    AuditActorType,
    Channel,
    Criticality,
    EscalationCondition,
    EscalationRecipientType,
    PreferenceLevel,
    QuietHoursAction,
)
from notifications.models import EscalationChain, EscalationLevel, NotificationDelivery
from providers.models import NotificationProvider

# The key of the README's curl example; for a local demo only (seed_demo is not for production).
DEMO_API_KEY = "trb_demo-local-key-for-the-readme"
# (username, display name, email, phone, time zone, locale). Created right after the demo
# user, so on a fresh database "ada" is user 2, the recipient of the README's example.
PEOPLE = [
    ("ada", "Ada Lovelace", "ada@troubadour.local", "+33612345678", "Europe/Paris", "fr"),
    ("grace", "Grace Hopper", "grace@troubadour.local", "+12025550143", "America/New_York", "en"),
    ("linus", "Linus Pauling", "linus@troubadour.local", "+81312345678", "Asia/Tokyo", "en"),
]
CHAIN_NAME = "Demo incident escalation"


def _people(organization: Organization) -> dict[str, User]:
    people = {}
    for username, name, email, phone, tz, locale in PEOPLE:
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": email, "display_name": name, "phone": phone, "timezone": tz, "locale": locale},
        )
        if created:
            user.set_password("troubadour-demo")
            user.save(update_fields=["password"])
        Membership.objects.get_or_create(user=user, organization=organization,
                                         defaults={"role": MembershipRole.ADMIN if username == "ada" else MembershipRole.MEMBER})
        people[username] = user
    return people


def _api_key(organization: Organization, owner: User) -> None:
    if not ApiKey.objects.filter(key_hash=hash_api_key(DEMO_API_KEY)).exists():
        ApiKey.objects.create(organization=organization, name="demo (README)", prefix=DEMO_API_KEY[: ApiKey.PREFIX_LEN + 4],
                              key_hash=hash_api_key(DEMO_API_KEY), created_by=owner)


def _providers(organization: Organization) -> None:
    from providers.services import provider_create

    wanted: list[tuple[int | None, str, str, int, dict[str, Any]]] = [
        # The organization's SMS account is down: its sends fail and the platform's takes over.
        (organization.pk, "log_sms", "Demo SMS (outage)", 0, {"simulate_outage": True}),
        (None, "log_sms", "Platform SMS", 10, {}),
        (None, "log_push", "Platform push", 10, {}),
        (None, "log_whatsapp", "Platform WhatsApp", 10, {}),
        (None, "log_voice", "Platform voice", 10, {}),
    ]
    for organization_id, code, name, priority, config in wanted:
        scope = {"organization_id": organization_id} if organization_id is not None else {"organization__isnull": True}
        if not NotificationProvider.objects.filter(code=code, **scope).exists():
            provider_create(organization_id=organization_id, code=code, name=name, priority=priority, config=config, secrets={})


def _preferences(organization: Organization, people: dict[str, User]) -> None:
    from notifications.serializers_intake import PreferencesPutSerializer
    from notifications.services import preferences_replace

    def items(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
        serializer = PreferencesPutSerializer(data={"preferences": raw})
        serializer.is_valid(raise_exception=True)
        return [dict(i) for i in serializer.validated_data["preferences"]]

    system: dict[str, Any] = {"actor_type": AuditActorType.SYSTEM, "actor_label": "seed_demo"}
    # Organization: no SMS for collaboration chatter...
    preferences_replace(level=PreferenceLevel.ORGANIZATION, organization_id=organization.pk,
                        items=items([{"category": "COLLABORATION", "channels": {"SMS": False}}]), **system)
    # ...but Ada wants them by SMS anyway (a user override), and Linus reads his email as a daily digest.
    preferences_replace(level=PreferenceLevel.USER, user_id=people["ada"].pk, audit_organization_id=organization.pk,
                        items=items([{"category": "COLLABORATION", "channels": {"SMS": True}}]), **system)
    preferences_replace(level=PreferenceLevel.USER, user_id=people["linus"].pk, audit_organization_id=organization.pk,
                        items=items([{"category": "PROJECT_MANAGEMENT",
                                      "channels": {"EMAIL": {"enabled": True, "digest_frequency": "DAILY"}}}]), **system)


def _quiet_hours(organization: Organization, people: dict[str, User]) -> None:
    from notifications.services import quiet_hours_set

    quiet_hours_set(user=people["grace"], organization_id=organization.pk, timezone_name="America/New_York",
                    default_action=QuietHoursAction.HOLD, allow_critical=True,
                    schedules=[{"start": "22:00", "end": "07:00"}],
                    channel_rules=[{"channel": Channel.IN_APP, "action": QuietHoursAction.ALLOW, "allow_critical": True}])


def _escalation_chain(organization: Organization, people: dict[str, User]) -> None:
    chain, created = EscalationChain.objects.get_or_create(
        organization=organization, name=CHAIN_NAME,
        defaults={"description": "Critical incidents: the recipient, then the admins by SMS, then Ada by phone.",
                  "trigger_criticality": Criticality.CRITICAL, "trigger_event_types": ["incident.escalated"]},
    )
    if created:
        EscalationLevel.objects.bulk_create([
            EscalationLevel(chain=chain, level=0, delay_minutes=0, channels=[Channel.IN_APP, Channel.EMAIL],
                            recipient_type=EscalationRecipientType.ORIGINAL, condition=EscalationCondition.NOT_ACKNOWLEDGED),
            EscalationLevel(chain=chain, level=1, delay_minutes=5, channels=[Channel.SMS, Channel.PUSH],
                            recipient_type=EscalationRecipientType.ROLE, recipient_role=MembershipRole.ADMIN,
                            condition=EscalationCondition.NOT_ACKNOWLEDGED),
            EscalationLevel(chain=chain, level=2, delay_minutes=15, channels=[Channel.VOICE],
                            recipient_type=EscalationRecipientType.USER, recipient_user=people["ada"],
                            condition=EscalationCondition.NOT_ACKNOWLEDGED),
        ])


def _traffic(organization: Organization, people: dict[str, User], owner: User) -> None:
    """A few events through the real intake (the worker sends them once it starts), and two
    dead letters made by the retry engine's own dead-lettering."""
    from notifications.engine.retry import deliveries_dead_letter
    from notifications.services import event_emit

    ids = [str(u.pk) for u in (owner, *people.values())]
    event_emit(organization=organization, type="task.assigned", recipient_ids=ids[1:], channels=["IN_APP", "EMAIL", "SMS"],
               resource={"type": "task", "id": "T-1", "name": "Polish the lighthouse lens"},
               data={"taskTitle": "Polish the lighthouse lens", "assignerName": "Demo Storyteller", "projectName": "Greyrock"},
               correlation_id="demo-task-1", source="demo")
    event_emit(organization=organization, type="incident.escalated", recipient_ids=ids[:2], criticality=Criticality.CRITICAL,
               resource={"type": "incident", "id": "INC-7", "name": "Lamp out at Greyrock Point"},
               data={"incidentTitle": "Lamp out at Greyrock Point", "severity": "SEV1"}, correlation_id="demo-incident-7",
               source="demo")
    result = event_emit(organization=organization, type="task.assigned", recipient_ids=[str(people["grace"].pk)],
                        channels=["EMAIL", "SMS"], data={"taskTitle": "Order new wicks"}, correlation_id="demo-task-2",
                        source="demo")
    failed = NotificationDelivery.objects.filter(notification_id__in=[n[0] for n in result.notifications])
    deliveries_dead_letter(delivery_ids=list(failed.values_list("pk", flat=True)),
                           reason="demo: the provider refused the message (invalid sender id)")


def demo_notifications_seed(*, organization: Organization, owner: User) -> bool:
    """Returns True when it created the data, False when it was already there. Call it outside
    a transaction: provider records are created in their own (durable) ones."""
    _providers(organization)
    with transaction.atomic():
        first_run = not User.objects.filter(username=PEOPLE[0][0]).exists()
        people = _people(organization)
        _api_key(organization, owner)
        if first_run:
            _preferences(organization, people)
            _quiet_hours(organization, people)
        _escalation_chain(organization, people)
        if first_run:
            _traffic(organization, people, owner)
    return first_run
