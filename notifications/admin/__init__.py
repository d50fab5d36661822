"""The staff console for the notification platform, one module per domain.

Deliveries, audit rows and idempotency records are evidence: they can be viewed, never
added or edited here. Provider and webhook secrets are never shown; an operator can only
replace or clear them. Provider records are in providers/admin_records.py.
"""
from . import (  # noqa: F401  (each registers its models)
    audiences,
    configuration,
    deliveries,
    operations,
    preferences,
    reliability,
    templates,
)
