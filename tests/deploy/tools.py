"""Finding the real tools (promtool, prometheus, docker) the deploy tests run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def require_binary(name: str, package: str) -> str:
    """The path of ``name``; under ``CI=true`` a missing binary fails, locally it skips."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found: install Debian's {package} package (.ci/run does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
