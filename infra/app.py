"""The CDK app (``make synth``, or ``cdk synth``/``cdk deploy`` through cdk.json).

Synthesizes every stage (``rampart-dev``, ``rampart-staging``, ``rampart-prod``) into
``$CDK_OUTDIR`` (set by the cdk CLI) or ``cdk.out/``. ``RAMPART_STAGES=dev,prod`` limits the
stages. Builds the dependency layers first when ``make layers`` has not (pip, wheels only).
cdk-nag's AwsSolutions and Serverless packs run at synthesis: an unacknowledged finding fails it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def main() -> None:
    from infra.stacks import STAGES, build_app

    stages = [s.strip() for s in os.environ.get("RAMPART_STAGES", ",".join(STAGES)).split(",") if s.strip()]
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise SystemExit(f"unknown stage(s) {', '.join(sorted(unknown))}; known: {', '.join(STAGES)}")
    outdir = os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out")
    app, _ = build_app(stages, outdir=outdir)
    app.synth()


if __name__ == "__main__":
    main()
