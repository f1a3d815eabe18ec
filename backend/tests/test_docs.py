"""What the docs pages are built from, checked without a browser (test_browser_docs.py
drives the pages themselves)."""

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from app.core.web.schemas import RequestBody
from app.main import create_app
from tests.conftest import client_for, make_settings


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # No lifespan: the pages and the OpenAPI document need no database.
    async with client_for(create_app(make_settings())) as client:
        yield client


@pytest.fixture
async def spec(http: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await http.get("/openapi.json")).json()
    return document


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


async def test_every_json_request_body_shows_an_example(spec: dict[str, Any]) -> None:
    json_bodies = {
        f"{method} {path}": operation["requestBody"]["content"]["application/json"]
        for method, path, operation in operations(spec)
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    }
    missing = [operation for operation, body in json_bodies.items() if "example" not in body]

    assert len(json_bodies) >= 10

    assert missing == [], "give the request schema an example (json_schema_extra)"


def request_examples() -> list[tuple[type[BaseModel], Any]]:
    """Every example that a request schema (a RequestBody subclass) carries."""
    found: list[tuple[type[BaseModel], Any]] = []
    pending: list[type[BaseModel]] = [RequestBody]
    while pending:
        for model in pending.pop().__subclasses__():
            pending.append(model)
            extra = model.model_config.get("json_schema_extra")
            examples: list[Any] = extra.get("examples", []) if isinstance(extra, dict) else []  # type: ignore[assignment]
            found += [(model, example) for example in examples]
    return found


@pytest.mark.parametrize(
    ("model", "example"), request_examples(), ids=lambda value: getattr(value, "__name__", "")
)
def test_each_example_is_a_body_the_api_accepts(model: type[BaseModel], example: Any) -> None:
    model.model_validate(example)


async def test_every_tag_in_use_is_described(spec: dict[str, Any]) -> None:
    described = {tag["name"] for tag in spec["tags"] if tag.get("description")}
    used = {tag for _, _, operation in operations(spec) for tag in operation["tags"]}

    assert used <= described
    assert [tag["name"] for tag in spec["tags"]] == [
        "health",
        "auth",
        "users",
        "projects",
        "products",
        "orders",
        "dashboard",
        "notifications",
        "queue",
        "activity",
    ]


async def test_operation_ids_are_short_unique_and_free_of_paths(spec: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(spec)]

    assert len(ids) == len(set(ids)), "two operations share an id"
    for _, _, operation in operations(spec):
        operation_id = operation["operationId"]
        # `tag-verb[-object]`: what a generated client names its function after.
        assert re.fullmatch(r"[a-z]+(-[a-z]+)+", operation_id), operation_id
        assert operation_id.startswith(f"{operation['tags'][0]}-")
        # FastAPI's default carries the path and the method: `..._api_v1_projects_post`.
        assert "v1" not in operation_id.split("-"), operation_id
        assert len(operation_id) <= 40, operation_id
    assert "projects-create" in ids
    assert "users-read-me" in ids


async def test_every_operation_documents_its_errors(spec: dict[str, Any]) -> None:
    without_errors = [
        f"{method} {path}"
        for method, path, operation in operations(spec)
        # Only the liveness probe cannot fail: it answers whenever the process runs.
        if path != "/health/live" and not any(code >= "400" for code in operation["responses"])
    ]

    assert without_errors == []


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", ["/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"]),
        ("/redoc", ["/docs/assets/redoc.standalone.js"]),
    ],
)
async def test_docs_pages_load_their_assets_from_the_service(
    http: httpx.AsyncClient, page: str, assets: list[str]
) -> None:
    html = (await http.get(page)).text

    assert "https://" not in html
    for asset in assets:
        assert f'"{asset}"' in html
        response = await http.get(asset)
        assert response.status_code == 200
        assert len(response.content) > 100_000


async def test_oauth2_redirect_page_is_served(http: httpx.AsyncClient) -> None:
    response = await http.get("/docs/oauth2-redirect")

    assert response.status_code == 200
    assert "swaggerUIRedirectOauth2" in response.text
