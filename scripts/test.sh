#!/usr/bin/env bash
# The whole test suite: Python (unit, API, real worker, browser) and the editor's unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd frontend && npm test --silent)
exec .venv/bin/python -m pytest "$@"
