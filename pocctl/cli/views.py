"""What pocctl's steps, orders, resources and status rows look like on the Terminal: cells and
lines in rich markup, which the Terminal prints without knowing what they are."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pocctl.cli.terminal import Column, escape
from pocctl.engine import ABSENT, CREATE, DELETE, UNCHANGED, UPDATE

if TYPE_CHECKING:
    from pocctl.engine import Step
    from pocctl.orders import Report
    from pocctl.resources.base import Resource

# action → (mark, style, what it did)
MARK = {
    CREATE: ("+", "green", "created"),
    UPDATE: ("~", "yellow", "updated"),
    UNCHANGED: ("=", "dim", "unchanged"),
    DELETE: ("-", "red", "deleted"),
    ABSENT: ("·", "dim", "already gone"),
}
# action → what it will do (plan)
PLAN_WORD = {CREATE: "create", UPDATE: "update", UNCHANGED: "unchanged"}

Table = tuple[list[Column], list[list[str]]]


def titled(resource: Resource) -> str:
    """ "function POC-Lambda-1": its kind, then its name."""
    return f"{resource.kind} {escape(resource.name)}"


def _with_identity(name: str, ident: str) -> str:
    # The ARN goes on its own line under the name: the table fits 80 columns.
    return escape(name) + (f"\n[dim]{escape(ident)}[/]" if ident else "")


def resource_table(steps: list[Step]) -> Table:
    """The closing table of `up`: every resource with its ARN (or URL / ID)."""
    columns = [Column("kind"), Column("resource / ARN", fold=True)]
    rows = []
    for s in steps:
        ident = s.identity.get("arn") or s.identity.get("url") or s.identity.get("id") or ""
        rows.append([s.resource.kind, _with_identity(s.resource.name, ident)])
    return columns, rows


def plan_table(steps: list[Step]) -> Table:
    """`pocctl plan`: per resource, what `up` would do and what differs."""
    columns = [
        Column("task", justify="right"),
        Column("resource"),
        Column("action"),
        Column("what differs", fold=True),
    ]
    rows = []
    for s in steps:
        _, style, _ = MARK[s.action]
        rows.append(
            [
                str(s.task.number),
                titled(s.resource),
                f"[{style}]{PLAN_WORD.get(s.action, s.action)}[/]",
                "\n".join(escape(str(c)) for c in s.changes),
            ]
        )
    return columns, rows


_STATUS_STYLE = {"exists": "green", "missing": "red", "drifted": "yellow"}


def status_table(rows: list[dict[str, Any]]) -> Table:
    """`pocctl status`: its rows (see cli/status.py) with the ARN under each resource."""
    columns = [
        Column("#", justify="right"),
        Column("kind"),
        Column("resource / ARN", fold=True),
        Column("status", fold=True),
    ]
    cells = []
    for r in rows:
        note = f"\n{r['note']}" if r.get("note") else ""
        status = f"[{_STATUS_STYLE.get(r['status'], '')}]{r['status']}[/][dim]{escape(note)}[/]"
        ident = r.get("arn") or r.get("id") or ""
        cells.append([str(r["task"]), r["kind"], _with_identity(r["name"], ident), status])
    return columns, cells


_HOPS = ("accepted", "stored", "notified")


def _ms(seconds: float | None) -> str:
    return "[red]—[/]" if seconds is None else f"{seconds * 1000:.0f} ms"


def order_table(report: Report) -> Table:
    """One row per order: its ID and its time for each hop (the first 20 of more than 50);
    p50/p95 when there are several."""
    columns = [Column("#", justify="right"), Column("order ID", fold=True)]
    columns += [Column(hop, justify="right") for hop in _HOPS]
    orders = report.orders
    shown = orders if len(orders) <= 50 else orders[:20]
    rows = [
        [str(o.number), escape(o.order_id or (o.marker if o.answered else f"(HTTP {o.status})"))]
        + [_ms(getattr(o, hop)) for hop in _HOPS]
        for o in shown
    ]
    if len(orders) > len(shown):
        rows.append(["…", f"{len(orders) - len(shown)} more", "", "", ""])
    if len(orders) > 1:
        percentiles = [report.percentiles(hop) for hop in _HOPS]
        for label, i in (("p50", 0), ("p95", 1)):
            rows.append(["", f"[bold]{label}[/]"] + [_ms(p[i]) if p else "—" for p in percentiles])
    return columns, rows


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:10]))
    more = f" and {len(numbers) - 10} more" if len(numbers) > 10 else ""
    return f"order{'s' if len(numbers) > 1 else ''} {shown}{more}"


def diagnosis_lines(report: Report) -> list[str]:
    """Where the missing orders stopped: per finding (order_diagnosis.Finding), the hop, where
    they are now, and the function's last error with its log stream."""
    lines = []
    for f in report.diagnosis:
        lines.append(f"[bold]{_numbers(f.orders)} stopped at[/] {escape(f.hop)}")
        lines.append(f"    [dim]where:[/] {escape(f.where)}")
        if f.why:
            lines.append(f"    [dim]why:[/]   {escape(f.why)}")
        if f.error is not None:
            e = f.error
            lines.append(f"    [dim]error:[/] [red]{escape(e.type)}[/]: {escape(e.message)}")
            lines.append(
                f"    [dim]log:[/]   /aws/lambda/{escape(e.function)} {escape(e.log_stream)} "
                f"at {_when(e.time)}"
            )
    return lines


