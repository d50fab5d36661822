"""The staff console covers every model of the foundation, story and invitation apps."""
from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from accounts.services import api_key_create
from invitations.services import invitations_send
from narrations.services import story_create

from ..factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

APPS = ("accounts", "narrations", "invitations")


def _inline_models() -> set[type]:
    return {inline.model for model_admin in admin.site._registry.values() for inline in model_admin.inlines}


@pytest.mark.parametrize("app_label", APPS)
def test_every_model_has_an_admin_with_columns_filters_and_search(app_label):
    inline = _inline_models()
    for model in apps.get_app_config(app_label).get_models():
        model_admin = admin.site._registry.get(model)
        if model_admin is None:
            # A child row edited inside its parent's page (e.g. an on-call shift in its rotation).
            assert model in inline, f"{model.__name__} is not in the admin"
            continue
        assert len(model_admin.list_display) >= 3, f"{model.__name__}: list_display is bare"
        assert model_admin.search_fields, f"{model.__name__}: no search"
        if model_admin.list_filter == () and model.__name__ not in {"Organization", "StoryCharacter"}:
            pytest.fail(f"{model.__name__}: no list filter")


def test_every_changelist_and_change_page_renders(client, user, organization):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    TeamFactory(organization=organization)
    ProjectFactory(organization=organization)
    MembershipFactory(organization=organization)
    api_key_create(organization=organization, name="ops")
    story = story_create(owner=user, title="Harbour", content="Waves.", characters=[{"name": "Ilse"}])
    invitations_send(story=story, inviter=user, items=[{"email": "a@example.com", "conversation_style": "business"}])

    for app_label in APPS:
        for model in apps.get_app_config(app_label).get_models():
            if model not in admin.site._registry:
                continue
            opts = model._meta
            changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            response = client.get(changelist, {"q": "a"})
            assert response.status_code == 200, changelist
            obj = model._default_manager.first()
            if obj is not None:
                change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
                assert client.get(change).status_code == 200, change


def test_api_key_admin_never_shows_the_hash(client, organization):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    key, raw = api_key_create(organization=organization, name="ops")
    page = client.get(reverse("admin:accounts_apikey_change", args=[key.pk])).content.decode()
    assert key.prefix in page
    assert key.key_hash not in page and raw not in page
