"""The benchmarks' minimal boto3 reference builds the same stack `pocctl up` finds converged: it
uses pocctl's resources and config (desired(), arns, packaging), so an API change there must not
leave `make bench` broken unnoticed (it was, once, after the resources' redesign)."""

from __future__ import annotations

import pytest
from support import ROOT
from support.workspace import Workspace


def test_the_reference_builds_what_up_then_leaves_unchanged(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # bench/ is not installed: it lives beside tests/
    from bench import reference

    built = reference.build(ws.endpoint, ws.config)
    assert built.api_id
    r = ws.cli("plan")
    assert r.exit_code == 0, r.output
    assert "0 to create, 0 to update, 18 unchanged" in r.output, r.output
