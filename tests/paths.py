"""Files the tests read, by their place in the repository: tests run from any working directory."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CENTRAL_ASIA_ROUTES = REPO / "deploy" / "routes" / "central-asia.json"
