"""The end of a transactional test (tests/conftest.py `_fixture_teardown_fast`) leaves the database
as Django's flush followed by the catalog load leaves it: rows the test wrote are gone, the content
types, permissions, beat schedule and shipped catalog are there, edited rows come back as shipped."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection

from accounts.models import Organization
from notifications.models import EventType, TemplateChannel
from tests.conftest import _fixture_teardown_fast, _non_empty_tables
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class _Case:
    available_apps = None
    serialized_rollback = False

    def _databases_names(self, include_mirrors=True):
        return ["default"]


def _state() -> dict[str, object]:
    tables = sorted(connection.introspection.django_table_names(only_existing=True, include_views=False))
    non_empty = sorted(_non_empty_tables(connection, tables))
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        counts = {}
        for table in non_empty:
            cursor.execute(f"SELECT count(*) FROM {quote(table)}")
            counts[table] = cursor.fetchone()[0]
    return {
        "counts": counts,
        "event types": sorted(EventType.objects.values_list("key", "name", "variable_mapping", "default_channels")),
        "templates": sorted(TemplateChannel.objects.values_list("template__key", "channel", "subject_en", "body_en")),
        "permissions": sorted(Permission.objects.values_list("content_type__app_label", "codename")),
    }


def test_each_way_of_ending_a_test_leaves_the_state_a_flush_leaves():
    _fixture_teardown_fast(_Case())  # the reference: the full flush on the first call, then the fast path
    _fixture_teardown_fast(_Case())
    reference = _state()
    assert reference["event types"] and reference["templates"] and reference["permissions"]
    assert "accounts_organization" not in reference["counts"]

    # rows written by the test only
    MembershipFactory(user=UserFactory(), organization=OrganizationFactory())
    _fixture_teardown_fast(_Case())
    assert _state() == reference and not Organization.objects.exists()

    # a shipped template and an event type edited, an organization's rows next to them
    OrganizationFactory()
    EventType.objects.filter(key="story.invitation").update(name="Edited", variable_mapping={"x": "data.x"})
    TemplateChannel.objects.filter(template__key="story.invitation", channel="EMAIL").update(body_en="edited")
    _fixture_teardown_fast(_Case())
    assert _state() == reference

    # a row post_migrate creates, removed: the full flush puts it back
    Permission.objects.filter(codename="view_organization").delete()
    UserFactory()
    _fixture_teardown_fast(_Case())
    assert _state() == reference
