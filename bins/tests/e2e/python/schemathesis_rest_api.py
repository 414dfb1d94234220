"""schemathesis against our REST API: `st run --checks all` on /openapi.json.

schemathesis (PyPI, pinned in requirements.txt) reads the OpenAPI document mcp-server
serves, generates requests that the document calls valid (and invalid), sends them with
a valid access token, and checks every answer against the document: status codes,
content types, headers, response schemas, valid data accepted, invalid data refused,
no server errors, unsupported methods refused, and auth enforced (the same requests
without the token must be refused).

Env: E2E_MCP_URL, E2E_ACCESS_TOKEN (memories:read memories:write),
E2E_SCHEMATHESIS_MAX_EXAMPLES, E2E_SCHEMATHESIS_SEED, E2E_REPORT_DIR.
Prints one JSON object per line on stdout; exits non-zero on any failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def report(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"missing environment variable {name}")
    return value


def fetch_document(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200, f"GET {url}: {response.status}"
        return json.load(response)


def main() -> None:
    mcp_url = urlparse(env("E2E_MCP_URL"))
    base = f"{mcp_url.scheme}://{mcp_url.netloc}"
    schema_url = f"{base}/openapi.json"
    token = env("E2E_ACCESS_TOKEN")
    max_examples = env("E2E_SCHEMATHESIS_MAX_EXAMPLES")
    seed = env("E2E_SCHEMATHESIS_SEED")
    report_dir = Path(env("E2E_REPORT_DIR"))
    report_dir.mkdir(parents=True, exist_ok=True)

    document = fetch_document(schema_url)
    operations = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    ]
    assert operations, "the document has no operations"
    assert document["security"] == [{"oidc": ["openid", "email", "profile"]}], document["security"]
    report(verified="the OpenAPI document is served", operations=len(operations))

    st = Path(sys.executable).with_name("st")
    junit_report = report_dir / "schemathesis.xml"
    command = [
        str(st), "run", schema_url,
        "--checks", "all",
        "--max-examples", max_examples,
        "--seed", seed,
        "--workers", "1",
        "--request-timeout", "10",
        # Hypothesis' "too slow" health check measures how fast examples are generated on
        # this (shared, two-core) machine, not anything the API does; every API check runs.
        "--suppress-health-check", "too_slow",
        "--report", "junit",
        "--report-junit-path", str(junit_report),
        "--output-sanitize", "true",
        "--header", f"Authorization: Bearer {token}",
    ]
    # In the report folder: schemathesis keeps its cache (.schemathesis/) in the working one.
    finished = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=report_dir
    )
    output = finished.stdout + finished.stderr
    (report_dir / "schemathesis.log").write_text(output)
    summary = [line for line in output.splitlines() if "passed" in line or "failed" in line or "error" in line.lower()]
    if finished.returncode != 0:
        sys.stderr.write(output[-20000:])
        report(failed=f"schemathesis exited {finished.returncode}; see stderr and {report_dir / 'schemathesis.log'}")
        sys.exit(1)

    import xml.etree.ElementTree as ET

    suites = ET.parse(junit_report).getroot()
    cases = suites.findall(".//testcase")
    failures = [case.get("name") for case in cases if case.find("failure") is not None or case.find("error") is not None]
    assert not failures, f"failing operations: {failures}"
    tested = {case.get("name") for case in cases if case.find("skipped") is None}
    documented = {f"{method} {path}" for method, path in operations}
    assert documented <= tested, f"not tested: {sorted(documented - tested)}"
    assert "Stateful tests" in tested, f"no stateful tests ran: {sorted(tested)}"
    report(
        verified="schemathesis --checks all found no failures",
        operations_tested=len(documented & tested),
        stateful=True,
        max_examples=int(max_examples),
        seed=int(seed),
        summary=summary[-3:],
    )
    report(done=True)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001 - reported to the driver, then exit 1
        traceback.print_exc()
        report(failed=f"{type(error).__name__}: {error}")
        sys.exit(1)
