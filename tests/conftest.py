"""Shared fixtures: service detection, API clients, and a real Celery worker process."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.test import TransactionTestCase
from django.test.signals import setting_changed
from rest_framework.test import APIClient

from accounts.models import MembershipRole
from accounts.services import api_key_create

from .factories import MembershipFactory, OrganizationFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _port_open(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def service_available(kind: str) -> bool:
    if kind == "postgres":
        return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    if kind == "rabbitmq":
        url = os.environ.get("CELERY_BROKER_URL", "")
        return url.startswith("amqp") and _port_open(url, 5672)
    if kind == "redis":
        url = os.environ.get("REDIS_URL", "")
        return bool(url) and _port_open(url, 6379)
    if kind == "browser":
        return Path("/usr/bin/chromium").exists()
    raise ValueError(kind)


def pytest_runtest_setup(item):
    for kind in ("postgres", "rabbitmq", "redis", "browser"):
        if item.get_closest_marker(kind) and not service_available(kind):
            if IN_CI:
                # In CI a missing service is a failure, never a silent skip.
                pytest.fail(f"{kind} is required in CI but not reachable")
            pytest.skip(f"{kind} not reachable (set CI=true to fail instead)")


def _celery_follows_settings(*, setting, value, **kwargs):
    """Celery reads Django settings once; keep it in step when a test overrides a CELERY_* setting."""
    if setting.startswith("CELERY_"):
        from config.celery import app

        app.conf[setting.removeprefix("CELERY_").lower()] = value


setting_changed.connect(_celery_follows_settings)


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Tests edit event types, templates and webhooks with QuerySet.update (no signal): in this
    # process the configuration is read every time (server processes the tests start keep the memo).
    settings.NOTIFICATION_CONFIG_MEMO = False
    # And in-app items reach the bus before the request returns, as the in-process tests expect.
    settings.INAPP_PUBLISH_INLINE = True


@pytest.fixture(autouse=True)
def _clear_cache(request):
    # Rate limits and locks live in the cache: a test must not inherit another's counters.
    if "django_db_setup" in request.fixturenames or request.node.get_closest_marker("django_db"):
        from django.core.cache import cache

        try:
            cache.clear()
        except Exception:
            pass
    yield


def _is_transactional(request) -> bool:
    if {"transactional_db", "live_server"} & set(request.fixturenames):
        return True
    marker = request.node.get_closest_marker("django_db")
    return bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))


def ensure_notification_catalog(django_db_blocker) -> None:
    """Transactional tests end by flushing every table, including the event taxonomy and the
    default templates a data migration ships: whatever runs next gets them back."""
    from notifications.models import EventType
    from notifications.taxonomy import catalog_load

    with django_db_blocker.unblock():
        if not EventType.objects.exists():
            catalog_load()


_fixture_teardown_django = TransactionTestCase._fixture_teardown


def _flush_as_django_does(db_name: str) -> None:
    """What TransactionTestCase._fixture_teardown does without available_apps or serialized_rollback."""
    from django.core.management import call_command

    call_command("flush", verbosity=0, interactive=False, database=db_name, reset_sequences=False,
                 allow_cascade=False, inhibit_post_migrate=False)


class _Pristine:
    """The tables holding rows right after a flush: those post_migrate fills (content types,
    permissions, the beat schedule), then those catalog_load fills; with each one's fingerprint."""

    def __init__(self, after_flush: set[str], fingerprints: dict[str, str]) -> None:
        self.after_flush = after_flush
        self.fingerprints = fingerprints

    @property
    def catalog(self) -> set[str]:
        return set(self.fingerprints) - self.after_flush


_PRISTINE: dict[str, _Pristine] = {}


def _non_empty_tables(connection, tables: list[str]) -> set[str]:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(
            f"SELECT %s WHERE EXISTS (SELECT 1 FROM {quote(table)})" for table in tables), tables)
        return {row[0] for row in cursor.fetchall()}


def _fingerprints(connection, tables: set[str]) -> dict[str, str]:
    """Every row of each table, as text, hashed: equal fingerprints mean equal contents."""
    if not tables:
        return {}
    quote = connection.ops.quote_name
    ordered = sorted(tables)
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(
            f"SELECT %s, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {quote(table)} t"
            for table in ordered), ordered)
        return dict(cursor.fetchall())


def _catalog_load() -> None:
    from notifications.taxonomy import catalog_load

    catalog_load()


def _fixture_teardown_fast(self) -> None:
    """TransactionTestCase's teardown, flush, TRUNCATEs every table (~70 tables, ~300 indexes) and
    re-runs post_migrate after each transactional test: seconds on a busy machine even when the
    test wrote a dozen rows. The same end state, cheaper: the tables the test wrote to are emptied
    with DELETE, provided the rows post_migrate re-creates are untouched; the catalog (which
    ensure_notification_catalog would load before the next test) is deleted and loaded again when
    the test changed it. Anything else (a permission removed, a beat entry edited) takes the full
    flush. The fingerprints compare every row, so a test can't leave a difference behind."""
    from django.db import connections, transaction

    if self.available_apps is not None or self.serialized_rollback:
        return _fixture_teardown_django(self)
    for db_name in self._databases_names(include_mirrors=False):
        connection = connections[db_name]
        if connection.vendor != "postgresql" or db_name != "default":
            _flush_as_django_does(db_name)
            continue
        tables = sorted(connection.introspection.django_table_names(only_existing=True, include_views=False))
        pristine = _PRISTINE.get(db_name)
        if pristine is not None:
            written = _non_empty_tables(connection, tables)
            now = _fingerprints(connection, set(pristine.fingerprints) & written)
            changed = {table for table, fingerprint in pristine.fingerprints.items() if now.get(table) != fingerprint}
            if changed <= pristine.catalog:
                reload = bool(changed)
                with transaction.atomic(using=db_name), connection.cursor() as cursor:
                    for table in sorted(written - (pristine.after_flush if reload else set(pristine.fingerprints))):
                        cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)}")
                    if reload:
                        _catalog_load()
                if reload:
                    pristine.fingerprints.update(_fingerprints(connection, pristine.catalog))
                continue
        _flush_as_django_does(db_name)
        after_flush = _non_empty_tables(connection, tables)
        _catalog_load()
        _PRISTINE[db_name] = _Pristine(after_flush, _fingerprints(connection, _non_empty_tables(connection, tables)))