# -- lines ----------------------------------------------------------------------------------------


def step_line(step: Step) -> str:
    """What a step did, as `up` and `down` show it as it happens."""
    mark, style, word = MARK[step.action]
    took = f" [dim]{step.seconds:.1f} s[/]" if step.action not in (UNCHANGED, ABSENT) else ""
    return f"  [{style}]{mark} {word:<12}[/] {escape(step.resource.name)}{took}"


def task_summary(steps: list[Step]) -> str:
    """ "2 created, 1 unchanged": how many steps did what, in the order first seen."""
    counts: dict[str, int] = {}
    for step in steps:
        word = MARK[step.action][2]
        counts[word] = counts.get(word, 0) + 1
    return ", ".join(f"{n} {word}" for word, n in counts.items()) or "nothing to do"


def plan_line(step: Step) -> str:
    """What a step will do, as a walkthrough screen says it."""
    mark, style, _ = MARK[step.action]
    return f"  [{style}]{mark} {PLAN_WORD[step.action]:<10}[/] {titled(step.resource)}"


def teardown_line(step: Step) -> str:
    """What `down` will do to a resource whose `up` plan is ``step``."""
    if step.action == CREATE:  # it is not there
        return f"  [dim]· gone      {titled(step.resource)}[/]"
    return f"  [red]- delete[/]    {titled(step.resource)}"


def _when(epoch: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def inbox_lines(email: dict[str, Any]) -> list[str]:
    """`pocctl inbox`: one email (of cli/inbox.py) as its time and subject, then its first line."""
    first = next((ln.strip() for ln in email["body"].splitlines() if ln.strip()), "")
    return [
        f"{_when(email['time'])}  [bold]{escape(email['subject'])}[/]",
        f"    [dim]{escape(first)}[/]",
    ]


# -- pocctl logs / orders -----------------------------------------------------------------------

_FUNCTION_STYLES = ("cyan", "magenta", "green", "yellow")


def log_line(line: Any, width: int) -> str:
    """`pocctl logs`: one event (pocctl.observe.LogLine) as its UTC time, its function (padded
    to ``width``, coloured by name) and its message."""
    from pocctl.observe import iso_ms

    style = _FUNCTION_STYLES[sum(map(ord, line.function)) % len(_FUNCTION_STYLES)]
    message = line.message.rstrip()  # REPORT ends in a tab: no trailing blanks (--json keeps it)
    return (
        f"[dim]{iso_ms(line.timestamp)}[/] [{style}]{escape(line.function):<{width}}[/] "
        + escape(message)
    )


def order_rows_table(rows: list[dict[str, Any]], key: str, time_attribute: str) -> Table:
    """`pocctl orders`: one row per item: its time, then its key with the rest of the item as
    compact JSON on the line under it (the key stays whole on one line within 80 columns)."""
    import json

    columns = [
        Column("#", justify="right"),
        Column(time_attribute, fold=True),
        Column(f"{key} / order", fold=True),
    ]
    cells = []
    for n, row in enumerate(rows, 1):
        rest = {k: v for k, v in row.items() if k not in (key, time_attribute)}
        body = rest["order"] if list(rest) == ["order"] else rest
        text = json.dumps(body, ensure_ascii=False, separators=(", ", ": "))
        cells.append(
            [
                str(n),
                escape(str(row.get(time_attribute, "—"))),
                f"{escape(str(row.get(key, '')))}\n[dim]{escape(text)}[/]",
            ]
        )
    return columns, cells
