"""Invitees who are not users: stop invitations from one inviter or from the platform.

Every invitation email carries a signed link (the List-Unsubscribe one-click target and a
footer link to a page); an SMS reply of STOP — or any of the carriers' other opt-out
keywords — suppresses the number. Both are honoured when invitations are sent (the invitee
is skipped with reason `opted_out`) and, for the suppression, when the platform routes any
message (the channel is skipped with reason `suppressed` in the notification's trace).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse

from accounts.models import User
from common.exceptions import ValidationError
from notifications.enums import Channel
from providers.phone import optout_keyword

from .models import InviteeOptOut, OptOutSource

SALT = "invitations.optout"
MAX_AGE_SECONDS = 365 * 86400
PHONE_CHANNELS = (Channel.SMS, Channel.WHATSAPP, Channel.VOICE)
STOP_DETAIL = "SMS STOP reply"


def optout_token(*, address: str, inviter_id: int) -> str:
    return signing.dumps({"a": address.strip().lower(), "i": int(inviter_id)}, salt=SALT, compress=True)


def optout_url(*, address: str, inviter_id: int) -> str:
    return settings.SITE_URL + reverse("invitee-optout", args=[optout_token(address=address, inviter_id=inviter_id)])


def optout_token_read(token: str) -> dict[str, Any]:
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise ValidationError("This link has expired.") from None
    except signing.BadSignature:
        raise ValidationError("This link is not valid.") from None
    if not isinstance(data, dict) or not isinstance(data.get("a"), str) or not isinstance(data.get("i"), int):
        raise ValidationError("This link is not valid.")
    return data


def _add(*, address: str, inviter_id: int | None, source: str) -> bool:
    try:
        with transaction.atomic():
            InviteeOptOut.objects.create(address=address, inviter_id=inviter_id, source=source)
    except IntegrityError:
        return False
    return True


@transaction.atomic(durable=True)
def invitee_opt_out(*, token: str, scope: str, source: str = OptOutSource.LINK) -> dict[str, Any]:
    """Stop invitations to the link's address from its inviter (`scope="inviter"`) or from
    everyone (`scope="platform"`). Idempotent."""
    data = optout_token_read(token)
    if scope not in ("inviter", "platform"):
        raise ValidationError({"scope": ["Choose inviter or platform."]})
    inviter = User.objects.filter(pk=data["i"]).first()
    inviter_id = inviter.pk if inviter is not None and scope == "inviter" else None
    created = _add(address=data["a"], inviter_id=inviter_id, source=source)
    return {"address": data["a"], "inviter": inviter, "scope": "inviter" if inviter_id else "platform", "created": created}


def opted_out_addresses(*, addresses: Iterable[str], inviter_id: int) -> set[str]:
    """The addresses among these that refuse invitations from this inviter (or from anyone): one query."""
    wanted = {a.strip().lower() for a in addresses if a}
    if not wanted:
        return set()
    return set(
        InviteeOptOut.objects.filter(Q(inviter__isnull=True) | Q(inviter_id=inviter_id), address__in=wanted)
        .values_list("address", flat=True)
    )


def sms_keyword(body: str) -> str:
    """"stop", "start" or "" for an inbound SMS body (the carriers' keywords, `providers.phone`)."""
    return optout_keyword(body)


@transaction.atomic(durable=True)
def sms_inbound_keyword_apply(*, from_number: str, body: str, organization_ids: Iterable[int | None] = (None,)) -> str:
    """Apply a carrier keyword from an inbound SMS: STOP suppresses the number on every
    phone channel and stops invitations to it; START lifts what STOP did. Returns the keyword
    applied ("stop", "start") or "" when the body is not one.

    `organization_ids` are the owners of the provider accounts that authenticated the reply
    (None: the platform's own). A reply to an organization's own number suppresses it for that
    organization only: anyone holding an account's credentials can sign a reply from any
    number, and must not silence that number for everyone else.
    """
    from providers.models import SuppressedAddress, SuppressionReason
    from providers.services import suppression_add

    keyword = sms_keyword(body)
    number = (from_number or "").strip()
    owners = list(dict.fromkeys(organization_ids)) or [None]
    if not keyword or not number.startswith("+"):
        return ""
    if keyword == "stop":
        for owner in owners:
            for channel in PHONE_CHANNELS:
                suppression_add(address=number, channel=channel, reason=SuppressionReason.UNSUBSCRIBE,
                                organization_id=owner, detail=STOP_DETAIL)
        if None in owners:
            _add(address=number, inviter_id=None, source=OptOutSource.SMS_STOP)
    else:
        scope = Q(organization__isnull=True) if None in owners else Q(pk__in=[])
        scope |= Q(organization_id__in=[o for o in owners if o is not None])
        SuppressedAddress.objects.filter(
            scope, address__iexact=number, channel__in=PHONE_CHANNELS, reason=SuppressionReason.UNSUBSCRIBE, detail=STOP_DETAIL,
        ).delete()
        if None in owners:
            InviteeOptOut.objects.filter(address=number, inviter__isnull=True, source=OptOutSource.SMS_STOP).delete()
    return keyword
