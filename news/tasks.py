from __future__ import annotations

import logging

from celery import shared_task

from common.exceptions import NotFound, ProviderPermanentError, ProviderTransientError

from .narration import news_narration_generate

logger = logging.getLogger(__name__)


@shared_task(
    name="narrations.news_pregenerate",
    autoretry_for=(ProviderTransientError,),
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=3,
    acks_late=True,
)
def news_narration_pregenerate(narration_id: int) -> None:
    """Generate a news narration ahead of its first listener. A ready row makes this a no-op."""
    try:
        news_narration_generate(narration_id=narration_id)
    except NotFound:
        logger.info("news narration %s vanished before pre-generation; nothing to do", narration_id)
    except ProviderPermanentError as exc:
        logger.warning("news narration %s failed permanently: %s", narration_id, exc)
