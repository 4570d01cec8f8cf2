"""``faceleads.cli.common.emit``: the one way a command prints its result, JSON under ``--json`` or a human form."""

from __future__ import annotations

import json
from datetime import date

import pytest
from rich.table import Table

from faceleads.cli.common import emit, err_console, print_json

pytestmark = pytest.mark.no_database  # pure output formatting: run once, on SQLite

PAYLOAD = {"agency": "MÉT", "ids": [1, 2], "note": None}


def test_json_mode_prints_only_the_indented_document(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    emit(PAYLOAD, True, lambda: calls.append("human"))
    out, err = capsys.readouterr()
    assert out == '{\n  "agency": "MÉT",\n  "ids": [\n    1,\n    2\n  ],\n  "note": null\n}\n'
    assert out == json.dumps(PAYLOAD, indent=2, ensure_ascii=False) + "\n"
    assert err == ""
    assert calls == []  # the human form is never built under --json


def test_compact_json_is_one_ascii_line(capsys: pytest.CaptureFixture[str]) -> None:
    emit(PAYLOAD, True, "never shown", compact=True)
    assert capsys.readouterr().out == '{"agency": "M\\u00c9T", "ids": [1, 2], "note": null}\n'


def test_json_mode_refuses_values_json_does_not_know() -> None:
    # The JSON form is the services' to_json(); a date reaching it is a bug, not something to print as a guess.
    with pytest.raises(TypeError):
        emit({"day": date(2026, 1, 31)}, True)
    with pytest.raises(TypeError):
        print_json({"day": date(2026, 1, 31)}, compact=True)


def test_human_default_is_the_payload_as_readable_json(capsys: pytest.CaptureFixture[str]) -> None:
    emit({"day": date(2026, 1, 31), "count": 3}, False)
    out = capsys.readouterr().out
    assert json.loads(out) == {"day": "2026-01-31", "count": 3}  # dates shown with str(); not a terminal: no colour


def test_human_line_is_printed_with_markup(capsys: pytest.CaptureFixture[str]) -> None:
    emit(PAYLOAD, False, "[bold]case 7[/] closed")
    out = capsys.readouterr().out
    assert out == "case 7 closed\n"
    assert "{" not in out


def test_human_callable_returning_a_renderable(capsys: pytest.CaptureFixture[str]) -> None:
    def table() -> Table:
        t = Table("code", "title")
        t.add_row("ROB", "Robbery")
        return t

    emit([{"code": "ROB"}], False, table)
    out = capsys.readouterr().out
    assert "ROB" in out and "Robbery" in out and "code" in out
    assert '"code"' not in out


def test_human_callable_printing_itself_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    emit(PAYLOAD, False, lambda: err_console.print("added MET", highlight=False))
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "added MET\n"
