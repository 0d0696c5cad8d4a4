"""cdk-nag acknowledgments, always on one named construct, never on a stack or stage.

cdk-nag 3 runs as a CDK policy-validation plugin; an acknowledgment is metadata on a construct
(``aws:cdk:acknowledged-rules``) and covers that construct's subtree only. Findings that carry a
detail (``AwsSolutions-IAM5[Resource::*]``) are acknowledged one detail at a time."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Stage, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept ``rule`` (``AwsSolutions-XX`` or ``AwsSolutions-XX[detail]``) on ``scope`` for ``reason``."""
    if isinstance(scope, Stack | Stage):
        raise ValueError(f"acknowledge {rule} on the resource that needs it, not on {scope.node.path or 'the app'}")
    if not reason.strip():
        raise ValueError(f"acknowledging {rule} needs a reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))
