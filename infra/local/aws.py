"""AWS for the local twin: moto in process, with every table, queue, secret, schedule rule and
state machine of the manifest created at start.

Three things matter beyond plain moto:

- Nothing may reach real AWS: the process gets fake credentials and region, profiles, endpoint
  overrides and config files are cut off before the first client is made.
- moto takes no lock around an operation. Every request into moto runs under one lock here, so a
  DynamoDB conditional write is atomic, as in AWS. Calls that wait inside moto are the
  exceptions: SQS long polls are turned into short polls retried outside the lock, and
  Step Functions calls that wait for an execution run unlocked (the execution itself calls moto).
- moto keeps no state across restarts; secret values the twin makes (the JWT signing keys, random
  keys) are persisted under the twin's state folder so that tokens and signed cursors survive a
  restart (PostgreSQL's data survives too).

Everything is created from a :class:`~infra.manifest.Manifest` (Rampart's ``MANIFEST`` unless a
test hands over its own): tables, queues each with its DLQ and redrive policy, a DLQ per
asynchronous function, secrets by their ``twin`` kind, schedule rules, state machines, and API
Gateway usage plans (each with the key its ``shared_key`` holds). The twin's gateway does not
throttle by those plans (moto does not either): they hold the keys, as API Gateway's do.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from infra.local.logs import get_logger
from infra.manifest import MANIFEST, Manifest, Secret, StateMachine, UsagePlan

if TYPE_CHECKING:
    from moto.core.config import DefaultConfig

REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = "rampart-local"
ROOT = Path(__file__).resolve().parents[2]
MOTO_CONFIG: dict[str, Any] = {"stepfunctions": {"execute_state_machine": True}}

log = get_logger("rampart.twin.aws")


# Names ----------------------------------------------------------------------------------------


def function_name(name: str) -> str:
    return f"{PREFIX}-{name}"


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name(name)}"


def table_name(name: str) -> str:
    return f"{PREFIX}-{name}"


def dlq_name(function: str) -> str:
    return f"{PREFIX}-{function}-dlq"


def queue_name(name: str) -> str:
    return f"{PREFIX}-{name}"


def rule_name(schedule: str) -> str:
    return f"{PREFIX}-{schedule}"


def state_machine_name(name: str) -> str:
    return f"{PREFIX}-{name}"


def queue_dlq_name(queue: str) -> str:
    """The DLQ of a manifest queue (the redrive policy moves a message there)."""
    return queue_name(f"{queue}-dlq")


def secret_name(name: str) -> str:
    return f"{PREFIX}/{name.replace('_', '-')}"


def usage_plan_name(name: str) -> str:
    """``partner_plan`` → ``rampart-local-partner-plan`` (the cloud's ``rampart-<stage>-partner-plan``)."""
    return f"{PREFIX}-{name.replace('_', '-')}"


# A process that cannot reach AWS --------------------------------------------------------------

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
_CUT = re.compile(
    r"^AWS_(PROFILE|DEFAULT_PROFILE|ENDPOINT_URL.*|CONTAINER_.*|WEB_IDENTITY_TOKEN_FILE|ROLE_ARN|ROLE_SESSION_NAME)$"
)


def isolate_environment() -> None:
    """Fake credentials and region; no profile, no endpoint override, no config file."""
    for key in [k for k in os.environ if _CUT.match(k)]:
        del os.environ[key]
    os.environ.update(FAKE_ENV)


# Serializing moto -----------------------------------------------------------------------------

MOTO_LOCK = threading.RLock()
# Operations that wait inside moto for something that itself calls moto: never under the lock.
_UNLOCKED_TARGETS = frozenset({"AWSStepFunctions.StartSyncExecution", "AWSStepFunctions.GetActivityTask"})
_POLL_INTERVAL = 0.05
_installed = False


def _header(request: Any, name: str) -> str:
    value = request.headers.get(name)
    if isinstance(value, bytes):
        return value.decode()
    return str(value or "")


def _body_bytes(request: Any) -> bytes:
    body = request.body
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    data = body.read()
    return data.encode() if isinstance(data, str) else bytes(data)


def _long_poll(original: Callable[[Any], Any], request: Any) -> Any:
    """SQS ReceiveMessage with a wait: short polls under the lock, sleeping outside it."""
    from botocore.awsrequest import AWSPreparedRequest

    try:
        params = json.loads(_body_bytes(request) or b"{}")
    except ValueError:
        with MOTO_LOCK:
            return original(request)
    wait = float(params.get("WaitTimeSeconds") or 0)
    params["WaitTimeSeconds"] = 0
    body = json.dumps(params).encode()
    headers = request.headers.copy()
    headers["Content-Length"] = str(len(body))
    short = AWSPreparedRequest(
        method=request.method, url=request.url, headers=headers, body=body, stream_output=request.stream_output
    )
    deadline = time.monotonic() + wait
    while True:
        with MOTO_LOCK:
            response = original(short)
        if response is None or time.monotonic() >= deadline:
            return response
        status, _, payload = response
        try:
            got = json.loads(payload or "{}").get("Messages") if status == 200 else True
        except ValueError:
            got = True
        if got:
            return response
        time.sleep(_POLL_INTERVAL)


def install_serializer() -> None:
    """Run every request into moto (botocore's ``before-send`` stub and the ``responses`` mock
    both go through ``process_request``) one at a time."""
    global _installed
    if _installed:
        return
    from moto.core.models import botocore_stubber

    original = botocore_stubber.process_request

    def serialized(request: Any) -> Any:
        target = _header(request, "X-Amz-Target")
        if target in _UNLOCKED_TARGETS:
            return original(request)
        if target == "AmazonSQS.ReceiveMessage":
            return _long_poll(original, request)
        with MOTO_LOCK:
            return original(request)

    setattr(botocore_stubber, "process_request", serialized)  # noqa: B010 - an instance attribute shadows the method
    _installed = True


# Botocore handlers for every session, present and future ---------------------------------------


def register_handler(event: str, handler: Callable[..., Any]) -> None:
    """Register ``handler`` on every botocore session created from now on (botocore's builtin
    handlers) and on boto3's default session if it already exists."""
    import boto3
    from botocore.handlers import BUILTIN_HANDLERS

    if (event, handler) not in BUILTIN_HANDLERS:
        BUILTIN_HANDLERS.append((event, handler))
    session = boto3.DEFAULT_SESSION
    if session is not None:
        session.events.unregister(event, handler)
        session.events.register(event, handler)


def unregister_handler(event: str, handler: Callable[..., Any]) -> None:
    import boto3
    from botocore.handlers import BUILTIN_HANDLERS

    while (event, handler) in BUILTIN_HANDLERS:
        BUILTIN_HANDLERS.remove((event, handler))
    session = boto3.DEFAULT_SESSION
    if session is not None:
        session.events.unregister(event, handler)


# JWT keys that survive restarts ---------------------------------------------------------------


def kept(path: Path, valid: Callable[[str], bool], make: Callable[[], str], what: str) -> str:
    """The text stored at ``path`` when ``valid``, else a new one from ``make``, written there
    atomically (0600): the twin's secrets survive restarts, as Secrets Manager's do."""
    if path.exists():
        stored = path.read_text().strip()
        if valid(stored):
            return stored
        log.warning(f"unreadable {what} file: generating a new one", extra={"path": str(path)})
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(value)
    temporary.chmod(0o600)
    os.replace(temporary, path)
    return value


def jwt_keys(path: Path) -> dict[str, Any]:
    """The JWT keys secret ``{"current": kid, "keys": {kid: secret}}``."""

    def valid(text: str) -> bool:
        try:
            stored = json.loads(text)
        except ValueError:
            return False
        return isinstance(stored, dict) and stored.get("current") in (stored.get("keys") or {})

    def make() -> str:
        kid = f"local-{secrets.token_hex(4)}"
        return json.dumps({"current": kid, "keys": {kid: secrets.token_urlsafe(48)}}, indent=2)

    keys: dict[str, Any] = json.loads(kept(path, valid, make, "JWT keys"))
    return keys


def random_key(path: Path) -> str:
    """32 random bytes, hex."""
    return kept(
        path, lambda text: re.fullmatch(r"[0-9a-f]{64}", text) is not None, lambda: secrets.token_hex(32), "key"
    )


# One secret or several (newest first, space-separated: rotate by putting a new one in front).
_WEBHOOK_SECRET = re.compile(r"^whsec_[A-Za-z0-9+/]+={0,2}( whsec_[A-Za-z0-9+/]+={0,2})*$")


def webhook_secret(path: Path) -> str:
    """A Standard Webhooks secret ``whsec_<base64 of 24 random bytes>``. The backend verifies
    with it; the world signs with it."""
    import base64

    def make() -> str:
        return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()

    return kept(path, lambda text: _WEBHOOK_SECRET.fullmatch(text) is not None, make, "webhook secret")


# The deployment -------------------------------------------------------------------------------


@dataclass
class Deployment:
    """What was created in moto: manifest names → physical names, URLs and ARNs."""

    tables: dict[str, str] = field(default_factory=dict)  # table → physical name
    queues: dict[str, str] = field(default_factory=dict)  # queue physical name → URL
    queue_urls: dict[str, str] = field(default_factory=dict)  # manifest queue → URL
    queue_dlqs: dict[str, str] = field(default_factory=dict)  # manifest queue → its DLQ's URL
    dlqs: dict[str, str] = field(default_factory=dict)  # asynchronous function → its DLQ URL
    secrets: dict[str, str] = field(default_factory=dict)  # secret → its ARN
    rules: dict[str, str] = field(default_factory=dict)  # schedule → rule ARN
    state_machines: dict[str, str] = field(default_factory=dict)  # state machine → ARN
    externals: dict[str, str] = field(default_factory=dict)  # External → its value (from the world)
    executions_dlq: str | None = None  # URL of the DLQ of failed executions (infra/local/executions.py)
    execution_rules: dict[str, str] = field(default_factory=dict)  # state machine → its executions rule ARN
    usage_plans: dict[str, str] = field(default_factory=dict)  # usage plan → its id (functions get its name)


class LocalAws:
    """moto started in process with the manifest's resources in it. ``queue_visibility_seconds``
    overrides every queue's visibility timeout (tests: a failed message comes back sooner)."""

    def __init__(
        self,
        *,
        state_dir: Path,
        admin_email: str,
        admin_password: str,
        manifest: Manifest = MANIFEST,
        queue_visibility_seconds: int | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.admin_email = admin_email
        self.admin_password = admin_password
        self.manifest = manifest
        self.queue_visibility_seconds = queue_visibility_seconds
        self.deployment = Deployment()
        self._mock: Any = None

    def start(self) -> Deployment:
        isolate_environment()
        from moto import mock_aws

        self._mock = mock_aws(config=cast("DefaultConfig", MOTO_CONFIG))
        self._mock.start()
        install_serializer()
        self._create()
        return self.deployment

    def stop(self) -> None:
        if self._mock is not None:
            self._mock.stop()
            self._mock = None

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=REGION)

    # -- resources -----------------------------------------------------------------------------

    def secret_value(self, secret: Secret) -> str:
        """What the twin puts in ``secret``, by its ``twin`` kind."""
        if secret.twin == "jwt_keys":
            return json.dumps(jwt_keys(self.state_dir / "jwt-keys.json"))
        if secret.twin == "admin":
            return json.dumps({"email": self.admin_email, "password": self.admin_password})
        if secret.twin == "random_key":
            return random_key(self.state_dir / f"{secret.name}.key")
        if secret.twin == "webhook_secret":
            return webhook_secret(self.state_dir / f"{secret.name}.whsec")
        if secret.twin == "world":
            return "unset: the twin's world writes it once it is up"
        raise ValueError(f"secret {secret.name}: the twin cannot make a {secret.twin!r} value")

    def put_world_secrets(self, values: dict[str, str]) -> None:
        """Write what the world made into the manifest's ``world`` secrets."""
        secretsmanager = self.client("secretsmanager")
        for secret in self.manifest.secrets:
            if secret.twin == "world" and secret.name in values:
                secretsmanager.put_secret_value(
                    SecretId=self.deployment.secrets[secret.name], SecretString=values[secret.name]
                )

    def _create(self) -> None:
        m = self.manifest
        dynamodb, sqs = self.client("dynamodb"), self.client("sqs")
        for table in m.tables:
            name = table_name(table.name)
            keys = [(table.partition_key, "HASH")] + ([(table.sort_key, "RANGE")] if table.sort_key else [])
            dynamodb.create_table(
                TableName=name,
                BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
                AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
            )
            if table.ttl_attribute:
                dynamodb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute}
                )
            self.deployment.tables[table.name] = name

        for queue in m.queues:
            dlq_url = self._queue(sqs, queue_dlq_name(queue.name), {})
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            visibility = self.queue_visibility_seconds or queue.visibility_timeout_seconds
            attributes = {
                "VisibilityTimeout": str(visibility),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receive_count)}
                ),
            }
            self.deployment.queue_urls[queue.name] = self._queue(sqs, queue_name(queue.name), attributes)
            self.deployment.queue_dlqs[queue.name] = dlq_url

        for fn in m.functions:
            if fn.asynchronous:
                self.deployment.dlqs[fn.name] = self._queue(sqs, dlq_name(fn.name), {})

        if m.secrets:
            secretsmanager = self.client("secretsmanager")
            for secret in m.secrets:
                created = secretsmanager.create_secret(
                    Name=secret_name(secret.name), SecretString=self.secret_value(secret)
                )
                self.deployment.secrets[secret.name] = created["ARN"]

        if m.schedules:
            events = self.client("events")
            for schedule in m.schedules:
                rule = events.put_rule(Name=rule_name(schedule.name), ScheduleExpression=schedule.rate, State="ENABLED")
                target: dict[str, Any] = {"Id": schedule.function, "Arn": function_arn(schedule.function)}
                events.put_targets(Rule=rule_name(schedule.name), Targets=[target])
                self.deployment.rules[schedule.name] = rule["RuleArn"]

        if m.state_machines:
            stepfunctions = self.client("stepfunctions")
            for machine in m.state_machines:
                created = stepfunctions.create_state_machine(
                    name=state_machine_name(machine.name),
                    definition=render_definition(machine, self.deployment.queues, manifest=m),
                    roleArn=f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-states",
                )
                self.deployment.state_machines[machine.name] = created["stateMachineArn"]
            # Executions that end failed, timed out or aborted reach a DLQ through a rule per
            # machine, as in the cloud; the twin publishes the events (infra/local/executions.py).
            from infra.local import executions

            dlq = self._queue(sqs, queue_name(executions.EXECUTIONS_DLQ), {})
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.deployment.executions_dlq = dlq
            self.deployment.execution_rules = executions.create_rules(
                self.client("events"), self.deployment.state_machines, dlq_arn
            )

        for plan in m.usage_plans:
            self._usage_plan(plan)

    def _usage_plan(self, plan: UsagePlan) -> None:
        """A usage plan as the CDK app makes it (no throttle: nothing here enforces one), and its
        one key when it names a ``shared_key`` (the secret's value, as CloudFormation resolves it)."""
        apigateway = self.client("apigateway")
        name = usage_plan_name(plan.name)
        created = apigateway.create_usage_plan(name=name, description=plan.description)
        self.deployment.usage_plans[plan.name] = created["id"]
        if plan.shared_key is not None:
            value = self.client("secretsmanager").get_secret_value(SecretId=self.deployment.secrets[plan.shared_key])
            key = apigateway.create_api_key(name=f"{name}-key", value=value["SecretString"], enabled=True)
            apigateway.create_usage_plan_key(usagePlanId=created["id"], keyId=key["id"], keyType="API_KEY")

    def _queue(self, sqs: Any, name: str, attributes: dict[str, str]) -> str:
        url = str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
        self.deployment.queues[name] = url
        return url


def render_definition(
    machine: StateMachine, queue_urls: dict[str, str], root: Path = ROOT, *, manifest: Manifest = MANIFEST
) -> str:
    """The ASL file with each ``${Placeholder}`` replaced by what the manifest binds it to: a
    function's ARN or a queue's URL (as the CDK app substitutes them); its Retry waits the twin's
    stage's (``RAMPART_STAGE``, ``local`` by default: infra/manifest.py ``RAMP_RETRIES``)."""
    from infra.asl import staged_text

    stage = os.environ.get("RAMPART_STAGE") or "local"
    text = staged_text((root / machine.definition).read_text(), machine.retry_policies(stage))
    functions = {fn.name for fn in manifest.functions}
    missing = sorted(set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text)) - set(machine.substitutions))
    if missing:
        raise ValueError(f"state machine {machine.name}: no substitution for {', '.join(missing)}")
    for placeholder, target in machine.substitutions.items():
        if target in functions:
            value = function_arn(target)
        elif queue_name(target) in queue_urls:
            value = queue_urls[queue_name(target)]
        else:
            raise ValueError(f"state machine {machine.name}: {placeholder} names {target}, no function or queue")
        text = text.replace("${" + placeholder + "}", value)
    return text
