"""Views: pocctl's steps, orders and status rows as the cells and lines the Terminal prints."""

from __future__ import annotations

import pytest

from pocctl import config, lab
from pocctl.cli import views
from pocctl.engine import ABSENT, CREATE, DELETE, UNCHANGED, UPDATE, Step
from pocctl.orders import Order, Report
from pocctl.resources.base import Change, Resource

CFG = config.parse("")
ROLE_ARN = "arn:aws:iam::123456789012:role/POC-Lambda-Role"


def first(kind: str) -> tuple[lab.Task, Resource]:
    """The lab's first resource of ``kind``, with its task."""
    return next((t, r) for t in lab.BUILD_TASKS for r in t.resources(CFG) if r.kind == kind)


def test_every_resource_of_the_lab_is_titled_by_its_kind() -> None:
    titles = [views.titled(r) for t in lab.BUILD_TASKS for r in t.resources(CFG)]
    kinds = [t.split(" ", 1)[0] for t in titles]
    assert set(kinds) == {
        "policy",
        "role",
        "table",
        "stream",
        "queue",
        "function",
        "trigger",
        "topic",
        "api",
    }  # no email: the default config subscribes none
    assert "function POC-Lambda-1" in titles


def test_the_resource_table_puts_the_arn_or_url_or_id_under_the_name() -> None:
    t, role = first("role")
    _, queue = first("queue")
    _, api = first("api")
    steps = [
        Step(t, role, CREATE, identity={"arn": ROLE_ARN}),
        Step(t, queue, UNCHANGED, identity={"url": "https://sqs/POC-Queue"}),
        Step(t, api, UPDATE, identity={"id": "a1b2"}),
        Step(t, api, UNCHANGED),
    ]
    columns, rows = views.resource_table(steps)
    assert [c.header for c in columns] == ["kind", "resource / ARN"]
    assert columns[1].fold
    assert rows == [
        ["role", f"{role.name}\n[dim]{ROLE_ARN}[/]"],
        ["queue", f"{queue.name}\n[dim]https://sqs/POC-Queue[/]"],
        ["api", f"{api.name}\n[dim]a1b2[/]"],
        ["api", api.name],
    ]


def test_the_plan_table_says_what_up_would_do_and_what_differs() -> None:
    t, function = first("function")
    changes = [Change("Timeout", 3, 30), Change("MemorySize", 128, 256)]
    columns, rows = views.plan_table(
        [Step(t, function, UPDATE, changes), Step(t, function, CREATE)]
    )
    assert [c.header for c in columns] == ["task", "resource", "action", "what differs"]
    assert rows == [
        ["4", f"function {function.name}", "[yellow]update[/]", f"{changes[0]}\n{changes[1]}"],
        ["4", f"function {function.name}", "[green]create[/]", ""],
    ]


def test_the_status_table_takes_the_kind_from_the_row_and_colours_the_status() -> None:
    rows = [
        {"task": 1, "kind": "role", "name": "R", "status": "exists", "arn": ROLE_ARN},
        {"task": 3, "kind": "queue", "name": "Q", "status": "drifted", "note": "Policy"},
        {"task": 7, "kind": "trigger", "name": "T", "status": "missing", "id": "uuid-1"},
    ]
    columns, cells = views.status_table(rows)
    assert [c.header for c in columns] == ["#", "kind", "resource / ARN", "status"]
    assert cells == [
        ["1", "role", f"R\n[dim]{ROLE_ARN}[/]", "[green]exists[/][dim][/]"],
        ["3", "queue", "Q", "[yellow]drifted[/][dim]\nPolicy[/]"],
        ["7", "trigger", "T\n[dim]uuid-1[/]", "[red]missing[/][dim][/]"],
    ]


def test_names_are_escaped_so_brackets_print_as_themselves() -> None:
    t, role = first("role")
    role.name = "[red]odd"
    _, [row] = views.resource_table([Step(t, role, CREATE)])
    assert row == ["role", r"\[red]odd"]
    assert views.titled(role) == r"role \[red]odd"


def order(n: int, ms: float | None = 10.0, order_id: str | None = "id") -> Order:
    at = None if ms is None else ms / 1000
    return Order(n, "{}", status=200, order_id=order_id, accepted=at, stored=at, notified=at)


def test_one_order_is_one_row_without_percentiles() -> None:
    columns, rows = views.order_table(Report([order(1, 12.4, "o-1")], "u", 1.0))
    assert [c.header for c in columns] == ["#", "order ID", "accepted", "stored", "notified"]
    assert rows == [["1", "o-1", "12 ms", "12 ms", "12 ms"]]


def test_a_lost_order_shows_its_http_status_and_dashes() -> None:
    lost = Order(1, "{}", status=500, order_id=None)
    _, rows = views.order_table(Report([lost], "u", 1.0))
    assert rows == [["1", "(HTTP 500)", "[red]—[/]", "[red]—[/]", "[red]—[/]"]]


def test_several_orders_end_in_p50_and_p95() -> None:
    _, rows = views.order_table(Report([order(1, 10), order(2, 20), order(3, None)], "u", 1.0))
    assert [r[0] for r in rows] == ["1", "2", "3", "", ""]
    assert rows[-2] == ["", "[bold]p50[/]", "15 ms", "15 ms", "15 ms"]
    assert rows[-1][1] == "[bold]p95[/]"


def test_more_than_fifty_orders_show_the_first_twenty_and_a_count() -> None:
    _, rows = views.order_table(Report([order(n) for n in range(1, 52)], "u", 1.0))
    assert [r[0] for r in rows[:20]] == [str(n) for n in range(1, 21)]
    assert rows[20] == ["…", "31 more", "", "", ""]
    assert len(rows) == 23  # and p50, p95


@pytest.mark.parametrize(
    ("action", "seconds", "line"),
    [
        (CREATE, 2.345, "  [green]+ created     [/] POC-Lambda-1 [dim]2.3 s[/]"),
        (UNCHANGED, 2.345, "  [dim]= unchanged   [/] POC-Lambda-1"),
        (DELETE, 0.5, "  [red]- deleted     [/] POC-Lambda-1 [dim]0.5 s[/]"),
        (ABSENT, 0.5, "  [dim]· already gone[/] POC-Lambda-1"),
    ],
)
def test_a_step_line_says_what_was_done_and_how_long_it_took(
    action: str, seconds: float, line: str
) -> None:
    t, function = first("function")
    assert views.step_line(Step(t, function, action, seconds=seconds)) == line


def test_a_task_summary_counts_what_its_steps_did() -> None:
    t, function = first("function")
    steps = [Step(t, function, a) for a in (CREATE, UNCHANGED, CREATE)]
    assert views.task_summary(steps) == "2 created, 1 unchanged"
    assert views.task_summary([]) == "nothing to do"


def test_walkthrough_lines_for_the_plan_and_the_teardown() -> None:
    t, queue = first("queue")
    name = queue.name
    assert views.plan_line(Step(t, queue, UPDATE)) == f"  [yellow]~ update    [/] queue {name}"
    assert views.teardown_line(Step(t, queue, CREATE)) == f"  [dim]· gone      queue {name}[/]"
    assert views.teardown_line(Step(t, queue, UNCHANGED)) == f"  [red]- delete[/]    queue {name}"
