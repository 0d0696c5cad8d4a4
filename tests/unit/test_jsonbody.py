"""The bounded JSON body parser: limits checked by a linear scan before json.loads."""

from __future__ import annotations

import base64

import pytest

from rampart.core.jsonbody import MAX_DEPTH, MAX_NUMBER_LENGTH, MalformedBody, parse


def nested(depth: int) -> object:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("body", "value"),
    [
        ('{"a": 1}', {"a": 1}),
        ("[" * MAX_DEPTH + "]" * MAX_DEPTH, nested(MAX_DEPTH)),
        ('{"n": ' + "9" * MAX_NUMBER_LENGTH + "}", {"n": int("9" * MAX_NUMBER_LENGTH)}),
        ('{"s": "' + "[" * 1000 + "9" * 1000 + '"}', {"s": "[" * 1000 + "9" * 1000}),  # strings are not structure
        ('{"s": "a\\"[[[["}', {"s": 'a"[[[['}),
        ('{"k": "\\ud83d\\ude00"}', {"k": "\U0001f600"}),  # a surrogate pair is one character
        ('{"k": "ü€😀"}', {"k": "ü€😀"}),
        ('{"k": true, "l": false, "m": null}', {"k": True, "l": False, "m": None}),
        ('{"e": -1.5e-10}', {"e": -1.5e-10}),
    ],
)
def test_good_bodies_parse(body: str, value: object) -> None:
    assert parse(body) == value


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "deeper"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "deeper"),
        ("[" * 1_000_000, "deeper"),
        ('{"n": ' + "9" * (MAX_NUMBER_LENGTH + 1) + "}", "number literal"),
        ('{"n": ' + "9" * 5000 + "}", "number literal"),
        ('{"n": 0.' + "0" * 200 + "1}", "number literal"),
        ('{"n": 1e' + "9" * 200 + "}", "number literal"),
        ('{"n": NaN}', "NaN"),
        ('{"n": -Infinity}', "Infinity"),
        ('{"a": 1, "a": 2}', "twice"),
        ('{"k": "\\ud800"}', "surrogate"),
        ('{"\\udfff": 1}', "surrogate"),
        ('{"k": "a\x01b"}', "not valid JSON"),
        ('{"k": "abc', "not valid JSON"),
        ('{"k": "abc" "', "not valid JSON"),
        ("", "not valid JSON"),
    ],
)
def test_bad_bodies_are_malformed(body: str, message: str) -> None:
    with pytest.raises(MalformedBody, match=message):
        parse(body)


def test_bytes_must_be_utf8() -> None:
    with pytest.raises(MalformedBody, match="UTF-8"):
        parse(b'{"a": "\xff"}')
    assert parse('{"a": "ü"}'.encode()) == {"a": "ü"}


def test_base64_bodies_must_decode_to_utf8() -> None:
    good = base64.b64encode('{"a": "ü"}'.encode()).decode()
    assert parse(good, base64_encoded=True) == {"a": "ü"}
    with pytest.raises(MalformedBody, match="UTF-8"):
        parse(base64.b64encode(b'{"a": "\xc3\x28"}').decode(), base64_encoded=True)
    with pytest.raises(MalformedBody, match="base64"):
        parse("!!not base64!!", base64_encoded=True)


def test_a_str_holding_a_lone_surrogate_is_not_utf8() -> None:
    with pytest.raises(MalformedBody, match="UTF-8"):
        parse('{"a": "\ud800"}')


def test_malformed_is_a_json_decode_error() -> None:
    """Powertools maps a JSONDecodeError of its deserializer to a 400 like any bad JSON."""
    import json

    assert issubclass(MalformedBody, json.JSONDecodeError)
