"""One OpenAPI document for the whole API, merged from every API function's resolver.

Each function module ``functions/<name>/handler.py`` exposes ``app`` (a Powertools
``APIGatewayRestResolver``); :func:`merged_openapi` takes ``app.get_openapi_schema()`` from each
API function of the manifest and merges paths and components. From the manifest it adds what the
resolvers do not know: security (bearer or ``X-Api-Key`` on ``auth`` routes, none on public
ones), the required ``Idempotency-Key`` header on money-moving POSTs, allowed roles, and the
problem+json error replies of API.md (replacing Powertools' own 422 schema, which we never send).

``python -m infra.local.openapi [--check] [PATH]`` writes (or checks) the committed
``openapi.json`` (``make openapi``). The twin serves the same document at ``/openapi.json``.
"""

from __future__ import annotations

import copy
import importlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from infra import manifest

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "openapi.json"
TITLE = "Rampart API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Rampart's HTTP API (API.md is the contract). Amounts are decimal strings; errors are application/problem+json."
)

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "an access token"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key", "description": "a partner API key"},
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details (API.md, Conventions)",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "examples": ["/problems/validation-error"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": ["string", "null"]},
        "correlation_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_PROBLEM_TEXT = {
    "400": "Malformed request, or a missing Idempotency-Key",
    "401": "Missing, expired or forged credentials",
    "403": "The credentials do not allow this",
    "404": "Not found (also another principal's resource)",
    "409": "Conflict (state, reference, or an Idempotency-Key still in progress)",
    "413": "The body is too large",
    "415": "The body is not application/json",
    "422": "Validation or business rule failed",
    "429": "Too many requests",
    "500": "Internal error",
}
IDEMPOTENCY_HEADER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "Makes this money-moving request safe to retry (API.md, Idempotency)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
_POWERTOOLS_ERRORS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
# The groups of /docs, in reading order: every operation carries one of these (``tags=`` on its
# route decorator) and a one-line ``summary=``; ``make openapi`` refuses an operation without.
TAGS: list[dict[str, str]] = [
    {"name": "auth", "description": "Register, log in, refresh and revoke tokens; who is calling"},
    {"name": "accounts", "description": "Ledger accounts: open one, read its balance, list its entries"},
    {"name": "transfers", "description": "Move money: transfers, holds (post or void) and atomic batches"},
    {
        "name": "ramps",
        "description": "Fiat ↔ token: corridors, quotes, register a ramp, sign its blueprints, start, cancel, read",
    },
    {
        "name": "admin",
        "description": "Admin only: partners with their API keys, deposits from the world account, every ramp",
    },
    {"name": "platform", "description": "The service itself: health checks"},
]


class MissingFunction(RuntimeError):
    """A manifest function whose handler module cannot be imported."""


def api_functions() -> list[manifest.Function]:
    return [fn for fn in manifest.FUNCTIONS if fn.kind == "api" and fn.routes]


def function_schema(fn: manifest.Function) -> dict[str, Any]:
    """The OpenAPI document of one function's resolver, as plain JSON data."""
    module_name = fn.handler.rpartition(".")[0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise MissingFunction(f"{fn.name}: {module_name} does not exist") from exc
        raise
    document: dict[str, Any] = json.loads(module.app.get_openapi_json_schema(title=TITLE, version=VERSION))
    return document


def _problem_responses(route: manifest.Route) -> dict[str, Any]:
    codes = ["400", "404", "422", "429", "500"]
    if route.auth:
        codes += ["401", "403"]
    if route.method in ("POST", "PUT", "PATCH"):
        codes += ["409", "413", "415"]
    return {
        code: {"description": _PROBLEM_TEXT[code], "content": {"application/problem+json": {"schema": PROBLEM_REF}}}
        for code in sorted(codes)
    }


def _decorate(operation: dict[str, Any], route: manifest.Route) -> None:
    operation["security"] = [{"bearer": []}, {"apiKey": []}] if route.auth else []
    if route.idempotent:
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("in") == "header" and p.get("name", "").lower() == "idempotency-key" for p in parameters):
            parameters.append(copy.deepcopy(IDEMPOTENCY_HEADER))
    if route.roles:
        operation["x-rampart-roles"] = list(route.roles)
        note = f"Roles: {', '.join(route.roles)}."
        operation["description"] = f"{operation['description']}\n\n{note}" if operation.get("description") else note
    responses = operation.setdefault("responses", {})
    for code, reply in _problem_responses(route).items():
        if code == "422" or code not in responses:
            responses[code] = reply
    operation["responses"] = dict(sorted(responses.items()))


