"""Schemathesis hooks for `make fuzz`: a check that no answer leaks what it must not."""

import re
from typing import Any

import schemathesis

# An argon2 or bcrypt hash, a SHA-256 hex digest (how tokens and keys are stored), a
# Python traceback or a SQL error text: none may ever appear in a response.
LEAKS = re.compile(
    r"\$argon2(id|i|d)\$|\$2[aby]\$\d\d\$|\b[0-9a-f]{64}\b|Traceback \(most recent call last\)"
    r"|File \"[^\"]+\.py\", line \d+|sqlalchemy\.exc|asyncpg\.|pymysql\.|hashed_password|key_hash"
    r"|token_hash",
)


@schemathesis.check
def no_secrets_or_traces(
    ctx: object, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> None:
    found = LEAKS.search(response.text or "")
    if found:
        raise AssertionError(f"response leaks {found.group(0)!r}")
