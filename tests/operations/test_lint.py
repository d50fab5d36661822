"""`make lint` is part of the bar: ruff and the type checker (mypy + django-stubs) stay clean."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_ruff_and_mypy_are_clean(tmp_path):
    ruff = subprocess.run([BIN / "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    env = {**os.environ, "DEBUG": "true", "TROUBADOUR_VAR_DIR": str(tmp_path)}
    mypy = subprocess.run([BIN / "mypy", "--cache-dir", str(tmp_path / "mypy")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    assert "Success: no issues found" in mypy.stdout
