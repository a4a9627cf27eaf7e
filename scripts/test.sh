#!/usr/bin/env bash
# The whole test suite: lint (ruff) and types (mypy over ml/), the editor's unit tests, then
# Python (unit, API, real worker, browser).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/mypy   # ml/, settings in mypy.ini
(cd frontend && npm test --silent)
exec .venv/bin/python -m pytest "$@"
