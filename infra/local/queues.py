"""SQS event source mappings for the twin: each manifest queue with a ``consumer`` is polled in
a background thread and its messages handed to that ``queue`` function, as Lambda's event
source mapping does with ``ReportBatchItemFailures``:

- receive up to ``batch_size`` messages (at most 10), invoke the function with an SQS event;
- delete the records not named in the reply's ``batchItemFailures``; leave the failed ones, which
  become visible again after the queue's visibility timeout;
- a function that raises, or answers malformed, fails the whole batch (nothing is deleted);
- the queue's redrive policy (moto applies it at receive time) moves a message that was received
  ``max_receive_count`` times to the queue's DLQ.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra import manifest
from infra.local import aws
from infra.local.lambdas import LambdaRegistry
from infra.local.logs import get_logger

log = get_logger("rampart.twin.queues")

POLL_INTERVAL = 0.2  # seconds between empty receives (not money)


@dataclass(frozen=True)
class SourceMapping:
    queue: manifest.Queue
    url: str
    arn: str
    dlq_url: str


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The Lambda event for received SQS messages (as the event source mapping builds it)."""
    records = []
    for message in messages:
        attributes = {str(k): str(v) for k, v in (message.get("Attributes") or {}).items()}
        message_attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value.get("DataType"),
            }
            for name, value in (message.get("MessageAttributes") or {}).items()
        }
        body = str(message.get("Body", ""))
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": body,
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": aws.REGION,
            }
        )
    return {"Records": records}


def failed_ids(response: Any, sent: set[str]) -> set[str] | None:
    """The message ids a consumer reported failed; None when the reply is malformed (Lambda then
    counts the whole batch as failed)."""
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    ids: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in sent:
            return None
        ids.add(identifier)
    return ids


class QueuePoller:
    """One thread per consumed queue, started by :meth:`start`, stopped by :meth:`stop`."""

    def __init__(
        self, registry: LambdaRegistry, m: manifest.Manifest, deployment: aws.Deployment, *, client: Any
    ) -> None:
        self.registry = registry
        self.client = client
        self.mappings: dict[str, SourceMapping] = {}
        for queue in m.queues:
            if queue.consumer is None:
                continue
            url = deployment.queue_urls[queue.name]
            arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.mappings[queue.name] = SourceMapping(queue, url, arn, deployment.queue_dlqs[queue.name])
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.batches = 0

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "queue": name,
                "function": mapping.queue.consumer,
                "url": mapping.url,
                "arn": mapping.arn,
                "dead_letter_queue": mapping.dlq_url,
                "batch_size": mapping.queue.batch_size,
                "max_receive_count": mapping.queue.max_receive_count,
                "report_batch_item_failures": True,
            }
            for name, mapping in self.mappings.items()
        ]

    def start(self) -> None:
        self._stop.clear()
        for name, mapping in self.mappings.items():
            thread = threading.Thread(target=self._loop, args=(mapping,), name=f"sqs-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()

    def _loop(self, mapping: SourceMapping) -> None:
        while not self._stop.is_set():
            try:
                handled = self.poll_once(mapping)
            except Exception:
                log.exception("queue poll failed", extra={"queue": mapping.queue.name})
                handled = 0
            if not handled:
                self._stop.wait(POLL_INTERVAL)

    def poll_once(self, mapping: SourceMapping) -> int:
        """Receive one batch and hand it to the consumer; the number of messages received."""
        received = self.client.receive_message(
            QueueUrl=mapping.url,
            MaxNumberOfMessages=max(1, min(mapping.queue.batch_size, 10)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not received:
            return 0
        consumer = mapping.queue.consumer
        assert consumer is not None
        sent = {str(m["MessageId"]) for m in received}
        started = time.monotonic()
        try:
            response = self.registry.invoke(consumer, sqs_event(received, mapping.arn))
            failed = failed_ids(response, sent)
        except Exception:
            log.exception("queue consumer failed: the whole batch is retried", extra={"function": consumer})
            failed = None
        if failed is None:
            failed = sent
        done = [m for m in received if m["MessageId"] not in failed]
        if done:
            self.client.delete_message_batch(
                QueueUrl=mapping.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        self.batches += 1
        log.info(
            "queue batch",
            extra={
                "queue": mapping.queue.name,
                "function": consumer,
                "received": len(received),
                "failed": len(failed),
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return len(received)
