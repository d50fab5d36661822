import logging

from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Notification providers"

    def ready(self) -> None:
        from . import registry

        registry.autodiscover()
        # SDK debug logs include request parameters, and some providers put credentials in
        # the body (Vonage SMS): keep them quiet whatever the root level is.
        for name in ("vonage_http_client", "twilio.http_client", "botocore", "urllib3"):
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET or logger.level < logging.INFO:
                logger.setLevel(logging.INFO)
        logging.getLogger("vonage_http_client").setLevel(logging.WARNING)
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
