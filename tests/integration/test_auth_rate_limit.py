"""The DynamoDB rate-limit counter (in moto, on the manifest's table definition)."""

from __future__ import annotations

import uuid

import boto3
import pytest

from rampart.adapters.dynamodb.rate_limit import DynamoDBRateLimitCounter
from tests.support.aws import RATE_LIMIT_TABLE


@pytest.fixture
def counter(aws: None) -> DynamoDBRateLimitCounter:
    return DynamoDBRateLimitCounter(RATE_LIMIT_TABLE)


@pytest.fixture
def key() -> str:
    return f"test#{uuid.uuid4().hex}"


def test_a_window_opens_at_the_first_hit_and_counts(counter: DynamoDBRateLimitCounter, key: str) -> None:
    assert counter.current(key, 1000.0) is None
    first = counter.hit(key, 1000.0, 900)
    assert (first.count, first.resets_at) == (1, 1900.0)
    for n in range(2, 6):
        assert counter.hit(key, 1000.0 + n, 900).count == n
    window = counter.current(key, 1010.0)
    assert window is not None
    assert (window.count, window.resets_at) == (5, 1900.0)


def test_the_item_carries_the_ttl_attribute(counter: DynamoDBRateLimitCounter, key: str) -> None:
    counter.hit(key, 1000.5, 900)
    item = boto3.client("dynamodb").get_item(TableName=RATE_LIMIT_TABLE, Key={"pk": {"S": key}})["Item"]
    assert item["expires_at"] == {"N": "1900"}
    ttl = boto3.client("dynamodb").describe_time_to_live(TableName=RATE_LIMIT_TABLE)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"


def test_a_passed_window_is_absent_even_before_ttl_removes_it(counter: DynamoDBRateLimitCounter, key: str) -> None:
    for _ in range(10):
        counter.hit(key, 1000.0, 900)
    assert counter.current(key, 1899.9) is not None
    assert counter.current(key, 1900.0) is None
    reopened = counter.hit(key, 2000.0, 900)
    assert (reopened.count, reopened.resets_at) == (1, 2900.0)


def test_clear(counter: DynamoDBRateLimitCounter, key: str) -> None:
    counter.hit(key, 1000.0, 900)
    counter.clear(key)
    assert counter.current(key, 1000.0) is None
    counter.clear(key)  # clearing nothing is fine


def test_keys_are_independent(counter: DynamoDBRateLimitCounter, key: str) -> None:
    counter.hit(key, 1000.0, 900)
    counter.hit(key, 1000.0, 900)
    assert counter.hit(key + "-other", 1000.0, 900).count == 1
