"""The manifest agrees with itself and with the code it names: every handler imports; each API
function's Powertools resolver serves exactly the manifest's routes for it; the routes its
``lambda_entry`` treats as idempotent are exactly the manifest's idempotent ones."""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import Any

import pytest

from infra import manifest

API_FUNCTIONS = [fn for fn in manifest.FUNCTIONS if fn.kind == "api"]


def module_of(fn: manifest.Function) -> tuple[ModuleType, str]:
    module_name, _, attribute = fn.handler.rpartition(".")
    return importlib.import_module(module_name), attribute


def api_path(rule: str) -> str:
    """Powertools' ``/v1/things/<id>`` → API Gateway's ``/v1/things/{id}``."""
    return re.sub(r"<(\w+)>", r"{\1}", rule)


def served_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route the resolver dispatches: Powertools' route registry
    (static and dynamic routes; the pinned aws-lambda-powertools keeps them there)."""
    routes = [*app._static_routes, *app._dynamic_routes]
    assert routes, "no routes registered"
    return {(route.method.upper(), api_path(route.path)) for route in routes}


def documented_routes(app: Any) -> set[tuple[str, str]]:
    """The same, as the resolver documents them (its OpenAPI paths)."""
    schema = app.get_openapi_schema()
    found = set()
    for path, item in (schema.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch", "head", "options"):
            if getattr(item, method, None) is not None:
                found.add((method.upper(), path))
    return found


def manifest_routes(fn: manifest.Function, *, idempotent_only: bool = False) -> set[tuple[str, str]]:
    return {(r.method, r.path) for r in fn.routes if r.idempotent or not idempotent_only}


def test_the_manifest_is_consistent() -> None:
    manifest.check()


def test_route_paths_are_api_gateway_style() -> None:
    for route, fn in manifest.routes():
        assert re.fullmatch(r"(/([\w.-]+|\{\w+\}))+", route.path), (fn.name, route.path)  # no <id>, no trailing /


@pytest.mark.parametrize("fn", manifest.FUNCTIONS, ids=lambda fn: fn.name)
def test_every_handler_imports_and_is_callable(fn: manifest.Function) -> None:
    assert fn.handler.startswith(f"functions.{fn.name}."), f"{fn.name} lives in functions/{fn.name}/"
    module, attribute = module_of(fn)
    assert attribute == "handler"
    assert callable(getattr(module, "handler", None)), f"{fn.handler} is not a callable"


@pytest.mark.parametrize("fn", API_FUNCTIONS, ids=lambda fn: fn.name)
def test_each_api_function_serves_exactly_its_manifest_routes(fn: manifest.Function) -> None:
    module, _ = module_of(fn)
    app = getattr(module, "app", None)
    assert app is not None, f"{fn.name} exposes no resolver `app`"
    expected = manifest_routes(fn)
    served = served_routes(app)
    assert served == expected, {"served, not in the manifest": served - expected, "not served": expected - served}
    assert documented_routes(app) == expected


@pytest.mark.parametrize("fn", API_FUNCTIONS, ids=lambda fn: fn.name)
def test_each_api_functions_idempotent_routes_are_the_manifests(fn: manifest.Function) -> None:
    module, _ = module_of(fn)
    declared = getattr(module.handler, "idempotent_routes", None)
    assert declared is not None, f"{fn.name}'s handler does not come from rampart.api.app.lambda_entry"
    expected = {f"{method} {path}" for method, path in manifest_routes(fn, idempotent_only=True)}
    assert set(declared) == expected


def test_non_api_functions_serve_no_routes() -> None:
    for fn in manifest.FUNCTIONS:
        if fn.kind != "api":
            assert not fn.routes, fn.name


def test_idempotent_routes_exist_and_are_readable_back() -> None:
    """Not trivially empty: the money-moving routes are all marked, nothing else is."""
    marked = {(r.method, r.path) for r, _ in manifest.routes() if r.idempotent}
    assert ("POST", "/v1/transfers") in marked
    assert ("POST", "/v1/admin/deposits") in marked
    assert all(method == "POST" for method, _ in marked)
