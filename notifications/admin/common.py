"""Helpers shared by the console pages of the notification platform."""
from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.html import format_html
from unfold.admin import TabularInline

from common.sealing import data_mask

from ..enums import AuditActorType
from ..models import (
    NotificationAuditLog,
)


SECRET_SET = "•••• set"
SECRET_UNSET = "not set"


# --- helpers ---------------------------------------------------------------------------


def _pretty_json(value: Any) -> str:
    value = data_mask(value)  # a sealed invitation link reads "[sealed]", never its ciphertext
    if value in (None, "", [], {}):
        return "—"
    return format_html("<pre style='white-space: pre-wrap; margin: 0'>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _audit(request, *, action: str, organization_id: int | None, details: dict[str, Any] | None = None, **targets: Any) -> None:
    NotificationAuditLog.objects.create(
        organization_id=organization_id,
        action=action,
        actor_type=AuditActorType.USER,
        actor_id=str(request.user.pk),
        actor_label=request.user.get_username(),
        details={"source": "admin", **(details or {})},
        **targets,
    )


def _changed_fields(form, formsets) -> list[str]:
    changed = list(form.changed_data)
    for formset in formsets:
        for inline_form in formset.forms:
            if inline_form.has_changed():
                prefix = getattr(inline_form.instance, "channel", "") or formset.prefix
                changed.extend(f"{prefix}.{name}" for name in inline_form.changed_data)
    return changed


class _NoEchoTextarea(forms.Textarea):
    """A textarea that never renders a value back into the page (secrets stay out of HTML)."""

    def format_value(self, value: Any) -> None:
        return None


def _encrypt_or_refuse(values: dict[str, Any]) -> str:
    from django.core.exceptions import ImproperlyConfigured

    from providers.secrets import secrets_encrypt

    try:
        return secrets_encrypt(values)
    except ImproperlyConfigured:
        # Refuse rather than store a credential in clear or with a guessable key.
        raise forms.ValidationError("Secrets cannot be stored: FIELD_ENCRYPTION_KEYS is not configured.") from None


class ReadOnlyInline(TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
