"""A non-interactive `pocctl walkthrough --yes` (what a recording shows), against `pocctl local`,
compared with tests/cli/walkthrough/snapshots/walkthrough.txt after normalising what changes
from run to run (ports, IDs, stream labels, durations, hashes).

After an intended change to the walkthrough's output, regenerate the snapshot and review its diff:

    POCCTL_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/cli/walkthrough -k snapshot
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "snapshots" / "walkthrough.txt"
UPDATE = os.environ.get("POCCTL_UPDATE_SNAPSHOTS") == "1"

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _folded(value: str) -> str:
    """A regex for ``value`` as printed: it may be folded onto the next line (indented)."""
    return r"(?:\n *)?".join(re.escape(c) for c in value)


def normalise(text: str, endpoint: str) -> str:
    text = text.replace(endpoint, "http://127.0.0.1:PORT")
    # IDs AWS makes up: the REST API's, the mappings' and the orders' UUIDs. Collected where they
    # appear whole, then replaced everywhere, also where an ARN was folded.
    ids = set(re.findall(r"--rest-api-id (\w+)", text))
    ids |= set(re.findall(r"--uuid (" + UUID + ")", text))
    ids |= set(re.findall(UUID, text))
    for value in sorted(ids):
        placeholder = "API_ID" if len(value) < 36 else "UUID"
        text = re.sub(_folded(value), placeholder, text)
    # A stream's label is its creation time (maybe folded too).
    text = re.sub(r"stream/(?:[0-9T:.\-]|\n *(?=[0-9T:.\-]))+", "stream/LABEL", text)
    text = re.sub(r"\b\d+\.\d s\b", "N.N s", text)
    text = re.sub(r"code_sha256( +)\S+", r"code_sha256\1SHA256", text)
    text = re.sub(r"pocctl config [0-9a-f]{16}", "pocctl config FINGERPRINT", text)
    # The order table: its columns are as wide as the timings in them.
    lines = []
    for line in text.splitlines():
        if re.match(r"^(#  order ID|\d+  UUID)", line):
            line = re.sub(r"\d+ ms", "N ms", re.sub(r" {2,}", "  ", line))
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_non_interactive_walkthrough_matches_the_snapshot(lws) -> None:  # type: ignore[no-untyped-def]
    r = lws.subprocess("walkthrough", "--yes", env={"COLUMNS": "80"}, timeout=180)
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    wide = [line for line in r.stdout.splitlines() if len(line) > 80]
    assert wide == [], "lines wider than 80 columns"
    assert "\x1b" not in r.stdout, "a pipe gets plain text"
    text = normalise(r.stdout, lws.endpoint)
    if UPDATE or not SNAPSHOT.exists():
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text(), (
        "the walkthrough's output changed (e.g. a policy document): if intended, regenerate with "
        "POCCTL_UPDATE_SNAPSHOTS=1 and review the snapshot's diff"
    )
    # What it did, not only what it said: everything built, tested, and removed.
    assert "1 of 1 orders stored once and notified once" in text
    assert "stack is down: 18 deleted, 0 already gone" in text
