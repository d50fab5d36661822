"""Writes of the people app: what a person does to their own account, across the apps below."""
from __future__ import annotations

from django.db import transaction

from accounts.models import User
from accounts.services import user_signup
from invitations.services import invitations_record_received_for


@transaction.atomic(durable=True)
def person_signup(*, username: str, email: str, password: str, display_name: str = "", active: bool = True) -> User:
    """Create the account and its personal organization (`accounts.services.user_signup`) and
    bring in the invitations already received at that address, in one transaction."""
    user = user_signup(username=username, email=email, password=password, display_name=display_name, active=active)
    invitations_record_received_for(user=user)
    return user