def _check_grouped(function: str, method: str, path: str, operation: dict[str, Any]) -> None:
    """A reader of /docs finds every operation under one declared tag, with a summary."""
    where = f"{function}: {method.upper()} {path}"
    tags = operation.get("tags") or []
    known = [tag["name"] for tag in TAGS]
    if len(tags) != 1 or tags[0] not in known:
        raise ValueError(f"{where} needs tags=[one of {', '.join(known)}] on its route (it has {tags})")
    summary = operation.get("summary", "")
    if not summary or summary == f"{method.upper()} {path}" or "\n" in summary:
        raise ValueError(f"{where} needs a one-line summary= on its route")


def merged_openapi(functions: Iterable[manifest.Function] | None = None, *, strict: bool = True) -> dict[str, Any]:
    """The merged document. ``strict=False`` leaves out functions that fail to import (listed
    under ``x-rampart-missing``) instead of raising."""
    chosen = list(functions) if functions is not None else api_functions()
    routes = {(r.method.lower(), r.path): r for fn in chosen for r in fn.routes}
    order: dict[str, int] = {}
    for declared in routes.values():
        order.setdefault(declared.path, len(order))
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    owners: dict[str, str] = {}
    missing: list[str] = []
    for fn in chosen:
        try:
            document = function_schema(fn)
        except Exception:
            if strict:
                raise
            missing.append(fn.name)  # the twin serves what it can and logs the rest
            continue
        for path, item in document.get("paths", {}).items():
            for method, operation in item.items():
                route = routes.get((method, path))
                if route is None:
                    raise ValueError(f"{fn.name} serves {method.upper()} {path}, which the manifest does not route")
                if method in paths.get(path, {}):
                    raise ValueError(f"{method.upper()} {path} is served by two functions")
                if strict:
                    _check_grouped(fn.name, method, path, operation)
                _decorate(operation, route)
                paths.setdefault(path, {})[method] = operation
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"schema {name} differs between {owners[name]} and {fn.name}: rename one")
            schemas.setdefault(name, schema)
            owners.setdefault(name, fn.name)
    text = json.dumps(paths)
    for name in _POWERTOOLS_ERRORS:
        if f'"#/components/schemas/{name}"' not in text:
            schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    ops = [(m, p) for p, item in paths.items() for m, op in item.items()]
    ids = [paths[p][m].get("operationId") for m, p in ops]
    duplicated = {i for i in ids if i and ids.count(i) > 1}
    if duplicated:
        raise ValueError(f"operationId used twice: {', '.join(sorted(duplicated))}")
    document = {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "tags": copy.deepcopy(TAGS),
        "paths": {
            p: dict(sorted(paths[p].items())) for p in sorted(paths, key=lambda p: (order.get(p, len(order)), p))
        },
        "components": {"schemas": dict(sorted(schemas.items())), "securitySchemes": SECURITY_SCHEMES},
    }
    if missing:
        document["x-rampart-missing"] = missing
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# Swagger UI, offline --------------------------------------------------------------------------

DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Rampart API (local twin)</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  </script>
</body>
</html>
"""
DOCS_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "application/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}


def swagger_ui_dir() -> Path | None:
    """Swagger UI's dist folder, from the ``swagger-ui-py`` package (Swagger UI 5, which renders
    OpenAPI 3.1; ``swagger-ui-bundle`` ships 4.x, which cannot)."""
    try:
        import swagger_ui  # type: ignore[import-untyped]
    except ImportError:
        return None
    folder = Path(swagger_ui.__file__).parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").exists() else None


# make openapi ---------------------------------------------------------------------------------


def placeholder_environment() -> None:
    """Values for the variables a function may validate at import, so that generating the
    document needs neither a database nor AWS."""
    import os

    from infra.local.aws import Deployment, isolate_environment
    from infra.local.lambdas import function_environment

    isolate_environment()
    fake = Deployment(
        tables={t.name: f"rampart-openapi-{t.name}" for t in manifest.TABLES},
        secrets={
            s.name: f"arn:aws:secretsmanager:us-east-1:123456789012:secret:rampart-openapi-{s.name}"
            for s in manifest.SECRETS
        },
        queue_urls={
            q.name: f"https://sqs.us-east-1.amazonaws.com/123456789012/rampart-openapi-{q.name}"
            for q in manifest.QUEUES
        },
        state_machines={
            m.name: f"arn:aws:states:us-east-1:123456789012:stateMachine:rampart-openapi-{m.name}"
            for m in manifest.STATE_MACHINES
        },
    )
    for key, value in function_environment(fake, "postgresql://openapi@127.0.0.1:9/openapi").items():
        os.environ.setdefault(key, value)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    target = Path(args[0]) if args else COMMITTED
    placeholder_environment()
    text = render(merged_openapi())
    if check:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is stale: run `make openapi`", file=sys.stderr)
            return 1
        print(f"{target} is current")
        return 0
    target.write_text(text)
    print(f"wrote {target} ({len(json.loads(text)['paths'])} paths)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
