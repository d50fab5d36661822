"""The notification schema: shipped catalog, constraints, translations and the admin."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.contrib import admin
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation

from notifications.engine.rendering import (
    allowed_variables_for,
    content_render,
    template_channel_contents,
    template_context_build,
    template_validate,
)
from notifications.enums import (
    AuditAction,
    BatchFrequency,
    BatchStatus,
    Channel,
    Criticality,
    DeliveryStatus,
    EventCategory,
    IdempotencyStatus,
    PreferenceLevel,
    PreferenceScope,
)
from notifications.models import (
    ChannelConfiguration,
    ChannelPreference,
    CriticalityRouting,
    DeadLetter,
    EscalationChain,
    EscalationLevel,
    EventType,
    BusCommand,
    IdempotencyRecord,
    Notification,
    NotificationAuditLog,
    NotificationBatch,
    NotificationDelivery,
    NotificationPreference,
    NotificationTemplate,
    QuietHours,
    QuietHoursChannelRule,
    QuietHoursSchedule,
    TemplateChannel,
    TemplateVersion,
    UserPresence,
    Webhook,
)
from notifications.models import Topic, TopicSubscription
from providers.models import NotificationProvider
from notifications.catalogue import EVENTS
from notifications.taxonomy import catalog_load

from ..factories import OrganizationFactory, ProjectFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

# Seed 004 section 5.2, typed independently of notifications.taxonomy: key -> default criticality.
SEED_EVENT_TYPES = {
    "task.assigned": "MEDIUM", "task.unassigned": "LOW", "task.status_changed": "LOW", "task.due_soon": "MEDIUM",
    "task.overdue": "HIGH", "task.mentioned": "MEDIUM", "task.comment_added": "LOW",
    "team.invite": "MEDIUM", "team.member_added": "LOW", "team.member_removed": "LOW",
    "project.access_requested": "MEDIUM", "project.access_granted": "MEDIUM", "review.requested": "MEDIUM",
    "review.approved": "LOW", "review.changes_requested": "MEDIUM", "review.commented": "LOW",
    "plan.generated": "LOW", "plan.approved": "LOW", "plan.rejected": "MEDIUM", "execution.started": "LOW",
    "execution.completed": "MEDIUM", "execution.failed": "HIGH", "ai.error": "HIGH",
    "system.maintenance": "MEDIUM", "system.outage": "CRITICAL", "api_key.expiring": "HIGH", "api_key.expired": "HIGH",
    "security.suspicious_login": "CRITICAL", "security.password_changed": "MEDIUM", "security.2fa_disabled": "HIGH",
    "incident.created": "HIGH", "incident.assigned": "HIGH", "incident.escalated": "CRITICAL",
    "incident.updated": "MEDIUM", "incident.resolved": "MEDIUM", "incident.reopened": "HIGH",
    "meeting.reminder": "MEDIUM", "meeting.cancelled": "MEDIUM", "meeting.rescheduled": "MEDIUM", "calendar.conflict": "LOW",
}
STORY_EVENT_TYPES = {"story.invitation", "story.invitation_accepted", "news.invitation", "roleplay.cast_complete"}
ALL_CHANNELS = set(Channel.values)

# GSM 03.38 basic character set (plus the extension table characters, which cost two units).
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€")


def _gsm7_units(text: str) -> int | None:
    """Septets needed in GSM-7, or None if the text needs UCS-2."""
    units = 0
    for char in text:
        if char in GSM7_BASIC:
            units += 1
        elif char in GSM7_EXTENDED:
            units += 2
        else:
            return None
    return units


# --- the shipped catalog -------------------------------------------------------------------


def test_every_seed_event_type_is_loaded_with_templates_in_both_languages_for_every_channel(django_assert_max_num_queries):
    expected = set(SEED_EVENT_TYPES) | STORY_EVENT_TYPES
    with django_assert_max_num_queries(3):
        types = {et.key: et for et in EventType.objects.filter(key__in=expected)}
        templates = {
            t.key: t
            for t in NotificationTemplate.objects.filter(organization__isnull=True, key__in=expected).prefetch_related("channels")
        }
    assert set(types) == expected
    assert set(templates) == expected
    for key, criticality in SEED_EVENT_TYPES.items():
        assert types[key].default_criticality == criticality, key
    for key in expected:
        event_type = types[key]
        assert event_type.is_active and event_type.variable_mapping, key
        assert set(event_type.default_channels) <= set(event_type.allowed_channels), key
        assert Channel.IN_APP in event_type.allowed_channels, key
        template = templates[key]
        assert template.is_default and template.is_active and template.event_type == key
        channels = {tc.channel: tc for tc in template.channels.all()}
        assert set(channels) == ALL_CHANNELS, key
        for channel, tc in channels.items():
            for language in ("en", "fr"):
                assert getattr(tc, f"body_{language}"), (key, channel, language)
                if channel == Channel.EMAIL:
                    assert getattr(tc, f"subject_{language}") and "<a href=" in getattr(tc, f"body_html_{language}")
                if channel in (Channel.IN_APP, Channel.PUSH):
                    assert getattr(tc, f"title_{language}")
            # English and French are different texts, not a copy.
            assert tc.body_en != tc.body_fr, (key, channel)


def test_seed_mappings_are_kept_verbatim():
    task = EventType.objects.get(key="task.assigned")
    assert task.category == EventCategory.PROJECT_MANAGEMENT
    assert task.default_channels == ["IN_APP", "EMAIL"]
    assert task.allowed_channels == ["IN_APP", "EMAIL", "PUSH", "SMS"]
    assert task.variable_mapping == {
        "task.title": "data.taskTitle", "task.id": "resourceId",
        "assigner.name": "data.assignerName", "project.name": "data.projectName",
    }
    incident = EventType.objects.get(key="incident.created")
    assert incident.default_channels == ["IN_APP", "EMAIL", "PUSH", "SMS"]
    assert set(incident.allowed_channels) == ALL_CHANNELS
    assert incident.variable_mapping == {
        "incident.title": "data.incidentTitle", "incident.severity": "data.severity", "incident.id": "resourceId",
    }
    invitation = EventType.objects.get(key="story.invitation")
    assert {"inviter.name", "story.title", "invite.url", "invite.message", "invite.style"} <= set(invitation.variable_mapping)


def test_shipped_templates_pass_save_time_validation_and_render_in_both_languages():
    templates = NotificationTemplate.objects.filter(organization__isnull=True, is_default=True).prefetch_related("channels")
    mappings = dict(EventType.objects.values_list("key", "variable_mapping"))
    checked = 0
    for template in templates:
        mapping = mappings[template.event_type]
        allowed = allowed_variables_for(mapping)
        # Every mapped variable gets a value, so nothing renders empty by accident.
        source = {"data": {path.split(".", 1)[1]: f"V-{name}" for name, path in mapping.items() if path.startswith("data.")}, "resourceId": "R-1"}
        context = template_context_build(
            variable_mapping=mapping, source=source,
            standard={"recipient.name": "Ada", "actor.name": "Lin", "action_url": "https://troubadour.test/n/1"},
        )
        for tc in template.channels.all():
            fields = {f"{name}_{lang}": getattr(tc, f"{name}_{lang}") or "" for name in ("subject", "title", "body", "body_html", "action_label") for lang in ("en", "fr")}
            template_validate(channel_contents=fields, allowed_variables=allowed)
            for lang in ("en", "fr"):
                rendered = content_render(contents=template_channel_contents(tc, locale=lang), context=context)
                assert rendered.body and "{{" not in rendered.body and "{%" not in rendered.body, (template.key, tc.channel)
                checked += 1
    assert checked == len(EVENTS) * 6 * 2


def test_sms_templates_are_gsm7_and_fit_one_segment_with_typical_values():
    mappings = dict(EventType.objects.values_list("key", "variable_mapping"))
    over_one_segment = []
    for tc in TemplateChannel.objects.filter(channel=Channel.SMS, template__organization__isnull=True).select_related("template"):
        mapping = mappings[tc.template.event_type]
        # Typical values: a 20-character title or name, a 30-character link.
        source = {"data": {path.split(".", 1)[1]: "Quarterly report v2" for path in mapping.values() if path.startswith("data.")}, "resourceId": "T-1042"}
        context = template_context_build(
            variable_mapping=mapping, source=source, standard={"action_url": "https://trb.example/n/8f3a2c"}
        )
        for lang in ("en", "fr"):
            text = content_render(contents=template_channel_contents(tc, locale=lang), context=context).body
            units = _gsm7_units(text)
            assert units is not None, f"{tc.template.key} {lang} needs UCS-2: {text!r}"
            if units > 160:
                over_one_segment.append((tc.template.key, lang, units))
    assert over_one_segment == []


def test_catalog_load_is_idempotent_and_keeps_operator_edits(django_assert_max_num_queries):
    counts = (EventType.objects.count(), NotificationTemplate.objects.count(), TemplateChannel.objects.count())
    tc = TemplateChannel.objects.get(template__key="task.assigned", template__organization__isnull=True, channel=Channel.SMS)
    TemplateChannel.objects.filter(pk=tc.pk).update(body_en="Edited by an operator: {{ task.title }}")
    EventType.objects.filter(key="task.overdue").update(default_criticality=Criticality.CRITICAL)

    with django_assert_max_num_queries(8):
        result = catalog_load()
    assert (result.event_types_created, result.templates_created, result.channels_created) == (0, 0, 0)
    assert (EventType.objects.count(), NotificationTemplate.objects.count(), TemplateChannel.objects.count()) == counts
    tc.refresh_from_db()
    assert tc.body_en == "Edited by an operator: {{ task.title }}"
    assert EventType.objects.get(key="task.overdue").default_criticality == Criticality.CRITICAL

    # A deleted row comes back; --update resets edits to the shipped content.
    EventType.objects.filter(key="calendar.conflict").delete()
    result = catalog_load(update=True)
    assert result.event_types_created == 1 and result.channels_updated == len(EVENTS) * 6
    tc.refresh_from_db()
    assert tc.body_en.startswith("New task: {{ task.title }}")
    assert EventType.objects.get(key="task.overdue").default_criticality == Criticality.HIGH
    assert (EventType.objects.count(), NotificationTemplate.objects.count(), TemplateChannel.objects.count()) == counts


def test_load_notification_catalog_command(capsys):
    from django.core.management import call_command

    call_command("load_notification_catalog")
    assert "0 created" in capsys.readouterr().out


# --- enums ---------------------------------------------------------------------------------


def test_criticality_ordering_helpers(organization, user):
    assert [Criticality.rank_of(c) for c in ("LOW", "MEDIUM", "HIGH", "CRITICAL")] == [1, 2, 3, 4]
    assert Criticality.HIGH.rank == 3
    assert Criticality.at_least("CRITICAL", "HIGH") and not Criticality.at_least("MEDIUM", "HIGH")
    for criticality in Criticality.values:
        Notification.objects.create(organization=organization, recipient=user, event_type="x.y", category="SYSTEM_ADMIN", criticality=criticality)
    high_or_more = (
        Notification.objects.annotate(rank=Criticality.rank_expression("criticality"))
        .filter(rank__gte=Criticality.HIGH.rank)
        .values_list("criticality", flat=True)
    )
    assert sorted(high_or_more) == ["CRITICAL", "HIGH"]


# --- constraints ---------------------------------------------------------------------------


def _notification(organization, user, **extra) -> Notification:
    return Notification.objects.create(
        organization=organization, recipient=user, event_type="task.assigned", category="PROJECT_MANAGEMENT", **extra
    )


def _pref(**kwargs) -> NotificationPreference:
    return NotificationPreference.objects.create(**kwargs)


@pytest.fixture
def world(organization, user):
    team = TeamFactory(organization=organization)
    project = ProjectFactory(organization=organization)
    return {"org": organization, "user": user, "team": team, "project": project}


DUPLICATES: dict[str, Callable[[dict], object]] = {
    "event type key": lambda w: EventType.objects.create(key="task.assigned", name="again", category="PROJECT_MANAGEMENT"),
    "global template key": lambda w: NotificationTemplate.objects.create(key="task.assigned", event_type="task.assigned", name="again"),
    "template channel": lambda w: TemplateChannel.objects.create(
        template=NotificationTemplate.objects.get(key="task.assigned", organization__isnull=True), channel=Channel.EMAIL
    ),
    "organization template key": lambda w: [
        NotificationTemplate.objects.create(key="k", event_type="k", name="n", organization=w["org"]) for _ in range(2)
    ],
    "global preference": lambda w: [_pref(level=PreferenceLevel.GLOBAL, scope=PreferenceScope.CATEGORY, category="SECURITY") for _ in range(2)],
    "organization preference": lambda w: [_pref(level=PreferenceLevel.ORGANIZATION, organization=w["org"]) for _ in range(2)],
    "team preference": lambda w: [
        _pref(level=PreferenceLevel.TEAM, organization=w["org"], team=w["team"], scope=PreferenceScope.EVENT_TYPE, event_type="task.overdue")
        for _ in range(2)
    ],
    "project preference": lambda w: [_pref(level=PreferenceLevel.PROJECT, organization=w["org"], project=w["project"]) for _ in range(2)],
    "user preference": lambda w: [_pref(level=PreferenceLevel.USER, user=w["user"]) for _ in range(2)],
    "user preference in an organization": lambda w: [
        _pref(level=PreferenceLevel.USER, user=w["user"], organization=w["org"], scope=PreferenceScope.CATEGORY, category="INCIDENTS")
        for _ in range(2)
    ],
    "channel preference": lambda w: [
        ChannelPreference.objects.create(preference=p, channel=Channel.SMS)
        for p in [_pref(level=PreferenceLevel.USER, user=w["user"])] * 2
    ],
    "quiet hours per user": lambda w: [QuietHours.objects.create(user=w["user"]) for _ in range(2)],
    "organization default quiet hours": lambda w: [QuietHours.objects.create(organization=w["org"]) for _ in range(2)],
    "quiet hours channel rule": lambda w: [
        QuietHoursChannelRule.objects.create(quiet_hours=q, channel=Channel.SMS) for q in [QuietHours.objects.create(user=w["user"])] * 2
    ],
    "escalation chain name": lambda w: [EscalationChain.objects.create(name="On-call", organization=w["org"]) for _ in range(2)],
    "escalation level": lambda w: [
        EscalationLevel.objects.create(chain=c, level=0, delay_minutes=5, channels=["SMS"])
        for c in [EscalationChain.objects.create(name="Ops")] * 2
    ],
    "global provider code": lambda w: [
        NotificationProvider.objects.create(code="twilio_sms", channel=Channel.SMS, name="Twilio") for _ in range(2)
    ],
    "organization provider code": lambda w: [
        NotificationProvider.objects.create(code="twilio_sms", channel=Channel.SMS, name="Twilio", organization=w["org"]) for _ in range(2)
    ],
    "channel configuration": lambda w: [ChannelConfiguration.objects.create(organization=w["org"], channel=Channel.SMS) for _ in range(2)],
    "global channel configuration": lambda w: [ChannelConfiguration.objects.create(channel=Channel.VOICE) for _ in range(2)],
    "criticality routing": lambda w: [
        CriticalityRouting.objects.create(configuration=c, criticality=Criticality.HIGH)
        for c in [ChannelConfiguration.objects.create(organization=w["org"], channel=Channel.PUSH)] * 2
    ],
    "user presence": lambda w: [UserPresence.objects.create(user=w["user"], last_seen_at=timezone.now()) for _ in range(2)],
    "open batch": lambda w: [
        NotificationBatch.objects.create(
            user=w["user"], organization=w["org"], channel=Channel.EMAIL, frequency=BatchFrequency.DAILY,
            window_start=timezone.now(), window_end=timezone.now(), scheduled_for=timezone.now(),
        )
        for _ in range(2)
    ],
    "delivery per channel and level": lambda w: [
        NotificationDelivery.objects.create(notification=n, organization=w["org"], channel=Channel.EMAIL)
        for n in [_notification(w["org"], w["user"])] * 2
    ],
    "idempotency key": lambda w: [
        IdempotencyRecord.objects.create(organization=w["org"], key="k-1", request_hash="h") for _ in range(2)
    ],
    "open dead letter per delivery": lambda w: [
        DeadLetter.objects.create(organization=w["org"], delivery=d)
        for d in [NotificationDelivery.objects.create(notification=_notification(w["org"], w["user"]), organization=w["org"], channel=Channel.SMS)] * 2
    ],
}

INVALID: dict[str, Callable[[dict], object]] = {
    "notification without any recipient": lambda w: Notification.objects.create(
        organization=w["org"], event_type="x.y", category="SYSTEM_ADMIN"
    ),
    "team preference without a team": lambda w: _pref(level=PreferenceLevel.TEAM, organization=w["org"]),
    "global preference with an owner": lambda w: _pref(level=PreferenceLevel.GLOBAL, user=w["user"]),
    "category scope without a category": lambda w: _pref(level=PreferenceLevel.USER, user=w["user"], scope=PreferenceScope.CATEGORY),
    "event type scope without an event type": lambda w: _pref(level=PreferenceLevel.USER, user=w["user"], scope=PreferenceScope.EVENT_TYPE),
    "quiet hours without an owner": lambda w: QuietHours.objects.create(),
    "empty quiet window": lambda w: QuietHoursSchedule.objects.create(
        quiet_hours=QuietHours.objects.create(user=w["user"]), days_of_week=[0], start_time=dt.time(22), end_time=dt.time(22)
    ),
}


@pytest.mark.parametrize("build", DUPLICATES.values(), ids=DUPLICATES.keys())
def test_unique_constraints_are_enforced(world, build):
    with pytest.raises(IntegrityError), transaction.atomic():
        build(world)


@pytest.mark.parametrize("build", INVALID.values(), ids=INVALID.keys())
def test_check_constraints_are_enforced(world, build):
    with pytest.raises(IntegrityError), transaction.atomic():
        build(world)


def test_scoped_rows_may_repeat_across_owners(world):
    other_org = OrganizationFactory()
    # The same template key: the global default plus one override per organization.
    NotificationTemplate.objects.create(key="task.assigned", event_type="task.assigned", name="ours", organization=world["org"])
    NotificationTemplate.objects.create(key="task.assigned", event_type="task.assigned", name="theirs", organization=other_org)
    # One preference row per level for the same scope key.
    _pref(level=PreferenceLevel.GLOBAL)
    _pref(level=PreferenceLevel.ORGANIZATION, organization=world["org"])
    _pref(level=PreferenceLevel.TEAM, organization=world["org"], team=world["team"])
    _pref(level=PreferenceLevel.USER, user=world["user"])
    _pref(level=PreferenceLevel.USER, user=world["user"], organization=world["org"])
    # A closed digest batch does not block the next open one.
    now = timezone.now()
    batch = {
        "user": world["user"], "organization": world["org"], "channel": Channel.EMAIL, "frequency": BatchFrequency.DAILY,
        "window_start": now, "window_end": now, "scheduled_for": now,
    }
    NotificationBatch.objects.create(status=BatchStatus.SENT, **batch)
    NotificationBatch.objects.create(**batch)
    # Escalation re-sends a channel at the next level; a bare address is a valid recipient.
    notification = Notification.objects.create(
        organization=world["org"], recipient_email="guest@example.com", event_type="story.invitation", category="COLLABORATION"
    )
    NotificationDelivery.objects.create(notification=notification, organization=world["org"], channel=Channel.SMS)
    NotificationDelivery.objects.create(notification=notification, organization=world["org"], channel=Channel.SMS, escalation_level=1)
    assert NotificationTemplate.objects.filter(key="task.assigned").count() == 3
    assert NotificationPreference.objects.count() == 5
    assert notification.deliveries.count() == 2


# --- translations --------------------------------------------------------------------------


def test_template_content_falls_back_to_english_when_french_is_missing():
    template = NotificationTemplate.objects.create(key="custom.event", event_type="custom.event", name="Custom")
    tc = TemplateChannel.objects.create(template=template, channel=Channel.PUSH, title_en="Hello", body_en="Body", title_fr="Bonjour")
    tc.refresh_from_db()
    assert tc.body_fr in (None, "")
    with translation.override("fr"):
        assert tc.title == "Bonjour"
        assert tc.body == "Body"  # French missing: English
    with translation.override("en"):
        assert tc.title == "Hello"
    assert template_channel_contents(tc, locale="fr-CA")["body"] == "Body"


# --- admin ---------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, db):
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(superuser)
    return client


@pytest.fixture
def sample_rows(world):
    """One row of every model, so changelists and change pages render real data."""
    org, user = world["org"], world["user"]
    notification = _notification(org, user, title="Hi", trace={"EMAIL": {"used": True, "reason": "default"}})
    provider = NotificationProvider.objects.create(code="log_sms", channel=Channel.SMS, name="Log SMS")
    delivery = NotificationDelivery.objects.create(
        notification=notification, organization=org, channel=Channel.EMAIL, status=DeliveryStatus.SENT,
        recipient_address="a@example.com", provider="django_email", provider_record=provider, provider_message_id="m-1",
        provider_response={"ok": True}, error_history=[{"error": "timeout"}],
    )
    pref = _pref(level=PreferenceLevel.USER, user=user)
    ChannelPreference.objects.create(preference=pref, channel=Channel.SMS, enabled=False)
    quiet = QuietHours.objects.create(user=user, timezone="Europe/Paris")
    QuietHoursSchedule.objects.create(quiet_hours=quiet, days_of_week=[0, 1, 2, 3, 4], start_time=dt.time(22), end_time=dt.time(7))
    QuietHoursChannelRule.objects.create(quiet_hours=quiet, channel=Channel.SMS)
    chain = EscalationChain.objects.create(name="Ops", organization=org)
    EscalationLevel.objects.create(chain=chain, level=0, delay_minutes=5, channels=["SMS", "VOICE"])
    config = ChannelConfiguration.objects.create(organization=org, channel=Channel.SMS, fallback_channels=["EMAIL"])
    CriticalityRouting.objects.create(configuration=config, criticality=Criticality.CRITICAL, bypass_quiet_hours=True)
    Webhook.objects.create(organization=org, name="Out", direction="OUTGOING", url="https://hooks.example.com/x")
    Webhook.objects.create(organization=org, name="In", direction="INCOMING")
    NotificationAuditLog.objects.create(organization=org, notification=notification, action=AuditAction.NOTIFICATION_CREATED, details={"n": 1})
    UserPresence.objects.create(user=user, last_seen_at=timezone.now())
    NotificationBatch.objects.create(
        user=user, organization=org, channel=Channel.EMAIL, frequency=BatchFrequency.DAILY,
        window_start=timezone.now(), window_end=timezone.now(), scheduled_for=timezone.now(),
    )
    DeadLetter.objects.create(organization=org, delivery=delivery, channel=Channel.EMAIL, reason="exhausted", payload={"to": "a"})
    IdempotencyRecord.objects.create(organization=org, key="k", request_hash="h", status=IdempotencyStatus.COMPLETED, response_code=202)
    BusCommand.objects.create(organization=org, command_id="c-1", name="notification.cancel", result={"deliveries_cancelled": 0})
    template = NotificationTemplate.objects.order_by("pk").first()
    TemplateVersion.objects.create(template=template, version=template.version, content={"name": template.name, "channels": []})
    topic = Topic.objects.create(organization=org, key="releases", name="Releases")
    TopicSubscription.objects.create(topic=topic, membership=user.memberships.get(organization=org))
    return {"notification": notification, "delivery": delivery, "provider": provider}


def _notification_admins():
    return [(model, model_admin) for model, model_admin in admin.site._registry.items() if model._meta.app_label == "notifications"]


def test_every_notification_model_is_in_the_admin():
    from django.apps import apps

    registered = {model for model, _ in _notification_admins()}
    assert set(apps.get_app_config("notifications").get_models()) == registered


def test_admin_changelist_add_and_change_pages_render_for_a_superuser(staff_client, sample_rows, rf):
    request = rf.get("/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    for model, model_admin in _notification_admins():
        info = (model._meta.app_label, model._meta.model_name)
        changelist = staff_client.get(reverse("admin:{}_{}_changelist".format(*info)))
        assert changelist.status_code == 200, model
        # A search must work too (search_fields reach real columns).
        assert staff_client.get(reverse("admin:{}_{}_changelist".format(*info)), {"q": "a"}).status_code == 200, model
        add = staff_client.get(reverse("admin:{}_{}_add".format(*info)))
        assert add.status_code == (200 if model_admin.has_add_permission(request) else 403), model
        obj = model.objects.order_by("pk").first()
        assert obj is not None, f"no sample row for {model.__name__}"
        assert staff_client.get(reverse("admin:{}_{}_change".format(*info), args=[obj.pk])).status_code == 200, model


def test_delivery_admin_is_read_only(staff_client, sample_rows):
    delivery = sample_rows["delivery"]
    assert staff_client.get(reverse("admin:notifications_notificationdelivery_add")).status_code == 403
    change_url = reverse("admin:notifications_notificationdelivery_change", args=[delivery.pk])
    page = staff_client.get(change_url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    response = staff_client.post(change_url, {"status": DeliveryStatus.FAILED, "recipient_address": "x@example.com"})
    assert response.status_code == 403
    delivery.refresh_from_db()
    assert (delivery.status, delivery.recipient_address) == (DeliveryStatus.SENT, "a@example.com")
    # Filters and search the operators rely on.
    listing = staff_client.get(reverse("admin:notifications_notificationdelivery_changelist"), {"status__exact": "SENT", "channel__exact": "EMAIL", "q": "m-1"})
    assert listing.status_code == 200 and b"a@example.com" in listing.content
    assert staff_client.get(reverse("admin:notifications_notificationauditlog_add")).status_code == 403


def test_provider_secrets_are_refused_without_an_encryption_key(staff_client, settings):
    settings.FIELD_ENCRYPTION_KEYS = []
    response = staff_client.post(reverse("admin:providers_notificationprovider_add") + "?code=twilio_sms", {
        "code": "twilio_sms", "name": "Twilio", "priority": "0", "config": "{}", "secret_env_refs": "{}",
        "config__account_sid": "AC1", "secret__auth_token": "sk-very-secret-value-123", "save_without_check": "on",
    })
    assert response.status_code == 200 and b"FIELD_ENCRYPTION_KEYS is not configured" in response.content
    assert b"sk-very-secret-value-123" not in response.content
    assert not NotificationProvider.objects.filter(code="twilio_sms").exists()


def test_provider_secrets_are_stored_encrypted_and_never_shown(staff_client, settings):
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    add_url = reverse("admin:providers_notificationprovider_add")
    response = staff_client.post(add_url + "?code=twilio_sms", {
        "code": "twilio_sms", "name": "Twilio", "priority": "0", "is_active": "on", "config": "{}", "secret_env_refs": "{}",
        "config__account_sid": "AC1", "secret__auth_token": "sk-very-secret-value-123", "save_without_check": "on",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    provider = NotificationProvider.objects.get(code="twilio_sms")
    assert provider.secrets and "sk-very-secret-value-123" not in provider.secrets
    from providers.secrets import secrets_decrypt

    assert secrets_decrypt(provider.secrets) == {"auth_token": "sk-very-secret-value-123"}
    for url in (reverse("admin:providers_notificationprovider_change", args=[provider.pk]), reverse("admin:providers_notificationprovider_changelist")):
        html = staff_client.get(url).content.decode()
        assert "sk-very-secret-value-123" not in html and provider.secrets not in html
        assert "•••• set" in html
    # Saving without new secrets keeps them; the audit row names no value.
    change_url = reverse("admin:providers_notificationprovider_change", args=[provider.pk])
    staff_client.post(change_url, {"name": "Twilio 2", "priority": "1", "is_active": "on", "config": '{"account_sid": "AC1"}',
                                   "secret_env_refs": "{}", "config__account_sid": "AC1", "secret__auth_token": "",
                                   "save_without_check": "on"})
    provider.refresh_from_db()
    assert provider.name == "Twilio 2" and secrets_decrypt(provider.secrets) == {"auth_token": "sk-very-secret-value-123"}
    audit = NotificationAuditLog.objects.filter(provider=provider, action=AuditAction.PROVIDER_CONFIGURED)
    assert audit.count() == 2 and all("sk-very" not in str(row.details) for row in audit)


def _template_post(template: NotificationTemplate, *, body_en: str) -> dict[str, str]:
    # The template editor's form (notifications/admin/template_editor.py): one field per channel, language and text.
    return {
        "name": template.name, "description": "", "default_criticality": "MEDIUM", "is_active": "on",
        "PUSH__en__title": "Task", "PUSH__fr__title": "Tâche", "PUSH__en__body": body_en, "PUSH__fr__body": "",
        "PUSH__extra": "{}",
    }


def test_template_admin_refuses_unknown_variables_and_audits_changes(staff_client, organization):
    template = NotificationTemplate.objects.create(key="task.assigned", event_type="task.assigned", name="Ours", organization=organization)
    url = reverse("admin:notifications_notificationtemplate_change", args=[template.pk])

    refused = staff_client.post(url, _template_post(template, body_en="{{ settings.SECRET_KEY }} {{ task.title }}"))
    assert refused.status_code == 400 and b"settings.SECRET_KEY" in refused.content
    assert not template.channels.exists()

    accepted = staff_client.post(url, _template_post(template, body_en="{{ task.title }} by {{ actor.name }}"))
    assert accepted.status_code == 302
    tc = template.channels.get()
    assert (tc.body_en, tc.title_fr) == ("{{ task.title }} by {{ actor.name }}", "Tâche")
    template.refresh_from_db()
    assert template.version == 2
    audit = NotificationAuditLog.objects.get(template=template, action=AuditAction.TEMPLATE_CHANGED)
    assert audit.organization_id == organization.id and audit.details["fields"] == [
        "channels", "default_criticality", "description", "is_active", "name"]


def test_template_admin_shows_one_language_per_tab_for_every_channel(staff_client):
    template = NotificationTemplate.objects.get(key="story.invitation", organization__isnull=True)
    html = staff_client.get(reverse("admin:notifications_notificationtemplate_change", args=[template.pk])).content.decode()
    assert 'data-locale-tab="en"' in html and 'data-locale-tab="fr"' in html
    for field in ("subject", "title", "body", "body_html", "action_label"):
        assert f"EMAIL__en__{field}" in html and f"EMAIL__fr__{field}" in html


def test_preference_admin_edits_channel_rows_inline_and_audits(staff_client, user, organization):
    url = reverse("admin:notifications_notificationpreference_add")
    response = staff_client.post(url, {
        "level": "USER", "user": user.pk, "scope": "CATEGORY", "category": "INCIDENTS", "event_type": "",
        "enabled": "on", "min_criticality": "LOW", "critical_override": "on",
        "channel_preferences-TOTAL_FORMS": "1", "channel_preferences-INITIAL_FORMS": "0",
        "channel_preferences-MIN_NUM_FORMS": "0", "channel_preferences-MAX_NUM_FORMS": "1000",
        "channel_preferences-0-channel": "SMS", "channel_preferences-0-only_when_offline": "on",
        "channel_preferences-0-digest_frequency": "NONE",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    pref = NotificationPreference.objects.get(user=user, category="INCIDENTS")
    row = pref.channel_preferences.get()
    assert (row.channel, row.enabled, row.only_when_offline) == ("SMS", False, True)
    assert NotificationAuditLog.objects.filter(action=AuditAction.PREFERENCE_CHANGED, user=user).exists()


def test_the_data_migration_loads_the_catalog_with_historical_models():
    import importlib

    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    NotificationTemplate.objects.filter(is_default=True).delete()
    EventType.objects.all().delete()
    state = MigrationLoader(connection).project_state(("notifications", "0002_load_notification_catalog"))
    importlib.import_module("notifications.migrations.0002_load_notification_catalog").load(state.apps, None)
    assert EventType.objects.count() == len(EVENTS)
    assert TemplateChannel.objects.filter(template__is_default=True).count() == len(EVENTS) * 6
    tc = TemplateChannel.objects.get(template__key="task.assigned", channel=Channel.EMAIL)
    assert tc.subject_en.startswith("New task") and tc.subject_fr.startswith("Nouvelle tâche")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", [1, 2])
def test_the_catalog_survives_transactional_flushes(round_):
    # The second round runs after the first one's flush: tests/conftest.py reloads the catalog.
    assert EventType.objects.count() >= len(EVENTS)
    assert NotificationTemplate.objects.filter(organization__isnull=True, is_default=True).count() == len(EVENTS)


# Seed 004 section 3 `@@index` lists, as column prefixes an index of ours must start with
# (a wider index or a unique constraint with the same leading columns serves the same lookups).
SEED_INDEXES = {
    Notification: [("recipient_id", "status"), ("recipient_id",), ("organization_id", "created_at"),
                   ("event_type", "created_at"), ("status", "scheduled_for"), ("organization_id", "deduplication_key")],
    NotificationDelivery: [("notification_id",), ("status", "next_retry_at"), ("channel", "status")],
    NotificationBatch: [("user_id", "status"), ("status", "scheduled_for")],
    NotificationTemplate: [("event_type",), ("organization_id",)],
    NotificationPreference: [("user_id",), ("organization_id",)],
    QuietHours: [("organization_id",)],
    QuietHoursSchedule: [("quiet_hours_id",)],
    NotificationProvider: [("channel", "is_active")],
    Webhook: [("organization_id", "direction"), ("is_active", "direction")],
    NotificationAuditLog: [("notification_id",), ("organization_id", "created_at"), ("action", "created_at")],
    UserPresence: [("user_id",), ("status",), ("last_seen_at",)],
}


@pytest.mark.parametrize("model", list(SEED_INDEXES), ids=lambda m: m.__name__)
def test_the_seeds_indexes_exist_in_the_database(model):
    from django.db import connection

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    leading = [tuple(c["columns"]) for c in constraints.values() if c["index"] or c["unique"]]
    missing = [cols for cols in SEED_INDEXES[model] if not any(found[: len(cols)] == cols for found in leading)]
    assert not missing, f"{model.__name__}: no index starts with {missing}"
