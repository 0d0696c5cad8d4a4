// Compile the Solidity sources with the pinned solc (package-lock.json) and write one artifact per
// deployable contract: layers/core/rampart/adapters/chains/evm/artifacts/<Name>.json, with sorted
// keys, so that the same sources always give byte-identical files (a test checks it).
//
//   node contracts/compile.mjs [--out DIR]
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = dirname(fileURLToPath(import.meta.url));
const SOURCES = ["IERC20.sol", "Token.sol", "Pool.sol", "Sweeper.sol"];
const CONTRACTS = ["Token", "Pool", "Sweeper"]; // what gets an artifact (IERC20 is only an interface)
// py-evm 0.12 / eth-tester 0.13's default fork is Prague: compile for exactly that.
const SETTINGS = {
  evmVersion: "prague",
  optimizer: { enabled: true, runs: 200 },
  metadata: { bytecodeHash: "none" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

const outFlag = process.argv.indexOf("--out");
const out = outFlag > 0 ? resolve(process.argv[outFlag + 1]) : join(here, "..", "layers", "core", "rampart", "adapters", "chains", "evm", "artifacts");

const input = {
  language: "Solidity",
  sources: Object.fromEntries(SOURCES.map((file) => [file, { content: readFileSync(join(here, file), "utf8") }])),
  settings: SETTINGS,
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

function sorted(value) {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted(value[k])]));
  }
  return value;
}

mkdirSync(out, { recursive: true });
for (const name of CONTRACTS) {
  const compiled = output.contracts[`${name}.sol`][name];
  const artifact = {
    contractName: name,
    source: `contracts/${name}.sol`,
    compiler: { name: "solc", version: solc.version(), settings: { evmVersion: SETTINGS.evmVersion, optimizer: SETTINGS.optimizer, metadata: SETTINGS.metadata } },
    abi: compiled.abi,
    bytecode: "0x" + compiled.evm.bytecode.object,
    deployedBytecode: "0x" + compiled.evm.deployedBytecode.object,
  };
  writeFileSync(join(out, `${name}.json`), JSON.stringify(sorted(artifact), null, 2) + "\n");
  console.log(`${name}: ${(compiled.evm.deployedBytecode.object.length / 2) | 0} bytes -> ${join(out, name + ".json")}`);
}
