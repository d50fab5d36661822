"""Production safety and the production shape: settings defaults, docker-compose, the demo data."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command, get_commands

from accounts.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERNAME
from accounts.models import Membership, User
from common.queues import ALL_QUEUES
from narrations.models import Story
from narrations.segmenter import NARRATOR, Segmenter

ROOT = Path(__file__).resolve().parents[2]
_SETTINGS_PROBE = "from django.conf import settings; print(settings.DEBUG, settings.ALLOWED_HOSTS)"
# Variables that would loosen the production defaults if they leaked in from the test run.
_LOOSENING = ("SECRET_KEY", "DEBUG", "TROUBADOUR_EMBEDDED", "DJANGO_ALLOW_INSECURE_KEY", "ALLOWED_HOSTS")


def _settings_in_a_fresh_process(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in _LOOSENING}
    clean.update(DJANGO_SETTINGS_MODULE="config.settings", TROUBADOUR_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "-c", _SETTINGS_PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = _settings_in_a_fresh_process(tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY must be set" in result.stderr


def test_debug_is_off_and_hosts_are_local_unless_asked_for(tmp_path):
    result = _settings_in_a_fresh_process(tmp_path, SECRET_KEY="a-real-secret")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False ['127.0.0.1', 'localhost']"

    debug = _settings_in_a_fresh_process(tmp_path, DEBUG="true")  # development: a key is not required
    assert debug.returncode == 0, debug.stderr
    assert debug.stdout.startswith("True")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _settings_env_names() -> set[str]:
    source = (ROOT / "config" / "settings.py").read_text() + (ROOT / "config" / "gunicorn.conf.py").read_text()
    return set(re.findall(r"""(?:os\.environ\.get|env_bool|env_list)\(\s*["']([A-Z0-9_]+)["']""", source))


def test_compose_runs_every_component_with_healthchecks():
    services = _compose()["services"]
    assert {"postgres", "rabbitmq", "redis", "web", "worker", "beat", "events"} <= set(services)
    for name in ("postgres", "rabbitmq", "redis", "web", "worker", "beat", "events"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in ("web", "worker", "beat", "events"):
        # The app processes start only on healthy services and a migrated database.
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("postgres", "rabbitmq", "redis"):
        assert services["migrate"]["depends_on"][name]["condition"] == "service_healthy"


def test_compose_commands_and_environment_match_the_code():
    services = _compose()["services"]
    web = services["web"]["command"]
    # The web service runs exactly `make serve`: the ASGI tier under gunicorn's uvicorn workers.
    assert web == ["gunicorn", "-c", "config/gunicorn.conf.py", "config.asgi:application"]
    serve = re.search(r"^serve:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert serve.endswith("/bin/gunicorn " + " ".join(web[1:]))
    assert (ROOT / "Dockerfile").read_text().count(json.dumps(web)) == 1
    worker = services["worker"]["command"]
    assert worker[:4] == ["celery", "-A", "config", "worker"]
    assert set(worker[worker.index("-Q") + 1].split(",")) == set(ALL_QUEUES.split(","))
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    for name in ("events", "migrate"):
        command = services[name]["command"]
        assert command[:2] == ["python", "manage.py"]
        assert command[2] in get_commands(), f"{name}: no management command {command[2]!r}"

    known = _settings_env_names()
    for name, service in services.items():
        if "build" not in service:
            continue
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name} sets variables the settings never read: {unknown}"
        assert service["environment"]["DEBUG"] == "false"
        assert service["environment"]["SECRET_KEY"].startswith("${SECRET_KEY:?")  # required, no default

    # Health checks that call pgrep need procps, which slim Python images lack.
    uses_pgrep = any("pgrep" in str(s.get("healthcheck", {}).get("test")) for s in services.values())
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not uses_pgrep or "procps" in dockerfile


@pytest.mark.postgres
@pytest.mark.django_db
def test_demo_data_is_idempotent_and_its_dialogue_is_attributed(client):
    call_command("seed_demo", stdout=open(os.devnull, "w"))
    call_command("seed_demo", stdout=open(os.devnull, "w"))
    user = User.objects.get(username=DEMO_USERNAME)
    assert Membership.objects.filter(user=user).count() == 1
    (story,) = Story.objects.filter(owner=user)
    names = list(story.characters.values_list("name", flat=True))
    assert len(names) >= 2
    assert client.login(username=DEMO_USERNAME, password=DEMO_PASSWORD)
    assert client.get(f"/stories/{story.pk}/").status_code == 200
    # The demo shows what the narration engine does with dialogue: each character speaks.
    speakers = {line.speaker for line in Segmenter(names).story_lines(story.content)}
    assert speakers == {NARRATOR, *names}
