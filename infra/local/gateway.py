"""The local API Gateway: HTTP requests → API Gateway REST proxy events for the routed function.

Routes come from the manifest (nothing is declared here). For each request, in order:

1. the twin's own endpoints (``/openapi.json``, ``/docs``, ``/_twin/…``), then the simulators
   (``/_sim/…``), which are not API Gateway routes at all;
2. before the twin is ready (migrations, admin seeded) every other request answers 503;
3. the route: the most specific resource, then its method; neither → 404 ``not-found``;
4. for ``auth`` routes the Lambda authorizer runs first, exactly as API Gateway runs a REQUEST
   authorizer: it raises ``Unauthorized`` → 401, anything else it raises or returns malformed →
   500, its policy is evaluated against this request's method ARN (an explicit Deny wins, an
   Allow is needed, ``*``/``?`` wildcards) → 403 ``forbidden`` unless allowed; its ``context``
   (values stringified) and ``principalId`` become ``requestContext.authorizer``;
5. the function's proxy response is written back (``headers`` and ``multiValueHeaders`` merged,
   base64 bodies decoded); a function that raises or answers malformed → 502.

``webhook`` functions are not API routes: each answers on its own ``path`` (and below it), any
method, as a Lambda function URL (auth type NONE) answers — no authorizer; the event is the
function URL's payload format 2.0 and the reply is mapped as function URLs map it (a
``statusCode`` reply as given, anything else a 200 JSON body).

The gateway's own replies are the problem+json of API.md. Payloads over 10 MB (API Gateway's
limit) are refused with 413 before anything runs; the functions enforce API.md's 256 KB.
The authorizer's result is not cached (API Gateway may cache it per identity for a TTL).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from infra import manifest
from infra.local import aws
from infra.local.lambdas import LambdaRegistry
from infra.local.logs import get_logger
from infra.local.routing import Router
from infra.local.sim import SimError, SimRegistry, SimRequest

log = get_logger("rampart.twin.gateway")

API_ID = "rampartlcl"
STAGE = "local"
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
_CORRELATION = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


@dataclass
class HttpRequest:
    method: str
    target: str  # path and query, as sent
    headers: list[tuple[str, str]]
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    too_large: bool = False  # the server refused to read a body over the limit

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        found = [v for k, v in self.headers if k.lower() == lowered]
        return found[-1] if found else None


@dataclass
class HttpReply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    function: str | None = None  # who answered (request log)

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        return found[-1] if found else None


def json_reply(status: int, body: Any, headers: Iterable[tuple[str, str]] = ()) -> HttpReply:
    return HttpReply(
        status, [("Content-Type", "application/json"), *headers], json.dumps(body, separators=(",", ":")).encode()
    )


def problem_reply(
    status: int, slug: str, detail: str, *, path: str, correlation_id: str, headers: Iterable[tuple[str, str]] = ()
) -> HttpReply:
    from rampart.api.problems import PROBLEM_JSON, problem_json

    body = problem_json(status, slug, detail=detail, instance=path, correlation_id=correlation_id)
    return HttpReply(
        status,
        [("Content-Type", PROBLEM_JSON), ("X-Correlation-Id", correlation_id), *headers],
        body.encode(),
        function="gateway",
    )


# Policy evaluation ----------------------------------------------------------------------------


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM-style matching: ``*`` any run of characters (``/`` and ``:`` included), ``?`` one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


Decision = Literal["allow", "deny", "implicit-deny"]


def evaluate_policy(policy: Mapping[str, Any], method_arn: str, action: str = "execute-api:Invoke") -> Decision:
    """What IAM decides for ``action`` on ``method_arn``: an explicit Deny wins, else an Allow is
    needed, else it is denied implicitly."""
    statements = policy.get("Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    allowed = False
    for statement in statements:
        if not isinstance(statement, Mapping):
            continue
        if "Action" in statement:
            acts = any(wildcard_match(a, action, ignore_case=True) for a in _as_list(statement["Action"]))
        else:
            acts = not any(wildcard_match(a, action, ignore_case=True) for a in _as_list(statement.get("NotAction")))
        if "Resource" in statement:
            covers = any(wildcard_match(r, method_arn) for r in _as_list(statement["Resource"]))
        else:
            covers = not any(wildcard_match(r, method_arn) for r in _as_list(statement.get("NotResource")))
        if not (acts and covers):
            continue
        effect = str(statement.get("Effect", ""))
        if effect == "Deny":
            return "deny"
        if effect == "Allow":
            allowed = True
    return "allow" if allowed else "implicit-deny"


def method_arn(method: str, path: str) -> str:
    return f"arn:aws:execute-api:{aws.REGION}:{aws.ACCOUNT}:{API_ID}/{STAGE}/{method}/{path.lstrip('/')}"


class AuthorizerError(Exception):
    """The authorizer failed or answered something API Gateway would not accept (→ 500)."""


def authorizer_context(result: Any, arn: str) -> dict[str, Any] | None:
    """``requestContext.authorizer`` from an authorizer's result, or None when its policy does
    not allow ``arn``. Raises :class:`AuthorizerError` for a malformed result."""
    if not isinstance(result, Mapping):
        raise AuthorizerError("the authorizer returned no object")
    principal = result.get("principalId")
    policy = result.get("policyDocument")
    if not isinstance(principal, str | int) or not isinstance(policy, Mapping):
        raise AuthorizerError("the authorizer's result lacks principalId or policyDocument")
    if evaluate_policy(policy, arn) != "allow":
        return None
    context: dict[str, Any] = {"principalId": str(principal)}
    for key, value in (result.get("context") or {}).items():
        if isinstance(value, bool):
            context[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            context[key] = str(value)
        elif value is None:
            continue
        else:
            raise AuthorizerError(f"authorizer context value {key!r} must be a string, number or boolean")
    return context


# The gateway ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    route: manifest.Route
    function: manifest.Function


InternalHandler = Callable[[HttpRequest, dict[str, str]], HttpReply]


def route_table(functions: Iterable[manifest.Function] = manifest.FUNCTIONS) -> Router[Target]:
    return Router((r.method, r.path, Target(r, fn)) for fn in functions for r in fn.routes)


class Gateway:
    def __init__(
        self,
        registry: LambdaRegistry,
        *,
        functions: Iterable[manifest.Function] = manifest.FUNCTIONS,
        sims: SimRegistry | None = None,
        internal: Router[InternalHandler] | None = None,
        is_ready: Callable[[], bool] = lambda: True,
        not_ready: Callable[[], HttpReply] | None = None,
    ) -> None:
        functions = tuple(functions)
        self.registry = registry
        self.routes = route_table(functions)
        self.sims = sims or SimRegistry()
        self.internal: Router[InternalHandler] = internal or Router()
        self.is_ready = is_ready
        self.not_ready = not_ready
        authorizers = [fn.name for fn in functions if fn.kind == "authorizer"]
        if len(authorizers) > 1:
            raise ValueError(f"one authorizer expected, the manifest has {authorizers}")
        self.authorizer = authorizers[0] if authorizers else None
        self.webhooks = {fn.path: fn for fn in functions if fn.kind == "webhook" and fn.path}
        self.port = 0

    def table(self) -> list[dict[str, Any]]:
        """The routes this gateway serves, from its own route table."""
        return [
            {
                "method": method,
                "path": path,
                "function": target.function.name,
                "auth": target.route.auth,
                "idempotent": target.route.idempotent,
                "roles": list(target.route.roles),
            }
            for method, path, target in self.routes.entries()
        ]

    # -- one request --------------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpReply:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        given = request.header("X-Correlation-Id")
        correlation_id = given if given and _CORRELATION.match(given) else str(uuid.uuid4())
        path = urlsplit(request.target).path or "/"
        try:
            reply = self._dispatch(request, request_id, correlation_id)
        except Exception:
            log.exception("gateway fault", extra={"request_id": request_id})
            reply = problem_reply(
                500, "internal-error", "the local gateway failed", path=unquote(path), correlation_id=correlation_id
            )
        reply.headers.append(("x-amzn-RequestId", request_id))
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": path,
                "status": reply.status,
                "function": reply.function,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
                "request_id": request_id,
                "correlation_id": reply.header("X-Correlation-Id") or correlation_id,
                "source_ip": request.source_ip,
            },
        )
        return reply

    def _dispatch(self, request: HttpRequest, request_id: str, correlation_id: str) -> HttpReply:
        split = urlsplit(request.target)
        raw_path = split.path or "/"
        path = unquote(raw_path)

        def problem(status: int, slug: str, detail: str, *headers: tuple[str, str]) -> HttpReply:
            return problem_reply(status, slug, detail, path=path, correlation_id=correlation_id, headers=headers)

        if request.too_large or len(request.body) > MAX_PAYLOAD_BYTES:
            return problem(413, "payload-too-large", "the request is over API Gateway's 10 MB limit")

        own = self.internal.resolve(request.method, raw_path)
        if own is not None:
            if own.target is None:
                return problem(404, "not-found", f"no {request.method} on {path}")
            reply = own.target(request, own.params)
            reply.function = reply.function or "twin"
            return reply

        sim = self.sims.resolve(request.method, raw_path)
        if sim is not None:
            if sim.target is None:
                return problem(404, "not-found", f"no {request.method} on {path}")
            query: dict[str, list[str]] = {}
            for key, value in parse_qsl(split.query, keep_blank_values=True):
                query.setdefault(key, []).append(value)
            headers = dict(request.headers)
            try:
                answered = sim.target(SimRequest(request.method, path, sim.params, query, headers, request.body))
            except SimError as exc:
                return problem(exc.status, exc.slug, exc.detail)
            reply = (
                json_reply(answered.status, answered.body, answered.headers.items())
                if answered.body is not None
                else HttpReply(answered.status, list(answered.headers.items()))
            )
            reply.function = "sim"
            return reply

        if not self.is_ready():
            if path == "/health" and self.not_ready is not None:
                return self.not_ready()
            return problem(503, "service-unavailable", "the local twin is starting", ("Retry-After", "1"))

        webhook = self._webhook(path)
        if webhook is not None:
            return self._invoke_webhook(webhook, request, request_id, problem)

        resolved = self.routes.resolve(request.method, raw_path)
        if resolved is None:
            return problem(404, "not-found", f"no route for {path}")
        if resolved.target is None:
            return problem(404, "not-found", f"{path} has no method {request.method}")
        target = resolved.target

        event = self.proxy_event(request, target.route.path, resolved.params, request_id)
        if target.route.auth:
            refused = self._authorize(event, problem)
            if refused is not None:
                return refused

        fn = target.function.name
        try:
            response = self.registry.invoke(fn, event, request_id)
            reply = proxy_reply(response)
        except Exception:
            log.exception("function failed", extra={"function": fn, "request_id": request_id})
            reply = problem(502, "internal-error", "the function failed or answered malformed")
        reply.function = fn
        return reply

    def _webhook(self, path: str) -> manifest.Function | None:
        for prefix, fn in self.webhooks.items():
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return fn
        return None

    def _invoke_webhook(
        self, fn: manifest.Function, request: HttpRequest, request_id: str, problem: Callable[..., HttpReply]
    ) -> HttpReply:
        event = self.function_url_event(request, request_id)
        try:
            reply = function_url_reply(self.registry.invoke(fn.name, event, request_id))
        except Exception:
            log.exception("function failed", extra={"function": fn.name, "request_id": request_id})
            reply = problem(502, "internal-error", "the function failed or answered malformed")
        reply.function = fn.name
        return reply

    def function_url_event(self, request: HttpRequest, request_id: str) -> dict[str, Any]:
        """The Lambda function URL event (payload format 2.0) of ``request``: header names lower
        case and repeats comma-joined, cookies apart, a body that is not UTF-8 base64-encoded."""
        split = urlsplit(request.target)
        raw_path = split.path or "/"
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for key, value in [
            *request.headers,
            *[(k, v) for k, v in self._forwarded(request) if request.header(k) is None],
        ]:
            name = key.lower()
            if name == "cookie":
                cookies += [c.strip() for c in value.split(";") if c.strip()]
                continue
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        query: dict[str, str] = {}
        for key, value in parse_qsl(split.query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
        now = time.time()
        url_id = f"{zlib.crc32(raw_path.encode()):08x}"
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": split.query,
            "headers": headers,
            "requestContext": {
                "accountId": "anonymous",
                "apiId": url_id,
                "domainName": f"{url_id}.lambda-url.{aws.REGION}.on.aws",
                "domainPrefix": url_id,
                "http": {
                    "method": request.method,
                    "path": raw_path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": request.source_ip,
                    "userAgent": request.header("User-Agent") or "",
                },
                "requestId": request_id,
                "routeKey": "$default",
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "isBase64Encoded": False,
        }
        if cookies:
            event["cookies"] = cookies
        if query:
            event["queryStringParameters"] = query
        if request.body:
            try:
                event["body"] = request.body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = base64.b64encode(request.body).decode(), True
        return event

    def _authorize(self, event: dict[str, Any], problem: Callable[..., HttpReply]) -> HttpReply | None:
        """Run the authorizer; fill ``event.requestContext.authorizer`` or return the refusal."""
        if self.authorizer is None:
            return problem(500, "internal-error", "the manifest has no authorizer function")
        context = event["requestContext"]
        arn = method_arn(event["httpMethod"], event["path"])
        auth_event = {
            "type": "REQUEST",
            "methodArn": arn,
            **{k: event[k] for k in ("resource", "path", "httpMethod", "headers", "multiValueHeaders")},
            **{k: event[k] for k in ("queryStringParameters", "multiValueQueryStringParameters", "pathParameters")},
            "stageVariables": None,
            "requestContext": dict(context),
        }
        started = time.monotonic()
        try:
            result = self.registry.invoke(self.authorizer, auth_event)
            authorizer = authorizer_context(result, arn)
        except Exception as exc:
            if str(exc) == "Unauthorized":
                return problem(401, "unauthorized", "missing, expired or invalid credentials")
            log.exception("authorizer failed", extra={"function": self.authorizer})
            return problem(500, "internal-error", "the authorizer failed")
        if authorizer is None:
            return problem(403, "forbidden", "the credentials do not allow this request")
        authorizer["integrationLatency"] = int((time.monotonic() - started) * 1000)
        context["authorizer"] = authorizer
        return None

    def proxy_event(
        self, request: HttpRequest, resource: str, params: Mapping[str, str], request_id: str
    ) -> dict[str, Any]:
        """The API Gateway REST (v1) proxy event of ``request``."""
        split = urlsplit(request.target)
        path = unquote(split.path or "/")
        received = [
            *request.headers,
            *[(k, v) for k, v in self._forwarded(request) if request.header(k) is None],
        ]
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for key, value in received:
            headers[key] = value
            multi_headers.setdefault(key, []).append(value)
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for key, value in parse_qsl(split.query, keep_blank_values=True):
            query[key] = value
            multi_query.setdefault(key, []).append(value)
        body: str | None = None
        encoded = False
        if request.body:
            try:
                body = request.body.decode("utf-8")
            except UnicodeDecodeError:
                body, encoded = base64.b64encode(request.body).decode(), True
        now = time.time()
        user_agent = request.header("User-Agent")
        return {
            "resource": resource,
            "path": path,
            "httpMethod": request.method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": dict(params) or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": aws.ACCOUNT,
                "apiId": API_ID,
                "domainName": request.header("Host") or f"127.0.0.1:{self.port}",
                "domainPrefix": "127",
                "extendedRequestId": request_id,
                "httpMethod": request.method,
                "identity": {
                    "accessKey": None,
                    "accountId": None,
                    "apiKey": None,
                    "caller": None,
                    "sourceIp": request.source_ip,
                    "user": None,
                    "userAgent": user_agent,
                    "userArn": None,
                },
                "path": f"/{STAGE}{path}",
                "protocol": "HTTP/1.1",
                "requestId": request_id,
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "requestTimeEpoch": int(now * 1000),
                "resourceId": f"{zlib.crc32(resource.encode()):08x}"[:6],
                "resourcePath": resource,
                "stage": STAGE,
            },
            "body": body,
            "isBase64Encoded": encoded,
        }

    def _forwarded(self, request: HttpRequest) -> list[tuple[str, str]]:
        return [
            ("X-Forwarded-For", request.source_ip),
            ("X-Forwarded-Port", str(self.port)),
            ("X-Forwarded-Proto", "http"),
            ("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"),
        ]


class MalformedResponse(Exception):
    pass


def proxy_reply(response: Any) -> HttpReply:
    """The HTTP reply for a Lambda proxy response, as API Gateway writes it."""
    if not isinstance(response, Mapping) or not isinstance(response.get("statusCode"), int):
        raise MalformedResponse("statusCode missing")
    body = response.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedResponse("body must be a string")
    headers: list[tuple[str, str]] = []
    multi = response.get("multiValueHeaders") or {}
    for key, values in multi.items():
        headers += [(str(key), str(v)) for v in _as_list(values)]
    given = {(k.lower(), v) for k, v in headers}
    for key, value in (response.get("headers") or {}).items():
        if (str(key).lower(), str(value)) not in given:
            headers.append((str(key), str(value)))
    headers = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
    payload = base64.b64decode(body) if response.get("isBase64Encoded") and body else (body or "").encode()
    return HttpReply(int(response["statusCode"]), headers, payload)


def function_url_reply(response: Any) -> HttpReply:
    """The HTTP reply for a function URL's Lambda response: with a ``statusCode``, its headers,
    cookies and (base64) body; anything else is the body of a 200 ``application/json`` reply."""
    if isinstance(response, Mapping) and "statusCode" in response:
        reply = proxy_reply({k: v for k, v in response.items() if k != "multiValueHeaders"})
        reply.headers += [("Set-Cookie", str(c)) for c in response.get("cookies") or []]
        return reply
    return HttpReply(200, [("Content-Type", "application/json")], json.dumps(response).encode())


# The HTTP server ------------------------------------------------------------------------------


class _RequestHandler(BaseHTTPRequestHandler):
    server: GatewayServer
    protocol_version = "HTTP/1.1"
    server_version = "rampart-twin"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection gives its thread back after this
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:
        """The gateway logs each request as a JSON line instead."""

    def _read_body(self) -> bytes | None:
        """The body, or None when it is over the limit (the connection is then closed)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    break
                total += size
                if total > MAX_PAYLOAD_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        gateway = self.server.gateway
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._write(problem_reply(400, "malformed-request", "bad Content-Length", path="/", correlation_id="-"))
            return
        too_large = body is None
        if too_large:
            self.close_connection = True  # the unread body is still on the wire
        request = HttpRequest(
            self.command, self.path, list(self.headers.items()), body or b"", self.client_address[0], too_large
        )
        self._write(gateway.handle(request))

    def _write(self, reply: HttpReply) -> None:
        try:
            self.send_response(reply.status)
            for key, value in reply.headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, CONNECT, …) goes to the gateway as well, which answers it as
        API.md says (404 not-found: no route has it) instead of http.server's 501 HTML page."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)


class GatewayServer(ThreadingHTTPServer):
    """One thread per connection; loopback only."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the twin listens on the loopback interface only")
        self.gateway = gateway
        super().__init__((host, port), _RequestHandler)
        gateway.port = self.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="twin-gateway", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()
