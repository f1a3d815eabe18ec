"""`python -m tools.bench.activity` (from the repository root): what auditing costs a
write, on PostgreSQL: `POST /api/v1/projects` with the activity log on and off, in one
run (tools/bench/activity_steps.py does the measuring, from backend/).

Fresh auth and app databases, migrated. An audited project costs, besides its own
INSERT, the outbox row in the same transaction, and after the commit the relay: the
app transaction that takes the row, the auth transaction that writes the entry and its
receipt, and the delete. BENCH_POSTGRES_URL changes the server.
"""

import subprocess
import sys

from tools.servers import BACKEND, REPO, fresh_database, migrate, service_environment

AUTH_DB, APP_DB = "dualbase_bench_activity_auth", "dualbase_bench_activity_app"


def main() -> int:
    environment = service_environment(fresh_database(AUTH_DB), fresh_database(APP_DB))
    migrate(environment)
    measured = subprocess.run(
        [sys.executable, "-m", "tools.bench.activity_steps"],
        cwd=BACKEND,
        env={**environment, "PYTHONPATH": f"{BACKEND}:{REPO}", "LOG_LEVEL": "warning"},
        check=False,
    )
    return measured.returncode


if __name__ == "__main__":
    sys.exit(main())
