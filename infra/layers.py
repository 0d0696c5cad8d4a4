"""Build Rampart's Lambda dependency layers without Docker (``make layers``).

Each layer is ``pip install --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64
--python-version 3.12 --implementation cp --only-binary=:all: --target build/layers/<name>/python``
of one dependency group of ``pyproject.toml``, constrained by ``constraints.txt``:

- ``core``: the runtime group (``[project] dependencies``), attached to every function;
- ``chains``: the chain SDKs (``[project.optional-dependencies] chains``), only where a function
  lists it; distributions already in ``core`` (same version) are left out of it.

A build fails, and never falls back, when a pinned version has no wheel for the Lambda platform,
when a distribution is not pinned by ``constraints.txt`` or differs from its pin, and when a
twin-only, infra or dev package would enter a layer. A stamp (the fingerprint of everything that
decides the content) makes a repeat build a no-op; pip's wheel cache lives under ``build/``
(git-ignored) too. ``python -m infra.layers [--force] [core chains …]`` (default: the layers the
manifest's functions use).

The ``rampart`` layer (our own package) is not built here: the CDK app packages
``layers/core/rampart`` directly (see ``infra/stacks/compute.py``).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "layers"
PIP_CACHE = ROOT / "build" / "pip-cache"
PYPROJECT = ROOT / "pyproject.toml"
CONSTRAINTS = ROOT / "constraints.txt"

# The Lambda runtime the layers are built for (infra/stacks/compute.py uses the same).
PYTHON_VERSION = "3.12"
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
# Lambda's limit on a function's code plus all its layers, unzipped.
UNZIPPED_LIMIT_BYTES = 262_144_000
STAMP = ".rampart-layer.json"
# Bump when the build procedure itself changes, so old stamps stop matching.
BUILD_VERSION = 1


@dataclass(frozen=True)
class LayerSpec:
    name: str
    group: str | None  # optional-dependencies group; None: the runtime dependencies
    excludes: tuple[str, ...] = ()  # layers whose distributions this one leaves out
    description: str = ""


LAYERS: dict[str, LayerSpec] = {
    "core": LayerSpec("core", None, description="Rampart runtime dependencies (pyproject [project] dependencies)"),
    "chains": LayerSpec(
        "chains", "chains", ("core",), description="Chain SDKs (web3, stellar-sdk, substrate-interface)"
    ),
}


class LayerBuildError(RuntimeError):
    pass


def normalize(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise LayerBuildError(f"cannot parse requirement {requirement!r}")
    return normalize(match.group(1))


def _pyproject() -> dict[str, object]:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)


def _groups() -> dict[str | None, list[str]]:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    groups: dict[str | None, list[str]] = {None: list(project["dependencies"])}
    groups.update({name: list(reqs) for name, reqs in project.get("optional-dependencies", {}).items()})
    return groups


def requirements(layer: str) -> list[str]:
    """The requirement strings a layer installs (exact pins from pyproject.toml)."""
    return _groups()[LAYERS[layer].group]


def never_in_a_layer() -> frozenset[str]:
    """Distributions of the twin, infra and dev groups that no layer may contain (unless a layer
    group needs them itself)."""
    groups = _groups()
    layered = {_requirement_name(r) for spec in LAYERS.values() for r in groups.get(spec.group, [])}
    banned = {
        _requirement_name(r)
        for group, reqs in groups.items()
        if group not in {s.group for s in LAYERS.values()}
        for r in reqs
    }
    # typing stubs are inert at run time, and web3 requires types-requests to install
    banned = {name for name in banned if not name.startswith("types-")}
    return frozenset(banned - layered)


def pins() -> dict[str, str]:
    """Distribution → pinned version, from constraints.txt."""
    result: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise LayerBuildError(f"constraints.txt: {line!r} is not an exact pin")
        result[normalize(name)] = version.strip()
    return result


def layer_dir(layer: str) -> Path:
    """The layer's asset folder (its content is under ``python/``)."""
    return BUILD / layer


