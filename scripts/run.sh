#!/usr/bin/env bash
# Start Annotator on this machine: migrate, seed the demo, then web + Celery worker (+ beat).
# Without REDIS_URL the worker is still a separate process, using kombu's filesystem broker.
set -euo pipefail
cd "$(dirname "$0")/.."
export PORT="${PORT:-8000}" HOST="${HOST:-127.0.0.1}"
export ANNOTATOR_DATA_DIR="${ANNOTATOR_DATA_DIR:-$PWD/var}"
export WEB_PORT="$PORT" WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-2}"
# One web process per core, at most 4 (each holds ~115 MB; its threads cover the waits on the
# database): on 2 cores 4 processes only added memory, not throughput.
cores="$(nproc 2>/dev/null || echo 2)"
export WEB_WORKERS="${WEB_WORKERS:-$(( cores < 4 ? cores : 4 ))}"
# make run serves plain HTTP (put a TLS proxy in front and set ANNOTATOR_HTTPS=1 in production).
export ANNOTATOR_HTTPS="${ANNOTATOR_HTTPS:-0}"
if [ "$HOST" != "127.0.0.1" ] && [ "$HOST" != "localhost" ] && [ -z "${ALLOWED_HOSTS:-}" ]; then
  export ALLOWED_HOSTS="*"
fi
PY=.venv/bin/python
$PY manage.py migrate --noinput -v0
$PY manage.py collectstatic --noinput -v0
$PY manage.py seed_demo
if [ -n "${REDIS_URL:-}" ]; then broker="Redis at ${REDIS_URL}"; else broker="filesystem broker in ${ANNOTATOR_DATA_DIR}/broker (set REDIS_URL to use Redis)"; fi
if [ -n "${DATABASE_URL:-}" ]; then db="${DATABASE_URL%%\?*}"; db="${db%%@*}@…"; else db="SQLite in ${ANNOTATOR_DATA_DIR}"; fi
cat <<MSG

  Annotator is starting: web (gunicorn) + Celery worker
    URL:      http://${HOST}:${PORT}/
    API docs: http://${HOST}:${PORT}/api/docs/
    Database: ${db}
    Broker:   ${broker}
  Log in with one of the demo users above. Stop with Ctrl+C.

MSG
exec .venv/bin/honcho --no-colour -f Procfile start
