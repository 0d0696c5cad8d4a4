"""The ramps' windows: the manifest's value per stage, parsed by the ramps' wiring."""

from __future__ import annotations

import pytest

from infra import manifest
from rampart.core.settings import ConfigurationError, reset_settings
from rampart.ramps.service import Windows
from rampart.wiring import ramps as wiring


def test_every_stage_has_api_md_windows_but_test() -> None:
    (windows,) = manifest.STAGE_SETTINGS
    api_md = "quote_ttl=600,start_deadline=900,payment_window=1800,"
    assert windows.value("prod") == windows.value("staging") == f"{api_md}watch_grace=120,silence=1800"
    assert windows.value("local").startswith(api_md)  # the watch looks sooner on a laptop
    assert "payment_window=30," in windows.value("test")
    with pytest.raises(KeyError, match="no value for stage"):
        windows.value("qa")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, Windows(600, 900, 1800)),
        ("quote_ttl=60,start_deadline=90,payment_window=30", Windows(60, 90, 30)),
        ("quote_ttl=60,start_deadline=90,payment_window=30,watch_grace=5,silence=40", Windows(60, 90, 30, 5, 40)),
    ],
)
def test_windows_are_read_from_the_setting(
    monkeypatch: pytest.MonkeyPatch, given: str | None, expected: Windows
) -> None:
    if given is None:
        monkeypatch.delenv("RAMPART_RAMP_WINDOWS", raising=False)
    else:
        monkeypatch.setenv("RAMPART_RAMP_WINDOWS", given)
    reset_settings()
    try:
        assert wiring.windows() == expected
    finally:
        reset_settings()


@pytest.mark.parametrize(
    "given",
    [
        "quote_ttl=60",
        "quote_ttl=a,start_deadline=1,payment_window=1",
        "quote_ttl=0,start_deadline=1,payment_window=1",
        "quote_ttl=1,start_deadline=1,payment_window=1,silence=0",
    ],
)
def test_malformed_windows_are_a_configuration_error(monkeypatch: pytest.MonkeyPatch, given: str) -> None:
    monkeypatch.setenv("RAMPART_RAMP_WINDOWS", given)
    reset_settings()
    try:
        with pytest.raises(ConfigurationError, match="RAMPART_RAMP_WINDOWS"):
            wiring.windows()
    finally:
        reset_settings()
