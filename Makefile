# Two commands: `make run` (install what is missing, migrate, seed, start web + worker) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
FRONTEND_SOURCES := $(shell find frontend/src -type f 2>/dev/null) frontend/package.json frontend/vite.config.ts frontend/tsconfig.json
EDITOR_BUNDLE := frontend/dist/editor/editor.js
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install frontend browser check-python

run: install frontend
	./scripts/run.sh

test: install frontend browser
	./scripts/test.sh

install: $(STAMP)

check-python:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is needed (set PYTHON=/path/to/python3.11)"; exit 1; }

$(PY): | check-python
	$(PYTHON) -m venv $(VENV)

# sam2 is an sdist: built without its CUDA extension and without an isolated build env (which
# would download a second torch); setuptools comes first for that.
$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	SAM2_BUILD_CUDA=0 $(PY) -m pip install --quiet --no-build-isolation -r requirements.txt
	touch $@

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund

$(EDITOR_BUNDLE): frontend/node_modules/.package-lock.json $(FRONTEND_SOURCES)
	cd frontend && npm run build

frontend: $(EDITOR_BUNDLE)

# Browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }
