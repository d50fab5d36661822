"""Named topics an organization's members subscribe to: an event may target a topic's
subscribers (`audience: {"topic": "<key>"}`) instead of listing recipients."""
from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

TOPIC_KEY_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9._-]{0,99}$", "Lower-case letters, digits, '.', '_' or '-' (at most 100, starting alphanumeric)."
)


class Topic(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="topics")
    key = models.CharField(max_length=100, validators=[TOPIC_KEY_VALIDATOR])
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["organization", "key"], name="uniq_topic_key")]

    def __str__(self) -> str:
        return self.key


class TopicSubscription(models.Model):
    """A member of the topic's organization (its membership: leaving the organization ends it)."""

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="subscriptions")
    membership = models.ForeignKey("accounts.Membership", on_delete=models.CASCADE, related_name="topic_subscriptions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["topic", "membership"], name="uniq_topic_subscription")]
