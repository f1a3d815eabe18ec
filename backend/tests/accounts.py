"""Helpers that sign people up and in through the API, as a client would."""

from dataclasses import dataclass

import httpx

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
