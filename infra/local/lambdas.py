"""Lambda in process: the manifest's functions, invoked the way the Lambda service invokes them.

- A function runs in *containers*. Like a Lambda execution environment, a container handles one
  invocation at a time and keeps its module state between invocations. The first container uses
  the handler module as imported normally; each further one executes a fresh copy of that module
  (``functions.x.handler__container2`` …). That matters: a Powertools resolver keeps the current
  event on the ``app`` object, so two requests must never share one ``app`` at the same time.
  Library code (``rampart``, Powertools, sibling modules) is shared by all containers.
- Each invocation gets a fake ``LambdaContext`` (name, memory, ARN, request id, remaining time
  from the manifest's timeout). A run past the timeout is logged (it would have been killed).
- Environment: functions share one process, so the twin sets the *union* of every function's
  environment once (what each function ``uses`` and its ``env``, and ``RAMPART_USES`` naming
  every resource used by any); two functions asking for different values of one variable is an
  error at start.
- Database roles: each invocation connects as its function's ``db_role`` (the manifest's; the
  cloud gives each function its own login through the proxy), through
  ``rampart.adapters.postgres.db.acting_as``: the one ``DATABASE_URL`` with that role as its
  user. The owner role (``migrate``) connects as the URL's own user.
- ``LambdaBridge`` answers botocore ``lambda:Invoke`` calls (Step Functions tasks run by moto,
  or our own code) on the ``before-call.lambda.Invoke`` event by running the handler here.
- Asynchronous invocations (schedules, ``InvocationType=Event``) run on a thread pool; a failure
  is logged and sent to the function's DLQ (no retries: the Lambda service would retry twice).
- Powertools' resolvers keep the current event and Lambda context in *class* attributes
  (``BaseRouter.current_event``), shared by every resolver of the process: harmless in Lambda (one
  request per process), a cross-request leak here (one request reading another's principal).
  :func:`isolate_powertools_state` makes both per thread; an invocation runs on one thread.
  Still shared between concurrent containers (cosmetic): Powertools Logger keys of one service
  (a log line may carry a neighbour's correlation id) and the Metrics set.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import ModuleType
from typing import Any
from urllib.parse import unquote

from infra import manifest
from infra.local import aws
from infra.local.logs import get_logger

log = get_logger("rampart.twin.lambda")

DEFAULT_MAX_CONTAINERS = 16

# What a resource of the manifest puts in a function's environment.
# Set for every function (the twin's values; the CDK app sets its own).
COMMON_ENV: dict[str, str] = {
    "POWERTOOLS_SERVICE_NAME": "rampart",  # each function's Logger/Tracer/Metrics name their service
    "POWERTOOLS_METRICS_NAMESPACE": "Rampart",
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
    "RAMPART_STAGE": "local",
}


def resource_value(resource: manifest.Resource, deployment: aws.Deployment, database_url: str) -> str:
    """What the twin gives a function for ``resource``: the database URL, a table's name, a
    secret's ARN, a queue's URL, a usage plan's name, a state machine's ARN."""
    if isinstance(resource, manifest.Postgres):
        return database_url
    if isinstance(resource, manifest.Table):
        return deployment.tables[resource.name]
    if isinstance(resource, manifest.Secret):
        return deployment.secrets[resource.name]
    if isinstance(resource, manifest.Queue):
        return deployment.queue_urls[resource.name]
    if isinstance(resource, manifest.StageSetting):
        return resource.value(os.environ.get("RAMPART_STAGE") or "local")
    if isinstance(resource, manifest.External):
        return deployment.externals.get(resource.name, "")  # none without the world: the cold start says so
    if isinstance(resource, manifest.UsagePlan):
        return aws.usage_plan_name(resource.name)  # its name, as infra.local.aws creates it
    return deployment.state_machines[resource.name]


def function_environment(
    deployment: aws.Deployment, database_url: str, m: manifest.Manifest = manifest.MANIFEST
) -> dict[str, str]:
    """The union of every function's environment (each one's as :func:`infra.manifest.environment`
    makes it, the CDK app's too), conflicting values being an error; ``RAMPART_USES`` names every
    resource any function uses, since every function here is given all of them."""
    from rampart.core.settings import Settings

    uses = Settings.model_fields[manifest.USES_SETTING].alias
    assert uses is not None
    values = {
        name: resource_value(resource, deployment, database_url)
        for name, resource in m.resources().items()
        if resource.setting is not None
    }
    env = dict(COMMON_ENV, RAMPART_STAGE=os.environ.get("RAMPART_STAGE") or "local")  # the twin's stage
    owner: dict[str, str] = {}
    for fn in m.functions:
        wanted = manifest.environment(fn, values, m)
        del wanted[uses]
        for key, value in wanted.items():
            if value == "":
                continue
            if key in owner and env[key] != value:
                raise ValueError(f"{fn.name} and {owner[key]} need different values of {key}: the twin shares one env")
            env[key], owner[key] = value, fn.name
    # Resources the twin has no value for (the world's, when it runs without one) are not
    # announced: no function's cold start may demand them; the first use says what is missing.
    absent = {name for name, value in values.items() if value == ""}
    env[uses] = ",".join(p for p in manifest.uses_value(m.functions, m).split(",") if p.partition("=")[0] not in absent)
    return env


# Context --------------------------------------------------------------------------------------


class LambdaContext:
    """What the Python runtime passes as ``context`` (awslambdaric's fields)."""

    def __init__(self, fn: manifest.Function, request_id: str | None = None) -> None:
        self.function_name = aws.function_name(fn.name)
        self.function_version = "$LATEST"
        self.invoked_function_arn = aws.function_arn(fn.name)
        self.memory_limit_in_mb = str(fn.memory_mb)  # a string, as in the real runtime
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + fn.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# Powertools' per-process request state, per thread -------------------------------------------

_powertools_local = threading.local()
_powertools_isolated = False


class _PerThread:
    """A data descriptor whose value lives in a thread-local slot."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        try:
            return getattr(_powertools_local, self.name)
        except AttributeError:
            raise AttributeError(self.name) from None

    def __set__(self, instance: object, value: Any) -> None:
        setattr(_powertools_local, self.name, value)

    def __delete__(self, instance: object) -> None:
        delattr(_powertools_local, self.name)


def isolate_powertools_state() -> None:
    """Make ``BaseRouter.current_event`` and ``BaseRouter.lambda_context`` per thread: for
    ``app.current_event`` (a descriptor in ``BaseRouter``'s dict) and for the class-level reads and
    writes Powertools does itself (the same descriptors on a metaclass derived from ``ABCMeta``)."""
    global _powertools_isolated
    if _powertools_isolated:
        return
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    names = ("current_event", "lambda_context")
    for name in names:
        type.__setattr__(BaseRouter, name, _PerThread(name))
    meta = type(BaseRouter)
    per_thread_meta = type(f"PerThread{meta.__name__}", (meta,), {name: _PerThread(name) for name in names})
    BaseRouter.__class__ = per_thread_meta  # type: ignore[method-assign]  # a metaclass swap
    _powertools_isolated = True


# Containers -----------------------------------------------------------------------------------

Handler = Callable[[Any, Any], Any]


class _Container:
    def __init__(self, module: ModuleType, handler: Handler) -> None:
        self.module = module
        self.handler = handler
        self.invocations = 0


def _load(fn: manifest.Function, number: int) -> _Container:
    module_name, _, attribute = fn.handler.rpartition(".")
    if number == 1:
        module = importlib.import_module(module_name)
    else:
        found = importlib.util.find_spec(module_name)
        if found is None or found.origin is None:
            raise ModuleNotFoundError(module_name)
        name = f"{module_name}__container{number}"
        spec = importlib.util.spec_from_file_location(name, found.origin)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # pydantic and typing resolve names through sys.modules
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    handler = getattr(module, attribute)
    if not callable(handler):
        raise TypeError(f"{fn.handler} is not callable")
    return _Container(module, handler)


def acting_role(fn: manifest.Function, m: manifest.Manifest = manifest.MANIFEST) -> str | None:
    """The database role ``fn``'s invocations log in as here: its ``db_role``, but None (the
    URL's own user, the server's superuser) for the owner role and for functions without one."""
    if fn.db_role is None or m.db_role(fn.db_role).owner:
        return None
    return fn.db_role


class FunctionRuntime:
    """One function's containers: an idle one is reused, a new one is made while under the limit,
    otherwise the invocation waits for one."""

    def __init__(
        self, fn: manifest.Function, max_containers: int = DEFAULT_MAX_CONTAINERS, db_role: str | None = None
    ) -> None:
        self.fn = fn
        self.db_role = db_role  # what its invocations connect as (None: the URL's user)
        self.max_containers = max_containers
        self._idle: list[_Container] = []
        self._all: list[_Container] = []
        self._reserved = 0
        self._cond = threading.Condition()

    @property
    def containers(self) -> int:
        return len(self._all)

    def _acquire(self) -> _Container:
        with self._cond:
            while not self._idle and self._reserved >= self.max_containers:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._reserved += 1
            number = self._reserved
        try:
            container = _load(self.fn, number)
        except BaseException:
            with self._cond:
                self._reserved -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._all.append(container)
        log.info("container started", extra={"function": self.fn.name, "container": number})
        return container

    def _release(self, container: _Container) -> None:
        with self._cond:
            self._idle.append(container)
            self._cond.notify()

    def invoke(self, event: Any, request_id: str | None = None) -> Any:
        from rampart.adapters.postgres.db import acting_as

        container = self._acquire()
        context = LambdaContext(self.fn, request_id)
        started = time.monotonic()
        try:
            container.invocations += 1
            with acting_as(self.db_role):
                return container.handler(event, context)
        finally:
            self._release(container)
            elapsed = time.monotonic() - started
            if elapsed > self.fn.timeout_seconds:
                log.error(
                    "invocation ran past the function's timeout: Lambda would have killed it",
                    extra={"function": self.fn.name, "seconds": round(elapsed, 3), "timeout": self.fn.timeout_seconds},
                )

    def unload(self) -> None:
        with self._cond:
            for name in [n for n in sys.modules if n.startswith(self.fn.handler.rpartition(".")[0] + "__container")]:
                del sys.modules[name]
            self._idle.clear()
            self._all.clear()
            self._reserved = 0


# The registry ---------------------------------------------------------------------------------


class LambdaRegistry:
    """Every function of the manifest, imported lazily by handler path."""

    def __init__(
        self,
        functions: Iterable[manifest.Function] = manifest.FUNCTIONS,
        *,
        dlqs: Mapping[str, str] | None = None,
        max_containers: int = DEFAULT_MAX_CONTAINERS,
        m: manifest.Manifest = manifest.MANIFEST,
    ) -> None:
        isolate_powertools_state()
        self.functions = {fn.name: fn for fn in functions}
        self.dlqs = dict(dlqs or {})
        self._runtimes = {
            name: FunctionRuntime(fn, max_containers, acting_role(fn, m)) for name, fn in self.functions.items()
        }
        self._async = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lambda-async")
        self._by_physical = {aws.function_name(name): name for name in self.functions}

    def runtime(self, name: str) -> FunctionRuntime:
        return self._runtimes[name]

    def resolve(self, name_or_arn: str) -> str | None:
        """Our function's manifest name for a FunctionName as Lambda accepts it (name, partial or
        full ARN, optionally with a qualifier), or None when it is not ours."""
        text = name_or_arn
        if text.startswith("arn:"):
            parts = text.split(":")
            text = parts[6] if len(parts) >= 7 else ""
        elif ":function:" in text:
            text = text.split(":function:", 1)[1]
        text = text.split(":", 1)[0]
        if text in self._by_physical:
            return self._by_physical[text]
        return text if text in self.functions else None

    def invoke(self, name: str, event: Any, request_id: str | None = None) -> Any:
        """Run the function now, in this thread; its exception propagates."""
        return self._runtimes[name].invoke(event, request_id)

    def invoke_async(self, name: str, event: Any) -> Future[Any]:
        """``InvocationType=Event``: run later; a failure is logged and sent to the DLQ."""
        request_id = str(uuid.uuid4())

        def run() -> Any:
            try:
                return self.invoke(name, event, request_id)
            except Exception as exc:
                log.exception("asynchronous invocation failed", extra={"function": name, "request_id": request_id})
                self._dead_letter(name, event, request_id, exc)
                raise

        return self._async.submit(run)

    def _dead_letter(self, name: str, event: Any, request_id: str, exc: BaseException) -> None:
        url = self.dlqs.get(name)
        if not url:
            return
        import boto3

        try:
            boto3.client("sqs", region_name=aws.REGION).send_message(
                QueueUrl=url,
                MessageBody=json.dumps(event, default=str),
                MessageAttributes={
                    "RequestID": {"DataType": "String", "StringValue": request_id},
                    "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                    "ErrorMessage": {"DataType": "String", "StringValue": f"{type(exc).__name__}: {exc}"[:1000]},
                },
            )
        except Exception:
            log.exception("could not write to the DLQ", extra={"function": name, "queue_url": url})

    def close(self) -> None:
        self._async.shutdown(wait=False, cancel_futures=True)
        for runtime in self._runtimes.values():
            runtime.unload()


# lambda:Invoke through botocore ---------------------------------------------------------------

INVOKE_EVENT = "before-call.lambda.Invoke"


def error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    """What the Lambda runtime returns for an unhandled exception."""
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


class LambdaBridge:
    """A botocore ``before-call.lambda.Invoke`` handler: a call naming one of our functions is
    answered by running it here and returning ``(AWSResponse, parsed)``; others go on to moto."""

    def __init__(self, registry: LambdaRegistry) -> None:
        self.registry = registry

    def install(self) -> None:
        aws.register_handler(INVOKE_EVENT, self)

    def uninstall(self) -> None:
        aws.unregister_handler(INVOKE_EVENT, self)

    def __call__(self, params: Mapping[str, Any] | None = None, **kwargs: Any) -> tuple[Any, dict[str, Any]] | None:
        if not params:
            return None
        path = str(params.get("url_path", ""))
        marker = "/functions/"
        if marker not in path:
            return None
        requested = unquote(path.split(marker, 1)[1].split("/", 1)[0])
        name = self.registry.resolve(requested)
        if name is None:
            return None
        headers = {str(k).lower(): v for k, v in (params.get("headers") or {}).items()}
        invocation_type = str(headers.get("x-amz-invocation-type") or "RequestResponse")
        raw = params.get("body") or b""
        if hasattr(raw, "read"):
            raw = raw.read()
        text = raw.decode() if isinstance(raw, bytes | bytearray) else str(raw)
        try:
            event = json.loads(text) if text.strip() else {}
        except ValueError:
            return self._reply(
                400, b"", {"Error": {"Code": "InvalidRequestContentException", "Message": "payload is not JSON"}}
            )
        if invocation_type == "DryRun":
            return self._reply(204, b"", {"StatusCode": 204})
        if invocation_type == "Event":
            self.registry.invoke_async(name, event)
            return self._reply(202, b"", {"StatusCode": 202})
        request_id = str(uuid.uuid4())
        error: str | None = None
        try:
            result = self.registry.invoke(name, event, request_id)
            payload = json.dumps(result).encode()
        except Exception as exc:
            error = "Unhandled"
            payload = json.dumps(error_payload(exc, request_id)).encode()
        parsed: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
        if error:
            parsed["FunctionError"] = error
        return self._reply(200, payload, parsed, request_id)

    @staticmethod
    def _reply(
        status: int, payload: bytes, parsed: dict[str, Any], request_id: str | None = None
    ) -> tuple[Any, dict[str, Any]]:
        from botocore.awsrequest import AWSResponse
        from botocore.response import StreamingBody

        request_id = request_id or str(uuid.uuid4())
        headers = {"x-amzn-requestid": request_id, "x-amz-executed-version": "$LATEST"}
        if "FunctionError" in parsed:
            headers["x-amz-function-error"] = parsed["FunctionError"]
        http = AWSResponse("https://lambda.local/invocations", status, headers, io.BytesIO(payload))
        parsed["Payload"] = StreamingBody(io.BytesIO(payload), len(payload))
        parsed["ResponseMetadata"] = {
            "RequestId": request_id,
            "HTTPStatusCode": status,
            "HTTPHeaders": headers,
            "RetryAttempts": 0,
        }
        return http, parsed
