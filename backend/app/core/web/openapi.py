"""The OpenAPI document: error shapes and which errors each operation documents,
request examples, and short operation ids for generated clients.

Routes list their own errors with `responses=errors(404, 409)`; `build_openapi` adds
what every operation of a kind can answer, so that the document tells the whole truth.
"""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from pydantic import BaseModel


class ErrorBody(BaseModel):
    """Every error answer has this shape."""

    detail: str
    code: str


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(ErrorBody):
    errors: list[ValidationErrorItem] = []


_DESCRIPTIONS = {
    400: "Bad request (also: a body that cannot be parsed)",
    401: "Missing, invalid or expired credentials",
    403: "Authenticated, but not allowed",
    404: "Not found (also for rows that belong to someone else)",
    409: "Conflicts with existing data",
    413: "Request body too large",
    422: "Invalid request",
    429: "Too many attempts; see Retry-After",
    503: "A database is unavailable; see `database`",
}


def errors(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the error statuses a route can give."""
    return {
        code: {
            "model": ValidationErrorBody if code == 422 else ErrorBody,
            "description": _DESCRIPTIONS.get(code, HTTPStatus(code).phrase),
        }
        for code in status_codes
    }


def operation_id(route: APIRoute) -> str:
    """A short, stable id from the route's tag and its handler's name: `create_project`
    under `projects` is `projects-create`, `read_me` under `users` is `users-read-me`.

    A generated client names its functions after these; FastAPI's default would be
    `create_project_api_v1_projects_post`.
    """
    tag = str(route.tags[0]) if route.tags else "default"
    noise = {tag, tag.removesuffix("s"), tag.replace("-", "_")}
    words = [word for word in route.name.split("_") if word not in noise] or [route.name]
    return f"{tag}-{'-'.join(words)}"


def build_openapi(
    app: FastAPI, security_alternatives: Mapping[str, SecurityBase] | None = None
) -> dict[str, Any]:
    """The OpenAPI document, built once: FastAPI's, with every operation's common
    errors and each request body's example added. Where an operation takes a security
    scheme named in `security_alternatives`, it takes the scheme mapped to as well (a
    dependency that reads two kinds of credential, documented as one of them)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        add_security_alternatives(schema, security_alternatives or {})
        add_common_errors(schema)
        add_request_examples(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def add_security_alternatives(
    schema: dict[str, Any], alternatives: Mapping[str, SecurityBase]
) -> None:
    """Offer `alternatives[name]` beside scheme `name` on every operation requiring it
    (OpenAPI: each entry of `security` is enough on its own)."""
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            security: list[dict[str, list[str]]] = operation.get("security", [])
            for requirement in list(security):
                for name in requirement:
                    alternative = alternatives.get(name)
                    if alternative is None:
                        continue
                    schemes[alternative.scheme_name] = jsonable_encoder(
                        alternative.model, by_alias=True, exclude_none=True
                    )
                    if {alternative.scheme_name: []} not in security:
                        security.append({alternative.scheme_name: []})


def add_common_errors(schema: dict[str, Any]) -> None:
    """Document, on every operation of an OpenAPI `schema`, the errors any operation of
    its kind can give.

    Routes list their own (404, 409...); this adds what comes from the framework and
    the infrastructure: 400 and 413 for an unreadable or oversized body, 401 where
    credentials are taken, 503 where a database is used, and FastAPI's 422 described
    with our error shape instead of its own.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorBody, ValidationErrorItem, ValidationErrorBody):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            wanted = set()
            if operation.get("parameters") or operation.get("requestBody"):
                wanted.add(422)
            if operation.get("requestBody"):
                wanted |= {400, 413}
            if operation.get("security"):
                wanted.add(401)
            if not path.startswith("/health/live"):
                wanted.add(503)
            for status, answer in errors(*sorted(wanted)).items():
                responses.setdefault(str(status), {}).update(
                    description=answer["description"],
                    content={
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{answer['model'].__name__}"}
                        }
                    },
                )


def add_request_examples(schema: dict[str, Any]) -> None:
    """Copy each JSON body's first schema example onto its operations, where both pages
    look for it. The examples themselves live on the request schemas."""
    components = schema.get("components", {}).get("schemas", {})
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            media = content.get("application/json")
            if media is None:
                continue
            reference = media["schema"].get("$ref", "").rsplit("/", 1)[-1]
            examples = components.get(reference, {}).get("examples")
            if examples:
                media["example"] = examples[0]
