"""Who did it, as the audit log records it: shared by every engine module that writes
`NotificationAuditLog` rows on behalf of a caller (intake, cancel, subscribers, commands)."""
from __future__ import annotations

from dataclasses import dataclass

from notifications.enums import AuditActorType


@dataclass
class AuditActor:
    type: str = AuditActorType.SYSTEM
    id: str = ""
    label: str = ""
