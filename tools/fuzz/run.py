"""`make fuzz`: schemathesis against the service's own OpenAPI schema, on PostgreSQL.

Three passes over every operation: signed in as a member (bearer token), with the
member's API key, and without credentials. Every response must be no 5xx, match its
documented status codes, content type and schema, and leak no password hash, token
hash or stack trace (tools/fuzz/hooks.py). Prints the requests generated and the failures
found; exits 1 on any failure. FUZZ_MAX_EXAMPLES sets the depth (default 12).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tools.servers import REPO, VENV_BIN, fresh_database, migrate, service_environment, uvicorn

FUZZ = Path(__file__).resolve().parent
ARTIFACTS = REPO / "artifacts" / "fuzz"
MAX_EXAMPLES = os.environ.get("FUZZ_MAX_EXAMPLES", "12")
PASSWORD = "fuzzing password"
# Calls that would end the credential the pass itself uses.
SESSION_ENDING = ["/api/v1/auth/logout", "/api/v1/auth/logout-all"]
SESSION_ENDING_REGEX = r"^/api/v1/auth/sessions/"


def schemathesis(url: str, label: str, headers: list[str], extra: list[str]) -> tuple[int, str]:
    args = [
        str(VENV_BIN / "schemathesis"),
        "run",
        url,
        "--checks",
        "all",
        # Refusing well-formed input is right when it depends on state the schema cannot
        # express: a wrong current password, a spent reset token, a cursor not ours.
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        os.environ.get("FUZZ_SEED", "20261122"),
        "--no-color",
        *[item for header in headers for item in ("-H", header)],
        *extra,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "hooks", "PYTHONPATH": str(FUZZ)}
    result = subprocess.run(args, cwd=FUZZ, env=env, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    (ARTIFACTS / f"{label}.log").write_text(output)
    return result.returncode, output


def main() -> int:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = service_environment(
        fresh_database("dualbase_fuzz_auth"), fresh_database("dualbase_fuzz_app")
    )
    migrate(env)
    server_log = ARTIFACTS / "server.log"
    rows: list[tuple[str, int, int]] = []
    failed = False
    with uvicorn("app.main:create_app", env, log=server_log) as base:
        token, api_key = seed(base)
        passes = [
            (
                "member-session",
                [f"Authorization: Bearer {token}"],
                [arg for path in SESSION_ENDING for arg in ("--exclude-path", path)]
                + ["--exclude-path-regex", SESSION_ENDING_REGEX],
            ),
            ("member-api-key", [f"X-API-Key: {api_key}"], []),
            ("anonymous", [], []),
        ]
        for label, headers, extra in passes:
            code, output = schemathesis(f"{base}/openapi.json", label, headers, extra)
            generated_match = re.search(r"(\d+) generated", output)
            found = re.search(r"found (\d+) unique failures", output)
            failures = int(found[1]) if found else (0 if code == 0 else 1)
            rows.append((label, int(generated_match[1]) if generated_match else 0, failures))
            if code != 0:
                failed = True
                print(output[-6000:])
    print("\n| pass | requests generated | failures |\n|---|---|---|")
    for label, generated, failures in rows:
        print(f"| {label} | {generated} | {failures} |")
    total = sum(generated for _, generated, _ in rows)
    print(f"| total | {total} | {sum(failures for *_, failures in rows)} |")
    if "Traceback" in server_log.read_text():
        print("the server logged a traceback, see " + str(server_log))
        failed = True
    if total < 1000:
        print(f"only {total} requests generated; at least 1,000 are required")
        failed = True
    print("\nFUZZ " + ("FAILED" if failed else "PASSED") + " (logs in artifacts/fuzz/)")
    return 1 if failed else 0


def seed(base: str) -> tuple[str, str]:
    """A member with a session and an API key, and a project of theirs to find."""
    with httpx.Client(base_url=base, timeout=30) as http:
        http.post(
            "/api/v1/auth/register", json={"email": "member@fuzz.example", "password": PASSWORD}
        ).raise_for_status()
        token = http.post(
            "/api/v1/auth/login", data={"username": "member@fuzz.example", "password": PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        http.post("/api/v1/projects", json={"name": "seed"}, headers=headers).raise_for_status()
        key = http.post(
            "/api/v1/auth/api-keys",
            headers=headers,
            json={
                "name": "fuzz",
                "scopes": ["projects:read", "projects:write", "orders:read", "orders:write"],
            },
        ).json()["key"]
    return token, key


if __name__ == "__main__":
    sys.exit(main())
