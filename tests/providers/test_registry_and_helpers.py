from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from common.exceptions import ProviderPermanentError, ValidationError
from notifications.enums import Channel
from providers.base import BaseProvider
from providers.phone import normalize_e164
from providers.registry import DuplicateProviderError, ProviderRegistry, registry
from providers.secrets import (
    mask_value,
    resolve_credentials,
    secrets_decrypt,
    secrets_encrypt,
    secrets_rotate,
)
from providers.sms.segments import count_segments


def test_registry_is_filled_at_startup_with_one_provider_per_code():
    for code, channel in [("sendgrid", Channel.EMAIL), ("amazon_ses", Channel.EMAIL), ("mailgun", Channel.EMAIL),
                          ("postmark", Channel.EMAIL), ("smtp", Channel.EMAIL), ("django_email", Channel.EMAIL),
                          ("twilio_sms", Channel.SMS), ("vonage_sms", Channel.SMS), ("sns_sms", Channel.SMS),
                          ("webpush", Channel.PUSH), ("fcm", Channel.PUSH), ("twilio_whatsapp", Channel.WHATSAPP),
                          ("meta_whatsapp", Channel.WHATSAPP), ("twilio_voice", Channel.VOICE)]:
        assert registry.get(code).channel == channel
    # a log provider for every channel that has no in-process delivery
    for channel in (Channel.SMS, Channel.PUSH, Channel.WHATSAPP, Channel.VOICE):
        assert any(code.startswith("log_") for code in registry.codes(channel))


def test_registry_refuses_a_duplicate_code():
    local = ProviderRegistry()

    class A(BaseProvider):
        code, channel = "dup", Channel.SMS

    class B(BaseProvider):
        code, channel = "dup", Channel.SMS

    local.register(A)
    local.register(A)  # the same class again is harmless (module re-import)
    with pytest.raises(DuplicateProviderError):
        local.register(B)
    with pytest.raises(ValidationError):
        local.get("nope")


@pytest.mark.parametrize(
    "text, encoding, segments",
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension table: two septets each → 160
        ("€" * 81, "GSM-7", 2),
        ("é" * 160, "GSM-7", 1),  # é is in the GSM-7 basic table
        ("ê" * 70, "UCS-2", 1),
        ("ê" * 71, "UCS-2", 2),
        ("ê" * 134, "UCS-2", 2),
        ("ê" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # astral: two UTF-16 units each
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_sms_segments(text, encoding, segments):
    info = count_segments(text)
    assert (info.encoding, info.segments) == (encoding, segments)


def test_e164_validation():
    assert normalize_e164("+1 415 555 0100") == "+14155550100"
    assert normalize_e164("whatsapp:+33612345678") == "+33612345678"
    for bad in ("0612345678", "+1234", "+1 000 000 0000", "", "hello"):
        with pytest.raises(ProviderPermanentError) as err:
            normalize_e164(bad)
        assert err.value.code == "invalid_recipient"


def test_secrets_roundtrip_and_rotation(settings):
    token = secrets_encrypt({"auth_token": "s3cr3t-value", "empty": ""})
    assert "s3cr3t" not in token
    assert secrets_decrypt(token) == {"auth_token": "s3cr3t-value"}
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_key]  # newest first
    assert secrets_decrypt(token) == {"auth_token": "s3cr3t-value"}  # old key still decrypts
    rotated = secrets_rotate(token)
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]
    assert secrets_decrypt(rotated) == {"auth_token": "s3cr3t-value"}
    with pytest.raises(ImproperlyConfigured):
        secrets_decrypt(token)  # encrypted with the retired key only


def test_saving_a_secret_without_keys_in_production_is_a_clear_error(settings):
    settings.FIELD_ENCRYPTION_KEYS = []
    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"):
        secrets_encrypt({"api_key": "x"})
    settings.DEBUG = True  # development derives a key from SECRET_KEY
    assert secrets_decrypt(secrets_encrypt({"api_key": "x"})) == {"api_key": "x"}


def test_mask_never_shows_a_short_secret_and_at_most_four_chars_of_a_long_one():
    assert mask_value("short") == "********"
    assert mask_value("SG.abcdefghijklmnopqrstuvwxyz") == "********wxyz"


@pytest.mark.postgres
def test_credentials_precedence_org_record_then_global_then_environment(make_provider, organization, monkeypatch, settings):
    settings.PROVIDER_SECRET_ENV_ALLOWLIST = ["ORG_TWILIO_TOKEN"]
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC-env")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token-env")
    monkeypatch.setenv("ORG_TWILIO_TOKEN", "token-org-env")
    global_record = make_provider("twilio_sms", secrets={"auth_token": "token-global", "account_sid": "AC-global"})
    assert resolve_credentials(global_record) == {"account_sid": "AC-global", "auth_token": "token-global"}
    org_record = make_provider("twilio_sms", organization=organization, secrets={"account_sid": "AC-org"})
    # own key wins, a missing key comes from the global record
    assert resolve_credentials(org_record) == {"account_sid": "AC-org", "auth_token": "token-global"}
    org_record.secret_env_refs = {"auth_token": "ORG_TWILIO_TOKEN"}
    assert resolve_credentials(org_record)["auth_token"] == "token-org-env"
    assert resolve_credentials(None, code="twilio_sms") == {"account_sid": "AC-env", "auth_token": "token-env"}
