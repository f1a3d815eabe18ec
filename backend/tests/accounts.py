"""Helpers that sign people up and in through the API, as a client would."""

from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import accounts
from app.auth.changes import record_change
from app.auth.models import Role, User

API = "/api/v1"
PASSWORD = "correct horse battery"


@dataclass
class Account:
    email: str
    password: str
    id: int
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: object
) -> httpx.Response:
    return await client.post(
        f"{API}/auth/register", json={"email": email, "password": password, **extra}
    )


async def login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **headers: str
) -> httpx.Response:
    return await client.post(
        f"{API}/auth/login", data={"username": email, "password": password}, headers=headers
    )


async def signed_up(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> Account:
    """Register and sign in; fails the test if either step does not succeed."""
    registered = await register(client, email, password)
    assert registered.status_code == 201, registered.text
    tokens = await login(client, email, password)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    return Account(
        email, password, registered.json()["id"], body["access_token"], body["refresh_token"]
    )


async def grant_role(app: FastAPI, email: str, role: str) -> None:
    """Give a registered user a role, straight in the auth database."""
    async with app.state.databases.auth.sessions() as session:
        user = await accounts.get_by_email(session, email)
        assert user is not None
        await accounts.assign_role(session, user, role)  # records the change itself
        await commit_changed(app, session, user.id)


async def set_roles(app: FastAPI, email: str, roles: list[str]) -> None:
    async with app.state.databases.auth.sessions() as session:
        user = await accounts.get_by_email(session, email)
        assert user is not None
        user.roles = list(await session.scalars(select(Role).where(Role.name.in_(roles))))
        record_change(session, user.id)
        await commit_changed(app, session, user.id)


async def make_superuser(app: FastAPI, email: str) -> None:
    async with app.state.databases.auth.sessions() as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        user.is_superuser = True
        record_change(session, user.id)
        await commit_changed(app, session, user.id)


async def commit_changed(app: FastAPI, session: AsyncSession, user_id: int | None) -> None:
    """Commit a change to credentials made outside a request, and drop what this app's
    worker keeps of them at once, as a request that made it would (other workers follow
    the recorded change)."""
    await session.commit()
    app.state.principals.drop_user(user_id)


async def an_admin(
    client: httpx.AsyncClient, app: FastAPI, email: str = "boss@example.com"
) -> Account:
    """A signed-in user with the admin role."""
    admin = await signed_up(client, email)
    await grant_role(app, email, "admin")
    return admin


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str)
