"""Accounts: `create-superuser`, `assign-role`."""

from typing import Annotated

import typer
from pydantic import ValidationError

from app.auth import accounts
from app.auth.permissions import RoleName
from app.auth.schemas import UserCreate, normalize_email
from app.cli.runner import run
from app.core.db.integrity import integrity_session
from app.core.db.registry import Databases
from app.core.errors import NotFound


def register(cli: typer.Typer) -> None:
    cli.command("create-superuser")(create_superuser)
    cli.command("assign-role")(assign_role)


def create_superuser(
    email: Annotated[str, typer.Option(prompt=True, help="The superuser's email.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="8 to 128 characters; prompted for when not given.",
        ),
    ],
    full_name: Annotated[str | None, typer.Option(help="Display name.")] = None,
) -> None:
    """Create a superuser (who passes every permission check) with the admin role."""
    try:
        data = UserCreate(email=email, password=password, full_name=full_name)
    except ValidationError as invalid:
        for error in invalid.errors():
            typer.echo(f"{'.'.join(map(str, error['loc']))}: {error['msg']}", err=True)
        raise typer.Exit(2) from None

    async def create(databases: Databases) -> None:
        async with integrity_session(databases, "auth", "create a superuser") as auth_db:
            user = await accounts.create(auth_db, data, is_superuser=True)
            await accounts.assign_role(auth_db, user, RoleName.ADMIN)

    run(create)
    typer.echo(f"superuser {data.email} created")


def assign_role(
    email: Annotated[str, typer.Argument(help="The user's email.")],
    role: Annotated[str, typer.Argument(help="A role name, e.g. admin or member.")],
) -> None:
    """Give an existing user a role."""

    async def assign(databases: Databases) -> None:
        async with integrity_session(databases, "auth", "assign a role") as auth_db:
            user = await accounts.get_by_email(auth_db, str(normalize_email(email)))
            if user is None:
                raise NotFound("user")
            await accounts.assign_role(auth_db, user, role)

    run(assign)
    typer.echo(f"{email} now has the role {role}")