def fingerprint(layer: str) -> str:
    spec = LAYERS[layer]
    payload = {
        "build": BUILD_VERSION,
        "python": PYTHON_VERSION,
        "platforms": PLATFORMS,
        "requirements": requirements(layer),
        "constraints": CONSTRAINTS.read_text(),
        "excludes": {name: fingerprint(name) for name in spec.excludes},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def is_current(layer: str) -> bool:
    stamp = layer_dir(layer) / STAMP
    if not stamp.is_file():
        return False
    try:
        return bool(json.loads(stamp.read_text()).get("fingerprint") == fingerprint(layer))
    except (OSError, ValueError):
        return False


def installed(site: Path) -> dict[str, tuple[str, Path]]:
    """normalized name → (version, dist-info folder) of every distribution under ``site``."""
    found: dict[str, tuple[str, Path]] = {}
    for meta in site.glob("*.dist-info/METADATA"):
        name = version = ""
        for line in meta.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Name:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("Version:"):
                version = line.split(":", 1)[1].strip()
            elif not line:
                break
        found[normalize(name)] = (version, meta.parent)
    return found


def _remove_distribution(site: Path, dist_info: Path) -> None:
    """Delete every file a wheel installed (its RECORD), then empty folders it leaves."""
    record = dist_info / "RECORD"
    paths = [site / row.split(",", 1)[0] for row in record.read_text().splitlines() if row.strip()]
    parents: set[Path] = set()
    for path in paths:
        if path.is_file() or path.is_symlink():
            path.unlink()
            parents.add(path.parent)
    shutil.rmtree(dist_info, ignore_errors=True)
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        while parent != site and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


def _pip_install(target: Path, reqs: list[str]) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--only-binary=:all:",
        "--cache-dir",
        str(PIP_CACHE),
        "-c",
        str(CONSTRAINTS),
        *reqs,
    ]
    result = subprocess.run(command, check=False, capture_output=True, text=True)  # noqa: S603 - our own argv
    if result.returncode != 0:
        raise LayerBuildError(
            "pip could not install the layer from wheels for "
            f"{'/'.join(PLATFORMS)} cp{PYTHON_VERSION.replace('.', '')} (a pinned version without such a wheel "
            f"fails the build; there is no fallback):\n{result.stderr or result.stdout}"
        )


def check_layer(layer: str, site: Path) -> dict[str, str]:
    """Every distribution pinned and at its pin, nothing banned; returns name → version."""
    pinned = pins()
    banned = never_in_a_layer()
    found = installed(site)
    problems = []
    for name, (version, _) in sorted(found.items()):
        if name in banned:
            problems.append(f"{name} may never enter a Lambda layer")
        elif name not in pinned:
            problems.append(f"{name}=={version} is not pinned in constraints.txt")
        elif pinned[name] != version:
            problems.append(f"{name}=={version} differs from its pin {pinned[name]}")
    if problems:
        raise LayerBuildError(f"layer {layer}: " + "; ".join(problems))
    return {name: version for name, (version, _) in sorted(found.items())}


def build(layer: str, *, force: bool = False, log: bool = True) -> Path:
    """Build ``layer`` (and the layers it excludes) unless its stamp is current; returns its folder.
    Concurrent builds (parallel synths) wait for each other."""
    BUILD.mkdir(parents=True, exist_ok=True)
    with (BUILD / f".{layer}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(layer, force=force, log=log)


def _build_locked(layer: str, *, force: bool, log: bool) -> Path:
    spec = LAYERS[layer]
    for other in spec.excludes:
        build(other, force=force, log=log)
    final = layer_dir(layer)
    if not force and is_current(layer):
        return final
    if log:
        print(f"building layer {layer} for cp{PYTHON_VERSION} on {'/'.join(PLATFORMS)} …", file=sys.stderr)
    work = final.with_name(final.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    site = work / "python"
    site.mkdir(parents=True)
    _pip_install(site, requirements(layer))
    for other in spec.excludes:
        already = installed(layer_dir(other) / "python")
        for name, (version, dist_info) in installed(site).items():
            if name in already and already[name][0] == version:
                _remove_distribution(site, dist_info)
    for junk in [site / "bin", *site.rglob("__pycache__")]:
        shutil.rmtree(junk, ignore_errors=True)
    contents = check_layer(layer, site)
    (work / STAMP).write_text(
        json.dumps({"fingerprint": fingerprint(layer), "distributions": contents}, indent=2, sort_keys=True) + "\n"
    )
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    if log:
        print(
            f"layer {layer}: {len(contents)} distributions, {tree_size(final) / 1e6:.1f} MB unzipped", file=sys.stderr
        )
    return final


def tree_size(path: Path) -> int:
    """Bytes of every regular file under ``path`` (what Lambda counts, unzipped)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def used_layers() -> list[str]:
    """The dependency layers some manifest function uses, in LAYERS order."""
    from infra.manifest import FUNCTIONS

    used = {layer for fn in FUNCTIONS for layer in fn.layers}
    return [name for name in LAYERS if name in used]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.layers", description=__doc__.split("\n\n")[0])
    parser.add_argument("layers", nargs="*", help=f"any of {', '.join(LAYERS)}; default: the layers the manifest uses")
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamp is current")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.layers) - set(LAYERS))
    if unknown:
        parser.error(f"unknown layer(s) {', '.join(unknown)}; known: {', '.join(LAYERS)}")
    try:
        for layer in args.layers or used_layers():
            path = build(layer, force=args.force)
            print(f"{layer}: {path.relative_to(ROOT)} ({tree_size(path) / 1e6:.1f} MB unzipped)")
    except LayerBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