TransactionTestCase._fixture_teardown = _fixture_teardown_fast  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _notification_catalog(request, django_db_blocker):
    if _is_transactional(request) or "django_db_setup" in request.fixturenames:
        request.getfixturevalue("django_db_setup")
        ensure_notification_catalog(django_db_blocker)
    yield


@pytest.fixture
def organization(db):
    return OrganizationFactory()


@pytest.fixture
def user(db, organization):
    u = UserFactory()
    MembershipFactory(user=u, organization=organization, role=MembershipRole.OWNER)
    return u


@pytest.fixture
def other_user(db):
    """A user in a different organization."""
    u = UserFactory()
    MembershipFactory(user=u, organization=OrganizationFactory(), role=MembershipRole.OWNER)
    return u


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def auth_client(user):
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def api_key(organization):
    _, raw = api_key_create(organization=organization, name="test")
    return raw


@pytest.fixture
def key_client(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    return client


def _worker_env() -> dict[str, str]:
    """Environment for a child process that must see the test database, not the dev one."""
    from django.db import connection

    env = dict(os.environ)
    db = connection.settings_dict
    if db["ENGINE"].endswith("postgresql"):
        user = db.get("USER") or "postgres"
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or 5432
        env["DATABASE_URL"] = f"postgres://{user}@{host}:{port}/{db['NAME']}"
    # The same keys as this process: values it seals (invitation links) open in the child.
    env["SECRET_KEY"] = settings.SECRET_KEY
    if settings.FIELD_ENCRYPTION_KEYS:
        env["FIELD_ENCRYPTION_KEYS"] = ",".join(settings.FIELD_ENCRYPTION_KEYS)
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return env


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen, log_path: Path):
        self.proc = proc
        self.log_path = log_path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole process group (the main process and its pool children)."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)


def start_worker(
    tmp_path: Path, *, queues: str | None = None, concurrency: int = 2, name: str = "w", plain: bool = False,
    env: dict[str, str] | None = None,
) -> WorkerProcess:
    """A `celery worker` process; `plain=True` starts it without -Q, as an operator types it."""
    from common.queues import ALL_QUEUES

    log_path = tmp_path / f"worker-{name}.log"
    cmd = [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        *([] if plain else ["-Q", queues or ALL_QUEUES]), "-c", str(concurrency), "-n", f"{name}-{os.getpid()}@%h",
        "--without-gossip", "--without-mingle", "--loglevel", "INFO",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env={**_worker_env(), **(env or {})}, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if " ready." in (log_path.read_text(errors="replace") if log_path.exists() else ""):
            return WorkerProcess(proc, log_path)
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    out = log_path.read_text(errors="replace") if log_path.exists() else ""
    proc.kill()
    raise RuntimeError(f"celery worker did not start:\n{out[-4000:]}")


@pytest.fixture
def celery_purge():
    """Drop messages a previous run left in the broker so they can't leak into this test."""
    from config.celery import app

    app.control.purge()


@pytest.fixture
def live_worker(transactional_db, tmp_path, settings, celery_purge):
    """A real `celery worker` process on the real broker, reading the test database."""
    if not settings.CELERY_BROKER_URL.startswith("amqp"):
        pytest.skip("live worker needs RabbitMQ") if not IN_CI else pytest.fail("RabbitMQ required in CI")
    worker = start_worker(tmp_path)
    yield worker
    # Cold shutdown: the test is over, nothing waits for the pool to finish (a warm SIGTERM
    # shutdown took 10-20 s per test); unacknowledged messages go back to the test's vhost.
    worker.kill(signal.SIGQUIT) if worker.proc.poll() is None else None


@contextlib.contextmanager
def chromium(*args: str):
    """Debian's Chromium through Playwright, for a module's tests (each opens its own context).
    Playwright's sync API keeps an event loop on this thread while it is open: the ORM calls the
    tests and their fixtures make meanwhile are ordinary blocking calls, which Django would
    otherwise refuse, and no other module may run under it (hence module scope, not session)."""
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", *args])
            yield browser
            browser.close()


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def pytest_collection_modifyitems(config, items):
    # The crash tests stop RabbitMQ and restart PostgreSQL; run them last so no other test
    # (or a session-scoped live server thread) holds a connection across the restart.
    items.sort(key=lambda item: 1 if item.get_closest_marker("slow") else 0)


@pytest.fixture
def phone_consent(db):
    """The platform's SMS, WhatsApp and voice configurations say consent is given for bare numbers
    (seed 004 §4.2 `requiresOptIn: false`); without it routing refuses bare numbers on them."""
    from notifications.models import ChannelConfiguration

    for channel in ("SMS", "WHATSAPP", "VOICE"):
        ChannelConfiguration.objects.update_or_create(
            organization=None, channel=channel, defaults={"settings": {"requiresOptIn": False}},
        )
