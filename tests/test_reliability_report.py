"""docs/RELIABILITY.md is written from a JUnit report: its scenarios must name real tests, and
its counts and results must be what the report says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import reliability_report as rr

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("selector", sorted({s for sc in rr.SCENARIOS for s in sc.selectors}))
def test_every_selector_names_a_test_that_exists(selector: str) -> None:
    file, _, func = selector.partition("::")
    text = (ROOT / file).read_text()
    if func:
        assert re.search(rf"^def {re.escape(func)}", text, re.M), selector
    else:
        assert re.search(r"^def test_", text, re.M), selector


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
  <testcase classname="tests.reliability.test_crash_anywhere"
            name="test_up_killed_after_call_k_converges[1]"/>
  <testcase classname="tests.reliability.test_crash_anywhere"
            name="test_up_killed_after_call_k_converges[2]"><failure message="x"/></testcase>
  <testcase classname="tests.reliability.test_transient_faults"
            name="test_up_and_down_converge_with_30_percent_faults[7]">
    <properties>
      <property name="faults_injected" value="40"/>
      <property name="calls" value="150"/>
      <property name="faults_by_kind" value="{&quot;503&quot;: 15, &quot;Throttling&quot;: 25}"/>
    </properties>
  </testcase>
  <testcase classname="tests.reliability.test_transient_faults"
            name="test_up_and_down_converge_with_30_percent_faults[8]">
    <properties>
      <property name="faults_injected" value="2"/>
      <property name="calls" value="50"/>
      <property name="faults_by_kind" value="{&quot;503&quot;: 2}"/>
    </properties>
  </testcase>
</testsuite></testsuites>
"""


def test_counts_and_results_come_from_the_report(tmp_path: Path) -> None:
    junit = tmp_path / "r.xml"
    junit.write_text(JUNIT)
    text = rr.render(rr.read_junit(junit), "cmd")
    crash = next(line for line in text.splitlines() if "k-th mutating call, then `up`" in line)
    assert "| 2 kill points | **1 of 2 failed** |" in crash
    faults = next(line for line in text.splitlines() if "30% of requests" in line)
    assert "42 faults in 200 requests, 2 runs (503 17, Throttling 25)" in faults
    assert "all 2 passed" in faults
    # a scenario with no case in the report says so instead of passing quietly
    assert "**not run**" in text


def test_a_scenario_without_cases_makes_the_command_fail(tmp_path: Path) -> None:
    junit = tmp_path / "r.xml"
    junit.write_text(JUNIT)
    out = tmp_path / "R.md"
    assert rr.main(["--junit", str(junit), "--output", str(out)]) == 1
    assert out.read_text().startswith("# Reliability and security figures")
