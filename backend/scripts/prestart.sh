#!/bin/sh
# Before serving: wait until both databases answer, then migrate both trees.
# Used by the container (scripts/start.sh) and runnable by hand from anywhere.
set -eu
cd "$(dirname "$0")/.."
python -m app.cli wait-for-databases --timeout "${DB_WAIT_TIMEOUT:-60}"
alembic -n auth upgrade head
alembic -n app upgrade head
