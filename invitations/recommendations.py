"""What a person might share next, with whom and in which style, from their own invitations
(seed 000 "Content Recommendations"). Simple and explainable: no model, no external service.

Score of (content, invitee) =
    2 × invitations already sent to the invitee (people you invite often)
  + 3 × articles of the same category already shared with them (what they get from you)
  + 1 if the content is less than a week old
Content already shared with the invitee is never suggested. The style is the one used most
often with that invitee.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from narrations.models import ConversationStyle, Story

from .models import StoryInvitation

HISTORY_DAYS = 365
MAX_INVITEES = 20
MAX_CONTENT = 50


@dataclass
class Recommendation:
    content_type: str
    content_id: int
    title: str
    invitee: str
    conversation_style: str
    score: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "content_type": self.content_type, "content_id": self.content_id, "title": self.title,
            "invitee": self.invitee, "conversation_style": self.conversation_style, "score": self.score,
            "reason": self.reason,
        }


def _label(style: str) -> str:
    try:
        return str(ConversationStyle(style).label).lower()
    except ValueError:
        return style


def recommendations_for_user(*, user, organization=None, limit: int = 10) -> list[Recommendation]:
    """Up to `limit` suggestions, best first (three queries)."""
    since = timezone.now() - timedelta(days=HISTORY_DAYS)
    rows = list(
        StoryInvitation.objects.filter(inviter=user, created_at__gte=since)
        .values_list("invitee_email", "invitee_phone", "conversation_style", "content_type", "content_id", "content_metadata")
    )
    if not rows:
        return []
    sent_to: Counter[str] = Counter()
    styles: dict[str, Counter[str]] = defaultdict(Counter)
    categories: dict[str, Counter[str]] = defaultdict(Counter)
    already: set[tuple[str, str, str]] = set()
    for email, phone, style, content_type, content_id, metadata in rows:
        invitee = email or phone
        sent_to[invitee] += 1
        styles[invitee][style] += 1
        already.add((invitee, content_type or "story", str(content_id)))
        category = (metadata or {}).get("category")
        if content_type == "news_article" and category:
            categories[invitee][category] += 1

    now = timezone.now()
    candidates: list[tuple[str, int, str, str, bool]] = [
        ("story", s.pk, s.title, "", now - s.created_at < timedelta(days=7))
        for s in Story.objects.filter(owner=user).order_by("-created_at")[:MAX_CONTENT]
    ]
    if organization is not None:
        from news.models import NewsArticle

        candidates += [
            ("news_article", a.pk, a.title, a.category, now - a.created_at < timedelta(days=7))
            for a in NewsArticle.objects.filter(organization=organization).order_by("-created_at")[:MAX_CONTENT]
        ]

    results: list[Recommendation] = []
    for invitee, count in sent_to.most_common(MAX_INVITEES):
        style, style_uses = styles[invitee].most_common(1)[0]
        for content_type, pk, title, category, fresh in candidates:
            if (invitee, content_type, str(pk)) in already:
                continue
            affinity = categories[invitee][category] if category else 0
            score = 2 * count + 3 * affinity + (1 if fresh else 0)
            if affinity:
                reason = (f"You shared {affinity} {category} article{'s' if affinity > 1 else ''} with {invitee} "
                          f"as {_label(style)}.")
            else:
                reason = (f"You invited {invitee} {count} time{'s' if count > 1 else ''}"
                          f"{f', {style_uses} of them in the {_label(style)} style' if count > 1 else f' in the {_label(style)} style'}.")
            results.append(Recommendation(content_type, pk, title, invitee, style, score, reason))
    results.sort(key=lambda r: (-r.score, r.content_type, -r.content_id, r.invitee))
    return results[:limit]
