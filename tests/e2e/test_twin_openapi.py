"""The OpenAPI document: served by the twin, merged from every API function, committed as
``openapi.json`` (``make openapi``), in agreement with the manifest and with API.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from infra import manifest
from infra.local import openapi
from tests.e2e.api import Client

ROOT = Path(__file__).resolve().parents[2]
# API.md sections whose endpoints must be in the document (later issues add theirs).
API_MD_SECTIONS = ("Platform", "Ledger")
NOT_IN_OPENAPI = {("GET", "/openapi.json"), ("GET", "/docs")}  # served by the gateway itself


def api_md() -> str:
    for candidate in (ROOT / "docs" / "API.md", ROOT.parent / "shared" / "API.md"):
        if candidate.exists():
            return candidate.read_text()
    pytest.skip("API.md not found (docs/API.md or ../shared/API.md)")


def api_md_endpoints(text: str, sections: tuple[str, ...] = API_MD_SECTIONS) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for section in sections:
        body = re.search(rf"^## {re.escape(section)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
        assert body, f"API.md has no section {section}"
        for method, path in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^\s`]*)`", body.group(1)):
            found.add((method, path.split("?")[0]))  # `GET /v1/transfers?account_id=`
    return found - NOT_IN_OPENAPI


def committed() -> dict[str, Any]:
    path = ROOT / "openapi.json"
    assert path.exists(), "openapi.json is missing: run `make openapi`"
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m.upper(), p): op for p, item in document["paths"].items() for m, op in item.items()}


def test_served_document_is_valid_openapi_with_every_manifest_route(client: Client) -> None:
    import schemathesis

    reply = client.get("/openapi.json")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    document = reply.body
    assert document["openapi"].startswith("3.1")
    assert "x-rampart-missing" not in document, document["x-rampart-missing"]
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()
    ops = operations(document)
    for route, _ in manifest.routes():
        operation = ops[(route.method, route.path)]
        if route.auth:
            assert operation["security"] == [{"bearer": []}, {"apiKey": []}]
        else:
            assert operation["security"] == []
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert ("Idempotency-Key" in headers) == route.idempotent, route
        assert operation["responses"]["422"]["content"]["application/problem+json"]["schema"] == openapi.PROBLEM_REF
    assert set(ops) == {(r.method, r.path) for r, _ in manifest.routes()}
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}


def test_committed_openapi_json_is_current() -> None:
    """``make openapi --check``, in a fresh interpreter (function modules are not imported here)."""
    done = subprocess.run(
        [sys.executable, "-m", "infra.local.openapi", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr + done.stdout


def test_the_twin_serves_the_committed_document(client: Client) -> None:
    assert client.get("/openapi.json").body == committed()


def test_every_operation_has_a_declared_tag_and_a_one_line_summary() -> None:
    """What a reader of /docs expects: the operations grouped under the document's tags (each with
    a description, none empty), every operation with a summary of its own."""
    document = committed()
    declared = [tag["name"] for tag in document["tags"]]
    assert declared == [tag["name"] for tag in openapi.TAGS]
    assert all(tag["description"] for tag in document["tags"])
    used = set()
    for (method, path), operation in operations(document).items():
        assert len(operation.get("tags", [])) == 1, (method, path)
        assert operation["tags"][0] in declared, (method, path)
        summary = operation.get("summary", "")
        assert summary, (method, path)
        assert "\n" not in summary, (method, path)
        assert summary != f"{method} {path}", (method, path)  # Powertools' default: no summary given
        used.add(operation["tags"][0])
    assert used == set(declared), "a declared tag without operations"


def test_every_endpoint_of_api_md_is_in_the_document() -> None:
    expected = api_md_endpoints(api_md())
    assert ("POST", "/v1/transfers") in expected  # the parser found the tables
    missing = expected - set(operations(committed()))
    assert not missing, f"in API.md but not in openapi.json: {sorted(missing)}"


def test_api_md_parser_reads_combined_rows() -> None:
    text = (
        "## Ledger\n| `GET /v1/accounts` · `GET /v1/accounts/{id}` | x |\n| `GET /v1/t?account_id=` |\n"
        "## Other\n| `GET /v1/x` |"
    )
    assert api_md_endpoints(text, ("Ledger",)) == {
        ("GET", "/v1/accounts"),
        ("GET", "/v1/accounts/{id}"),
        ("GET", "/v1/t"),
    }


def test_docs_serve_swagger_ui_offline(client: Client, twin_url: str) -> None:
    page = client.get("/docs", headers={"Accept": "text/html"})
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in page.body
    assert "/openapi.json" in page.body
    for asset in re.findall(r'(?:src|href)="(/docs/[^"]+)"', page.body):
        reply = requests.get(twin_url + asset, timeout=10)
        assert reply.status_code == 200, asset
        assert reply.content
    bundle = client.get("/docs/swagger-ui-bundle.js").body
    # Swagger UI 5 (not 4.x, which refuses OpenAPI 3.1 documents)
    assert "OpenAPI 3.1" in bundle or "isOAS31" in bundle
    assert client.get("/docs/../openapi.py").status == 404
