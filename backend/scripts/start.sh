#!/bin/sh
# The container's command: prestart, then serve with WEB_CONCURRENCY workers.
set -eu
cd "$(dirname "$0")/.."
sh scripts/prestart.sh
exec uvicorn --factory app.main:create_app \
    --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" \
    --workers "${WEB_CONCURRENCY:-1}" --proxy-headers \
    --timeout-graceful-shutdown "${GRACEFUL_SHUTDOWN_SECONDS:-20}"
