#!/bin/sh
# The container's command: prestart, then serve with WEB_CONCURRENCY workers.
# The event loop is asyncio's own, not uvloop: under mixed load (fast requests beside
# database-bound ones) uvloop left 1% of the fast ones waiting 120-870 ms; asyncio
# keeps them within tens of ms, for some 15% less throughput (bench/, README).
# UVICORN_LOOP=uvloop chooses the other trade.
set -eu
cd "$(dirname "$0")/.."
sh scripts/prestart.sh
exec uvicorn --factory app.main:create_app \
    --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" \
    --workers "${WEB_CONCURRENCY:-1}" --proxy-headers --loop "${UVICORN_LOOP:-asyncio}" \
    --timeout-graceful-shutdown "${GRACEFUL_SHUTDOWN_SECONDS:-20}"
