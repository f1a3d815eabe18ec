"""The type checker keeps each database's session out of the other's services.

Services take an `AuthSession` or an `AppSession`, and the dependencies and
`integrity_session` hand out the right one, so handing a service the other
database's session is a mypy error, not a query against the wrong database at run
time. These tests run mypy (the configuration of `make lint`) on small modules.
"""

from pathlib import Path

import pytest
from mypy import api

BACKEND = Path(__file__).resolve().parents[1]

WRONG = """
from app.core.db.integrity import integrity_session
from app.core.db.registry import Databases
from app.projects import service as projects
from app.core.db.sessions import AuthDb


async def load_from_auth(auth_db: AuthDb) -> object:
    return await projects.get(auth_db, 1)


async def script(databases: Databases) -> None:
    async with integrity_session(databases, "auth", "a script") as auth_db:
        await projects.get(auth_db, 1)
"""

RIGHT = (
    WRONG.replace('"auth", "a script"', '"app", "a script"')
    .replace("auth_db: AuthDb", "auth_db: AppDb")
    .replace("import AuthDb", "import AppDb")
)


def check(tmp_path: Path, source: str) -> tuple[str, int]:
    module = tmp_path / "handing.py"
    module.write_text(source)
    report, errors, status = api.run(
        ["--config-file", str(BACKEND / "pyproject.toml"), "--no-error-summary", str(module)]
    )
    return report + errors, status


@pytest.fixture(autouse=True)
def _from_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BACKEND)  # mypy's cache, and `app` importable


def test_a_service_of_the_app_database_refuses_the_auth_session(tmp_path: Path) -> None:
    report, status = check(tmp_path, WRONG)
    assert status == 1, report
    wrong = [line for line in report.splitlines() if "error:" in line]
    assert len(wrong) == 2, report
    assert all('"AuthSession"' in line and '"AppSession"' in line for line in wrong), report


def test_the_right_session_type_checks(tmp_path: Path) -> None:
    report, status = check(tmp_path, RIGHT)
    assert status == 0, report
