"""No credential is ever printed or stored: not by `up`, `status --json`, `down`, nor by an error
shown with --verbose (a traceback), nor in the state file or anything else pocctl writes."""

from __future__ import annotations

from pathlib import Path

from support.workspace import Workspace

SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAPOCCTLNOTREAL001",
    "AWS_SECRET_ACCESS_KEY": "pocctl-secret-never-shown-0123456789abcd",
    "AWS_SESSION_TOKEN": "pocctl-session-token-never-shown-zyx",
    "AWS_SECURITY_TOKEN": "pocctl-session-token-never-shown-zyx",
}


def _leaks(text: str) -> list[str]:
    return [k for k, v in SECRETS.items() if v in text]


def test_no_command_prints_or_stores_a_credential(ws: Workspace) -> None:
    runs = [
        ws.subprocess("-v", "up", env=SECRETS),
        ws.subprocess("status", "--json", env=SECRETS),
        ws.subprocess("-v", "plan", env=SECRETS),
        ws.subprocess("-v", "down", "--yes", env=SECRETS),
        # an error with its traceback (--verbose): an endpoint nothing listens on
        ws.subprocess("-v", "--endpoint-url", "http://127.0.0.1:9", "status", env=SECRETS),
    ]
    assert [r.exit_code for r in runs] == [0, 0, 0, 0, 1], [r.output for r in runs]
    assert "Traceback" in runs[-1].output  # the verbose error path really ran
    for r in runs:
        assert _leaks(r.output) == [], r.output
    written = [p for p in Path(ws.dir).rglob("*") if p.is_file() and "handlers" not in p.parts]
    assert any(p.name == "state.json" for p in written)
    for p in written:
        assert _leaks(p.read_text(errors="replace")) == [], p
