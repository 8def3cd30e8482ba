"""No credential is ever printed or stored: not by `up`, `status --json`, `down`, nor by an error
shown with --verbose (a traceback), nor in the state file or anything else pocctl writes."""

from __future__ import annotations

from pathlib import Path

from support.workspace import Workspace

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "pocctl-secret-never-shown-0123456789abcd",
    "AWS_SESSION_TOKEN": "pocctl-session-token-never-shown-zyx",
    "AWS_SECURITY_TOKEN": "pocctl-session-token-never-shown-zyx",
}
# The embedded AWS refuses access keys it does not know (pocctl.local.iam_authz): the commands
# run as its admin ("testing", the access key ID, which AWS does not treat as a secret) signing
# with a secret key and session token that must never show.
ENV = {"AWS_ACCESS_KEY_ID": "testing", **SECRETS}
UNKNOWN_KEY = "AKIAPOCCTLNOTREAL001"


def _leaks(text: str) -> list[str]:
    return [k for k, v in SECRETS.items() if v in text]


def test_no_command_prints_or_stores_a_credential(ws: Workspace) -> None:
    runs = [
        ws.subprocess("-v", "up", env=ENV),
        ws.subprocess("status", "--json", env=ENV),
        ws.subprocess("-v", "plan", env=ENV),
        ws.subprocess("-v", "down", "--yes", env=ENV),
        # an error with its traceback (--verbose): an endpoint nothing listens on
        ws.subprocess("-v", "--endpoint-url", "http://127.0.0.1:9", "status", env=ENV),
        # refused: an access key the embedded AWS does not know (InvalidClientTokenId)
        ws.subprocess("-v", "status", env={**ENV, "AWS_ACCESS_KEY_ID": UNKNOWN_KEY}),
    ]
    assert [r.exit_code for r in runs] == [0, 0, 0, 0, 1, 1], [r.output for r in runs]
    assert "InvalidClientTokenId" in runs[-1].output
    # ... and says which key the embedded AWS knows
    assert "the embedded AWS knows only `testing`" in " ".join(runs[-1].output.split())
    assert UNKNOWN_KEY not in runs[-1].output
    assert "Traceback" in runs[-2].output  # the verbose error path really ran
    for r in runs:
        assert _leaks(r.output) == [], r.output
    written = [p for p in Path(ws.dir).rglob("*") if p.is_file() and "handlers" not in p.parts]
    assert any(p.name == "state.json" for p in written)
    for p in written:
        assert _leaks(p.read_text(errors="replace")) == [], p
