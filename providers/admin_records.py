"""Provider records in the staff console.

The code is picked from the registered providers; the credentials a provider declares
(`sensitive_params`) are password fields that never render a stored value back, and its other
required settings are plain fields; the credentials are checked (a health check with the values
being saved) before anything is stored; the change page draws the health history as a sparkline.
Saving goes through providers.services.provider_create / provider_update, as the API does.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin

from common.exceptions import ValidationError as ServiceValidationError
from .admin_actions import validate_credentials
from .registry import registry

from .models import NotificationProvider

SECRET_SET = "•••• set"
SECRET_UNSET = "not set"
_SECRET = "secret__"
_SETTING = "config__"
_BASE_FIELDS = ("organization", "code", "name", "description", "priority", "is_active", "is_default")
_CONFIG_FIELDS = ("config", "secret_env_refs", "rate_limit_per_minute", "daily_limit")


def _code_choices() -> list[tuple[str, Any]]:
    by_channel: dict[str, list[tuple[str, str]]] = {}
    for code in sorted(registry.codes()):
        cls = registry.get(code)
        by_channel.setdefault(cls.channel, []).append((code, f"{cls.name or code} ({code})"))
    return [("", "— choose a provider —"), *((channel, items) for channel, items in sorted(by_channel.items()))]


def _provider_class(code: str | None):
    return registry.get(code) if code and code in registry.codes() else None


def _declared(cls) -> tuple[list[str], list[str]]:
    """(credential names, other required settings) the provider class declares."""
    if cls is None:
        return [], []
    secrets = list(cls.sensitive_params)
    settings_ = [p for p in cls.required_params if p not in cls.sensitive_params]
    return secrets, settings_


class NotificationProviderForm(forms.ModelForm):
    code = forms.ChoiceField(choices=_code_choices, help_text="The registered provider; its settings appear once chosen.")
    clear_secrets = forms.BooleanField(required=False, label="Clear stored secrets")
    save_without_check = forms.BooleanField(
        required=False, label="Save without checking",
        help_text="Store the settings even though the credentials check fails (e.g. the provider is down right now).",
    )

    class Meta:
        model = NotificationProvider
        fields = (*_BASE_FIELDS, *_CONFIG_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["code"].disabled = True
        for name in self.fields:
            if name.startswith(_SETTING):
                self.fields[name].initial = (self.instance.config or {}).get(name[len(_SETTING):], "")

    def clean_secret_env_refs(self) -> Any:
        from .secrets import env_references_check

        value = self.cleaned_data.get("secret_env_refs")
        problems = env_references_check(value)
        if problems:
            raise forms.ValidationError(problems)
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        cls = _provider_class(data.get("code") or self.instance.code)
        if cls is None:
            return data
        config = dict(data.get("config") or {})
        for name, value in data.items():
            if name.startswith(_SETTING) and value not in (None, ""):
                config[name[len(_SETTING):]] = value
        data["config"] = config
        problems = cls.config_errors(config)
        if problems:
            self.add_error("config", problems)
        organization = data.get("organization")
        if not self.instance.pk and NotificationProvider.objects.filter(
                organization=organization, code=cls.code).exists():
            self.add_error("code", f"A {cls.code!r} provider already exists for this scope.")
        self.new_secrets = {name[len(_SECRET):]: value for name, value in data.items()
                            if name.startswith(_SECRET) and value not in (None, "")}
        if self.new_secrets:
            from django.core.exceptions import ImproperlyConfigured

            from .secrets import secrets_encrypt

            try:
                secrets_encrypt(self.new_secrets)
            except ImproperlyConfigured:
                # Refuse rather than store a credential in clear or with a guessable key.
                raise forms.ValidationError("Secrets cannot be stored: FIELD_ENCRYPTION_KEYS is not configured.") from None
        if self.errors or data.get("save_without_check") or not data.get("is_active", True):
            return data
        self.check_result = self._check(cls, config)
        if not self.check_result.ok:
            raise forms.ValidationError(
                f"The credentials check failed: {self.check_result.detail or 'no detail'}. "
                "Fix the settings, or tick “Save without checking”.")
        return data

    def _check(self, cls, config: dict[str, Any]):
        from .secrets import secrets_decrypt
        from .services import provider_credentials_probe

        credentials = {} if self.cleaned_data.get("clear_secrets") else secrets_decrypt(self.instance.secrets or "")
        credentials.update(self.new_secrets)
        # The same probe the API's saves run (providers.services), the admin refusing any failure.
        return provider_credentials_probe(code=cls.code, config=config, credentials=credentials)


def health_sparkline(record: NotificationProvider, *, limit: int = 48) -> str:
    """The last health checks as an inline SVG: response time, failed checks as red dots."""
    from .models import ProviderHealthMetric

    checks = list(ProviderHealthMetric.objects.filter(provider=record).order_by("-checked_at")
                  .values_list("response_time_ms", "is_healthy")[:limit])[::-1]
    if not checks:
        return "no health checks yet"
    width, height = 240, 36
    top = max([ms or 0 for ms, ok in checks if ok] or [1]) or 1
    step = width / max(1, len(checks) - 1)
    points, dots = [], []
    for i, (ms, ok) in enumerate(checks):
        x = round(i * step, 1)
        y = round(height - 3 - ((ms or 0) / top) * (height - 6), 1) if ok else 3.0
        points.append(f"{x},{y}")
        if not ok:
            dots.append((x,))
    failed = len(dots)
    return format_html(
        '<svg class="provider-sparkline" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        '<polyline points="{}" fill="none" stroke="#2563eb" stroke-width="1.5"/>{}</svg>'
        '<div class="console-muted">{} checks, {} failed, slowest {} ms</div>',
        width, height, width, height, f"{len(checks)} health checks, {failed} failed", " ".join(points),
        format_html_join("", '<circle cx="{}" cy="3" r="2.5" fill="#dc2626"/>', dots), len(checks), failed, top,
    )


@admin.register(NotificationProvider)
class NotificationProviderAdmin(ModelAdmin):
    form = NotificationProviderForm
    actions = [validate_credentials]
    list_display = ("name", "code", "channel", "organization", "priority", "is_active", "is_default", "health_status", "secrets_state", "last_health_check_at")
    list_filter = ("channel", "health_status", "is_active", "is_default")
    search_fields = ("name", "code", "description", "organization__name")
    autocomplete_fields = ("organization",)
    list_select_related = ("organization",)
    readonly_fields = ("channel", "secrets_state", "health_sparkline", "health_status", "health_message", "last_health_check_at",
                       "created_at", "updated_at")

    def _code(self, request: HttpRequest, obj: NotificationProvider | None) -> str | None:
        if obj is not None:
            return obj.code
        return request.POST.get("code") or request.GET.get("code")

    def get_fieldsets(self, request: HttpRequest, obj: NotificationProvider | None = None):
        secrets, settings_ = _declared(_provider_class(self._code(request, obj)))
        return (
            (None, {"fields": _BASE_FIELDS if obj is None else ("organization", "code", "channel", *_BASE_FIELDS[2:])}),
            ("Settings", {"fields": (*(_SETTING + p for p in settings_), *_CONFIG_FIELDS)}),
            ("Credentials", {"fields": ("secrets_state", *(_SECRET + p for p in secrets), "clear_secrets", "save_without_check"),
                             "description": "Stored encrypted and never shown again: leave a field empty to keep its value."}),
            *((("Health", {"fields": ("health_sparkline", "health_status", "health_message", "last_health_check_at",
                                      "created_at", "updated_at")}),) if obj is not None else ()),
        )

    def get_form(self, request: HttpRequest, obj: NotificationProvider | None = None, change: bool = False, **kwargs: Any):
        secrets, settings_ = _declared(_provider_class(self._code(request, obj)))
        declared: dict[str, forms.Field] = {}
        for param in secrets:
            declared[_SECRET + param] = forms.CharField(
                required=False, label=param, strip=False,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))
        for param in settings_:
            declared[_SETTING + param] = forms.CharField(required=False, label=param)
        kwargs["form"] = type("NotificationProviderForm", (NotificationProviderForm,), declared)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {**super().get_changeform_initial_data(request), "code": request.GET.get("code", "")}

    @admin.display(description="secrets")
    def secrets_state(self, obj: NotificationProvider | None) -> str:
        if obj is None or not obj.secrets:
            return SECRET_UNSET
        return SECRET_SET

    @admin.display(description="health history")
    def health_sparkline(self, obj: NotificationProvider | None) -> str:
        return health_sparkline(obj) if obj is not None and obj.pk else "—"

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The provider services open their own (durable) transaction: no admin-wide one around them.
        try:
            return self._changeform_view(request, object_id, form_url, extra_context)
        except ServiceValidationError as exc:
            self.message_user(request, f"Not saved: {exc.detail}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request: HttpRequest, obj: NotificationProvider, form: NotificationProviderForm, change: bool) -> None:
        from .services import provider_create, provider_update

        data = form.cleaned_data
        secrets: dict[str, Any] = dict(getattr(form, "new_secrets", {}))
        fields: dict[str, Any] = {name: data.get(name) for name in ("name", "description", "priority", "is_active", "is_default", "config",
                                                     "secret_env_refs", "rate_limit_per_minute", "daily_limit")}
        fields["config"] = fields["config"] or {}
        fields["secret_env_refs"] = fields["secret_env_refs"] or {}
        if change:
            if data.get("clear_secrets"):
                from .secrets import secrets_decrypt

                secrets = {**{key: None for key in secrets_decrypt(obj.secrets or "")}, **secrets}
            record = provider_update(provider_id=obj.pk, actor_id=request.user.pk, secrets=secrets, **fields)
        else:
            organization = data.get("organization")
            record = provider_create(organization_id=organization.pk if organization else None, code=data["code"],
                                     secrets=secrets, actor_id=request.user.pk, **fields)
        obj.pk = record.pk
        obj.refresh_from_db()
        check = getattr(form, "check_result", None)
        if check is not None:
            self.message_user(request, f"Credentials checked: the provider answered in {check.response_time_ms} ms.", messages.SUCCESS)

    def save_related(self, request, form, formsets, change) -> None:
        return  # no inlines, and the model form must not save the record a second time

    def delete_view(self, request, object_id, extra_context=None):
        # provider_delete opens its own (durable) transaction, as the API's delete does.
        return self._delete_view(request, object_id, extra_context)

    def delete_model(self, request: HttpRequest, obj: NotificationProvider) -> None:
        from .services import provider_delete

        provider_delete(provider_id=obj.pk, actor_id=request.user.pk)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        from .services import provider_delete

        for pk in list(queryset.values_list("pk", flat=True)):
            provider_delete(provider_id=pk, actor_id=request.user.pk)
