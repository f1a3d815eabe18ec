"""FastAPI glue that knows no domain: error rendering, the OpenAPI document and the
docs pages, request protections, shared parameters, pagination and dependencies."""
