"""The packaged code: each function's asset holds only its own folder, the rampart layer is laid
out for /opt/python, the dependency layers hold exactly the pinned runtime group (never a twin,
infra or dev package), and every function fits Lambda's 250 MB unzipped limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra import layers, manifest
from infra.stacks import readback
from infra.stacks.compute import handler_package
from tests.infra.conftest import Cloud

ROOT = Path(__file__).resolve().parents[2]


def _function(template: dict[str, Any], name: str) -> dict[str, Any]:
    logical_id = next(k for k, v in readback.function_names(template).items() if v == name)
    props: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return props


def _layer_dirs(cloud: Cloud, template: dict[str, Any], fn: dict[str, Any]) -> list[Path]:
    return [
        cloud.asset_dir(template["Resources"][layer["Ref"]]["Properties"]["Content"]["S3Key"]) for layer in fn["Layers"]
    ]


@pytest.mark.parametrize("spec", manifest.FUNCTIONS, ids=lambda f: f.name)
def test_function_fits_the_unzipped_limit(cloud: Cloud, dev_json: dict[str, Any], spec: manifest.Function) -> None:
    fn = _function(dev_json, spec.name)
    folders = [cloud.asset_dir(fn["Code"]["S3Key"]), *_layer_dirs(cloud, dev_json, fn)]
    total = sum(layers.tree_size(folder) for folder in folders)
    assert total < layers.UNZIPPED_LIMIT_BYTES, f"{spec.name}: {total / 1e6:.1f} MB unzipped"


@pytest.mark.parametrize("spec", manifest.FUNCTIONS, ids=lambda f: f.name)
def test_function_asset_holds_only_its_own_code(
    cloud: Cloud, dev_json: dict[str, Any], spec: manifest.Function
) -> None:
    folder = cloud.asset_dir(_function(dev_json, spec.name)["Code"]["S3Key"])
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert handler_package(spec.handler) == f"functions/{spec.name}"
    assert "functions/__init__.py" in files
    assert all(f == "functions/__init__.py" or f.startswith(f"functions/{spec.name}/") for f in files), files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    module = spec.handler.rsplit(".", 1)[0].replace(".", "/") + ".py"
    if not (ROOT / module).is_file():
        pytest.skip(f"{module} is not written yet")
    assert module in files


def test_rampart_layer_layout(cloud: Cloud, dev_json: dict[str, Any]) -> None:
    fn = _function(dev_json, "health")
    rampart = next(d for d in _layer_dirs(cloud, dev_json, fn) if (d / "python" / "rampart").is_dir())
    assert (rampart / "python" / "rampart" / "__init__.py").is_file()
    assert [p.name for p in rampart.iterdir()] == ["python"]
    assert not list(rampart.rglob("__pycache__"))
    assert not list(rampart.rglob("*.egg-info"))


def test_dependency_layer_is_the_pinned_runtime_group(cloud: Cloud, dev_json: dict[str, Any]) -> None:
    fn = _function(dev_json, "health")
    deps = next(d for d in _layer_dirs(cloud, dev_json, fn) if not (d / "python" / "rampart").is_dir())
    site = deps / "python"
    contents = layers.check_layer("core", site)  # pinned, at its pin, nothing banned
    for requirement in layers.requirements("core"):
        name, _, version = requirement.partition("==")
        assert contents[layers.normalize(name.split("[")[0])] == version
    assert not (set(contents) & layers.never_in_a_layer())
    assert list(site.glob("*aarch64*.so")) or list(site.rglob("*aarch64-linux-gnu.so")), "built for arm64"
    assert not list(site.rglob("*x86_64*.so")), "no x86_64 binaries"
    assert not (deps / layers.STAMP).exists(), "the build stamp is not shipped"


def test_banned_packages_are_the_twin_infra_and_dev_groups() -> None:
    banned = layers.never_in_a_layer()
    assert {"moto", "pgserver", "eth-tester", "py-evm", "pytest", "ruff", "mypy", "aws-cdk-lib", "cfn-lint"} <= banned
    runtime = {layers.normalize(r.split("==")[0].split("[")[0]) for r in layers.requirements("core")}
    assert not (banned & runtime)


def _fake_dist(site: Path, name: str, version: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")


@pytest.mark.parametrize(
    ("name", "version", "problem"),
    [
        ("moto", layers.pins()["moto"], "may never enter"),
        ("not-a-pinned-thing", "1.0", "is not pinned"),
        ("boto3", "0.0.1", "differs from its pin"),
    ],
)
def test_check_layer_refuses(tmp_path: Path, name: str, version: str, problem: str) -> None:
    _fake_dist(tmp_path, "pydantic", layers.pins()["pydantic"])
    _fake_dist(tmp_path, name, version)
    with pytest.raises(layers.LayerBuildError, match=problem):
        layers.check_layer("core", tmp_path)
