"""How the two database URLs are resolved, rewritten and refused, and the secret rules."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import BACKEND_DIR, DatabaseMode, Settings
from app.core.db.registry import create_databases
from tests.conftest import make_settings


def test_nothing_set_gives_two_embedded_sqlite_files(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path)

    assert settings.database_mode is DatabaseMode.EMBEDDED
    assert settings.resolved_database_url("auth").render_as_string() == (
        f"sqlite+aiosqlite:///{tmp_path}/auth.db"
    )
    assert settings.resolved_database_url("app").render_as_string() == (
        f"sqlite+aiosqlite:///{tmp_path}/app.db"
    )


def test_database_url_alone_puts_both_databases_in_one() -> None:
    settings = make_settings(database_url="postgres://svc:pw@db:5432/everything")

    assert settings.database_mode is DatabaseMode.SINGLE
    for name in ("auth", "app"):
        assert settings.resolved_database_url(name).render_as_string(hide_password=False) == (
            "postgresql+asyncpg://svc:pw@db:5432/everything"
        )


def test_own_urls_win_over_database_url() -> None:
    settings = make_settings(
        database_url="postgresql://svc@db/fallback",
        auth_database_url="postgresql://svc@db/auth",
    )

    assert settings.database_mode is DatabaseMode.SEPARATE
    assert settings.resolved_database_url("auth").database == "auth"
    assert settings.resolved_database_url("app").database == "fallback"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgresql://u:p@h/d", "postgresql+asyncpg://u:p@h/d"),
        ("postgresql+asyncpg://u:p@h/d", "postgresql+asyncpg://u:p@h/d"),
        ("mysql://u:p@h:3306/d", "mysql+aiomysql://u:p@h:3306/d?charset=utf8mb4"),
        ("mariadb://u:p@h/d", "mysql+aiomysql://u:p@h/d?charset=utf8mb4"),
        ("mysql+aiomysql://u:p@h/d?charset=latin1", "mysql+aiomysql://u:p@h/d?charset=latin1"),
        ("sqlite:///relative.db", "sqlite+aiosqlite:///relative.db"),
        ("  postgresql://u:p@h/d  ", "postgresql+asyncpg://u:p@h/d"),
    ],
)
def test_schemes_are_rewritten_to_the_async_drivers(given: str, expected: str) -> None:
    url = make_settings(app_database_url=given).resolved_database_url("app")

    assert url.render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    ("given", "expected_words"),
    [
        ("postgresql+psycopg2://u:secretpw@h/d", "not the async driver"),
        ("mysql+pymysql://u:secretpw@h/d", "not the async driver"),
        ("mysql+mysqldb://u:secretpw@h/d", "not the async driver"),
        ("oracle://u:secretpw@h/d", "unsupported scheme"),
        ("mongodb://u:secretpw@h/d", "unsupported scheme"),
        ("secretpw-not-a-url", "not a database URL"),
        ("postgresql://u:secretpw@h", "names no database"),
    ],
)
def test_bad_urls_are_refused_naming_the_variable_and_hiding_the_password(
    given: str, expected_words: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(auth_database_url=given)

    message = str(refused.value)
    assert "AUTH_DATABASE_URL" in message
    assert expected_words in message
    assert "postgresql://user:password@localhost:5432/dbname" in message  # an example to copy
    assert "secretpw" not in message


def test_a_bad_fallback_url_is_refused_under_its_own_name() -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL uses the unsupported scheme"):
        make_settings(database_url="redis://localhost/0")


def test_urls_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mariadb://svc:pw@db/shared")
    monkeypatch.setenv("APP_DATABASE_URL", "postgres://svc:pw@db/app")

    settings = make_settings()

    assert settings.resolved_database_url("auth").drivername == "mysql+aiomysql"
    assert settings.resolved_database_url("app").drivername == "postgresql+asyncpg"


def test_passwords_stay_out_of_the_settings_repr() -> None:
    settings = make_settings(database_url="postgresql://svc:hunter2pw@db/d")

    assert "hunter2pw" not in repr(settings)
    assert "hunter2pw" not in str(settings.resolved_database_url("auth"))


@pytest.mark.parametrize("environment", ["test", "production"])
@pytest.mark.parametrize("secret", [None, "dev-only-insecure-secret-key-change-me", "short"])
def test_missing_default_or_short_secret_is_refused_outside_development(
    environment: str, secret: str | None
) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None, environment=environment, secret_key=secret)


def test_development_runs_without_a_secret() -> None:
    settings = Settings(_env_file=None)

    assert settings.environment == "development"
    assert settings.signing_key


def test_a_heartbeat_timeout_shorter_than_two_heartbeats_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least twice QUEUE_HEARTBEAT_INTERVAL"):
        make_settings(queue_heartbeat_interval=5, queue_heartbeat_timeout=9)

    assert make_settings(queue_heartbeat_interval=5, queue_heartbeat_timeout=10)


def test_pool_defaults_give_the_auth_database_the_smaller_pool() -> None:
    settings = make_settings()

    assert (settings.pool_size("auth"), settings.pool_size("app")) == (5, 20)
    assert settings.db_pool_recycle > 0


async def test_single_url_mode_shares_one_engine_and_one_pool(tmp_path: Path) -> None:
    databases = create_databases(
        make_settings(
            database_url=f"sqlite:///{tmp_path}/one.db", auth_db_pool_size=3, app_db_pool_size=4
        )
    )
    try:
        assert databases.shared
        assert databases.auth.engine is databases.app.engine
        assert databases.auth.engine.pool.size() == 7  # type: ignore[attr-defined]
    finally:
        await databases.dispose()


async def test_separate_mode_has_two_engines_with_their_own_pool_sizes(tmp_path: Path) -> None:
    databases = create_databases(make_settings(data_dir=tmp_path))
    try:
        assert not databases.shared
        assert databases.auth.engine.pool.size() == 5  # type: ignore[attr-defined]
        assert databases.app.engine.pool.size() == 20  # type: ignore[attr-defined]
    finally:
        await databases.dispose()


def test_a_relative_data_dir_is_taken_from_the_backend_folder() -> None:
    settings = make_settings(data_dir="var/db")

    assert settings.data_dir == BACKEND_DIR / "var" / "db"


def test_env_example_documents_every_setting() -> None:
    documented = set(
        re.findall(
            r"^#? ?([A-Z][A-Z0-9_]+)=",
            (BACKEND_DIR.parent / ".env.example").read_text(),
            flags=re.MULTILINE,
        )
    )

    settings = {name.upper() for name, field in Settings.model_fields.items() if not field.exclude}

    assert settings <= documented


def test_a_service_on_the_database_backends_never_loads_a_broker_client() -> None:
    """redis-py and aio-pika are a sixth of a worker's start-up: a service whose cache and
    queue are in the database does not import them."""
    program = (
        "import sys\n"
        "from app.core.config import Settings\n"
        "from app.core.db.registry import create_databases\n"
        "from app.essentials.cache.factory import create_cache\n"
        "from app.essentials.queue.queue import create_queue\n"
        "from app.main import create_app\n"
        "settings = Settings(cache_store='database', queue_backend='database')\n"
        "create_app(settings)\n"
        "databases = create_databases(settings)\n"
        "create_cache(settings, databases), create_queue(settings, databases)\n"
        "print(sorted({'redis', 'aio_pika', 'aiormq'} & set(sys.modules)))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", program], cwd=BACKEND_DIR, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
