"""The dependency rules of ARCHITECTURE.md's Layout, read from the source with ``ast``.

Every module under ``layers/core/rampart`` and ``functions`` is parsed, and every import it makes
(at the top, inside a function, under ``TYPE_CHECKING``: all of them) is checked against the rules:

- ``functions`` → ``rampart.api``, ``rampart.wiring``, domain packages, ``rampart.core``; never an
  adapter (the wiring picks adapters), never another function, never a database or AWS SDK;
- ``rampart.api`` → ``rampart.core`` and the models and errors of domains;
- a domain (``rampart.ledger``, ``rampart.auth``, …) → ``rampart.core`` and itself (plus the
  domains listed for it in ``DOMAIN_USES``);
- ``rampart.adapters`` → ``rampart.core``, other adapters, and the ports, models and errors of
  domains; never a service, never ``rampart.api`` or ``rampart.wiring``;
- ``rampart.wiring`` → anything under ``rampart`` but ``functions``;
- ``rampart.core`` → nothing of ``rampart`` outside ``core``;
- nothing under ``rampart`` imports ``infra`` or ``functions``;
- core, api and domains never import a driver or an SDK (``SDKS``); the heavy chain SDKs
  (``CHAIN_SDKS``) are imported only under ``rampart/adapters/chains``.

A violation is reported as ``path:line: module imports target (rule)``. ``KNOWN`` lists the
violations still being worked on, each with why; an entry that no longer occurs fails the test
too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "core" / "rampart"
FUNCTIONS = ROOT / "functions"

INFRASTRUCTURE = {"core", "api", "adapters", "wiring"}  # every other rampart.<x> is a domain
# Domains that may use another domain (ARCHITECTURE.md: ramps → ledger, journal).
DOMAIN_USES: dict[str, set[str]] = {"ramps": {"ledger", "journal"}}
# What of a domain the outer rings may see.
API_SEES = {"models", "errors"}
# rampart.ramps.chains and rampart.ramps.rails are ports too (protocols + value types + errors).
# rampart.rails.events: the providers' event types and their parser (value types, no I/O).
ADAPTERS_SEE = {"ports", "models", "errors", "chains", "rails", "events"}

CHAIN_SDKS = {"web3", "stellar_sdk", "substrateinterface", "eth_account", "scalecodec"}
SDKS = {"boto3", "botocore", "psycopg", "psycopg_pool"} | CHAIN_SDKS

# (path relative to the repository, imported module) → why it is still there. Remove an entry
# when its import is gone: a stale entry fails test_known_violations_still_exist.
KNOWN: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository
    line: int
    module: str  # the importing module, dotted
    target: str  # the imported module (or module.name for ``from module import name``)


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent if path.is_relative_to(PACKAGE) else ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> Iterator[Path]:
    for folder in (PACKAGE, FUNCTIONS):
        yield from sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def imports_of(path: Path) -> Iterator[Import]:
    yield from imports_in(path.read_text(), str(path.relative_to(ROOT)), module_name(path), path.name == "__init__.py")


def imports_in(text: str, relative_path: str, module: str, is_package: bool) -> Iterator[Import]:
    tree = ast.parse(text, filename=relative_path)
    for node in ast.walk(tree):  # every import, also those inside functions
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(relative_path, node.lineno, module, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                yield Import(relative_path, node.lineno, module, f"{base}.{alias.name}" if alias.name != "*" else base)


def _rampart_part(dotted: str) -> tuple[str, str] | None:
    """``rampart.<top>.<sub>…`` → (top, sub); None outside rampart."""
    parts = dotted.split(".")
    if parts[0] != "rampart":
        return None
    return (parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else "")


def rule_broken(imp: Import) -> str | None:
    """Which rule this import breaks, or None."""
    source, target = imp.module, imp.target
    root = target.split(".")[0]
    where = _rampart_part(source)
    into = _rampart_part(target)

    if source.startswith("functions."):
        if root in SDKS:
            return "a function reaches drivers and SDKs through adapters, chosen by rampart.wiring"
        own = ".".join(source.split(".")[:2])
        if root == "functions" and not target.startswith(own + ".") and target != own:
            return "a function never imports another function"
        if root == "infra":
            return "a function never imports infra"
        if into is not None and into[0] == "adapters":
            return "functions → api, wiring, domains, core: never an adapter (rampart.wiring picks them)"
        return None

    assert where is not None, source
    layer = where[0]
    if root in ("infra", "functions"):
        return f"nothing under rampart imports {root}"
    if root in CHAIN_SDKS and not source.startswith("rampart.adapters.chains"):
        return "heavy chain SDKs are imported only under rampart.adapters.chains"
    if root in SDKS and layer not in ("adapters", "wiring"):
        return f"rampart.{layer} never imports a driver or an SDK ({root}): that is an adapter's job"
    if into is None or into[0] == "":
        return None
    top, part = into
    if top == layer and layer not in INFRASTRUCTURE:
        return None  # a domain uses itself
    if layer == "core":
        return None if top == "core" else "rampart.core imports nothing of rampart outside core"
    if layer == "api":
        if top in ("core", "api"):
            return None
        if top not in INFRASTRUCTURE and part in API_SEES:
            return None
        return "rampart.api → rampart.core and the models and errors of domains"
    if layer == "wiring":
        return None
    if layer == "adapters":
        if top in ("core", "adapters"):
            return None
        if top not in INFRASTRUCTURE and part in ADAPTERS_SEE:
            return None
        return "rampart.adapters → core and the ports, models and errors of domains (never a service, api or wiring)"
    # a domain
    if top == "core" or top in DOMAIN_USES.get(layer, set()):
        return None
    return f"the domain rampart.{layer} → rampart.core only (and itself)"


def violations() -> list[tuple[Import, str]]:
    found = []
    for path in sources():
        for imp in imports_of(path):
            broken = rule_broken(imp)
            if broken is not None:
                found.append((imp, broken))
    return found


def _report(found: list[tuple[Import, str]]) -> str:
    return "\n".join(f"{i.path}:{i.line}: {i.module} imports {i.target} ({why})" for i, why in found)


def test_every_import_follows_the_layout() -> None:
    found = [(i, why) for i, why in violations() if (i.path, i.target) not in KNOWN]
    assert not found, "imports against ARCHITECTURE.md's Layout:\n" + _report(found)


def test_known_violations_still_exist() -> None:
    present = {(i.path, i.target) for i, _ in violations()}
    stale = sorted(set(KNOWN) - present)
    assert not stale, f"fixed: remove these from KNOWN in tests/unit/test_layout.py: {stale}"


def test_the_checker_sees_every_kind_of_import() -> None:
    """Imports inside functions and under TYPE_CHECKING, relative ones, ``from package import module``."""
    text = (
        "from typing import TYPE_CHECKING\n"
        "from . import models\n"
        "from ..core.money import to_decimal\n"
        "if TYPE_CHECKING:\n"
        "    from rampart.adapters.postgres import db\n"
        "def f():\n"
        "    import boto3.session\n"
        "    from .service import Ledger\n"
    )
    found = [(i.line, i.target) for i in imports_in(text, "x.py", "rampart.ledger.ports", is_package=False)]
    assert sorted(found) == [
        (1, "typing.TYPE_CHECKING"),
        (2, "rampart.ledger.models"),
        (3, "rampart.core.money.to_decimal"),
        (5, "rampart.adapters.postgres.db"),
        (7, "boto3.session"),
        (8, "rampart.ledger.service.Ledger"),
    ]
    in_package = [
        i.target for i in imports_in("from .models import Transfer\n", "x", "rampart.ledger", is_package=True)
    ]
    assert in_package == ["rampart.ledger.models.Transfer"]


def test_the_rules() -> None:
    bad = [
        ("rampart.ledger.service", "rampart.adapters.postgres.db.get_database"),
        ("rampart.ledger.service", "psycopg"),
        ("rampart.core.money", "rampart.ledger.models.Transfer"),
        ("rampart.core.settings", "rampart.api.app"),
        ("rampart.api.app", "rampart.ledger.service.Ledger"),
        ("rampart.api.app", "rampart.wiring.ledger"),
        ("rampart.api.app", "boto3"),
        ("rampart.adapters.postgres.ledger_store", "rampart.ledger.service.refusal"),
        ("rampart.adapters.postgres.ledger_store", "rampart.wiring.ledger"),
        ("rampart.adapters.postgres.ledger_store", "rampart.api.problems"),
        ("rampart.adapters.aws.secrets", "web3"),
        ("rampart.wiring.ledger", "infra.local.postgres"),
        ("rampart.adapters.postgres.migrate", "infra.local.postgres"),
        ("functions.migrate.handler", "rampart.adapters.postgres.migrate.migrate"),
        ("functions.health.handler", "boto3"),
        ("functions.auth.handler", "functions.transfers.handler"),
        ("rampart.auth.service", "rampart.ledger.models.Account"),
    ]
    assert [(s, t) for s, t in bad if rule_broken(Import("x.py", 1, s, t)) is None] == []
    good = [
        ("functions.transfers.handler", "rampart.api.app.create_app"),
        ("functions.transfers.handler", "rampart.wiring.ledger"),
        ("functions.transfers.handler", "rampart.ledger.TransferInput"),
        ("functions.transfers.handler", "rampart.core.errors.NotFound"),
        ("functions.transfers.handler", "aws_lambda_powertools.event_handler.Response"),
        ("functions.transfers.handler", "functions.transfers.shapes"),
        ("rampart.api.schemas.ledger", "rampart.ledger.models.Transfer"),
        ("rampart.api.authorizer", "rampart.auth.errors.InvalidToken"),
        ("rampart.adapters.postgres.ledger_store", "rampart.ledger.models.Transfer"),
        ("rampart.adapters.postgres.ledger_store", "rampart.ledger.errors.refusal"),
        ("rampart.adapters.postgres.ledger_store", "psycopg"),
        ("rampart.adapters.postgres.db", "rampart.adapters.aws.secrets"),
        ("rampart.adapters.chains.evm", "web3"),
        ("rampart.wiring.ledger", "rampart.adapters.postgres.db.get_database"),
        ("rampart.ledger.service", "rampart.ledger.models.Transfer"),
        ("rampart.ledger.service", "rampart.core.money.to_units"),
        ("rampart.ramps.service", "rampart.ledger.Ledger"),
    ]
    assert [(s, t) for s, t in good if rule_broken(Import("x.py", 1, s, t)) is not None] == []
