"""The committed EVM artifacts are exactly what the pinned solc makes of the committed sources."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from rampart.adapters.chains.evm.abi import ARTIFACTS

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"


def test_recompiling_gives_byte_identical_artifacts(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the contracts cannot be recompiled here")
    assert (CONTRACTS / "node_modules" / "solc").exists(), "solc is missing: run `npm ci --prefix contracts`"
    subprocess.run(
        [node, str(CONTRACTS / "compile.mjs"), "--out", str(tmp_path)], check=True, capture_output=True, timeout=300
    )
    made = sorted(p.name for p in tmp_path.glob("*.json"))
    assert made == sorted(p.name for p in ARTIFACTS.glob("*.json")) == ["Pool.json", "Sweeper.json", "Token.json"]
    for name in made:
        assert (tmp_path / name).read_bytes() == (ARTIFACTS / name).read_bytes(), (
            f"{name} differs: run `make contracts`"
        )


def test_the_compiler_is_pinned_and_targets_the_testers_fork() -> None:
    package = json.loads((CONTRACTS / "package.json").read_text())
    lock = json.loads((CONTRACTS / "package-lock.json").read_text())
    pinned = package["devDependencies"]["solc"]
    assert pinned[0].isdigit(), "solc must be pinned to an exact version"
    assert lock["packages"]["node_modules/solc"]["version"] == pinned
    from eth.vm.forks import PragueVM
    from eth_tester.backends.pyevm.main import PyEVMBackend

    assert isinstance(PyEVMBackend().chain.get_vm(), PragueVM)
    for path in ARTIFACTS.glob("*.json"):
        compiler = json.loads(path.read_text())["compiler"]
        assert compiler["version"].startswith(pinned + "+")
        assert compiler["settings"]["evmVersion"] == "prague"
