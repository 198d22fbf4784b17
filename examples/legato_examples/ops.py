"""Steps of the ``ops-change`` example: a configuration change request, from submission to
closure, applied host by host.

The hosts are imaginary: every step only logs, reports progress and records the resources a
real change would have touched.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from legato_examples._work import digest, simulate

if TYPE_CHECKING:
    from legato.engine.context import StepContext

__all__ = [
    "RISKS",
    "apply_setting",
    "close",
    "current_value",
    "precheck",
    "submit",
    "verify",
]

#: Risk levels a change ticket may declare.
RISKS = ("low", "medium", "high")
_TICKET_ID = re.compile(r"^CHG-\d{1,10}$")
_SETTING_KEYS = ("file", "key", "value")


def current_value(host: str, key: str) -> int:
    """The value ``key`` has on ``host`` before the change (stable per host and key)."""
    return 512 * (1 + int(digest(host, key, length=4), 16) % 4)


def submit(ticket: dict[str, Any], hosts: list[str], ctx: StepContext) -> dict[str, Any]:
    """Validate the change ticket and its hosts; carries ``change_id`` as a run value."""
    problems: list[str] = []
    change_id = str(ticket.get("id", ""))
    if not _TICKET_ID.match(change_id):
        problems.append(f"ticket id {change_id!r} must look like CHG-1234")
    if not str(ticket.get("summary", "")).strip():
        problems.append("the ticket needs a summary")
    if not str(ticket.get("requested_by", "")).strip():
        problems.append("the ticket needs requested_by")
    risk = ticket.get("risk", "low")
    if risk not in RISKS:
        problems.append(f"risk must be one of {', '.join(RISKS)}, got {risk!r}")
    if not hosts:
        problems.append("the change needs at least one host")
    elif len(set(hosts)) != len(hosts):
        problems.append("hosts must not repeat")
    if problems:
        raise ValueError("; ".join(problems))
    ctx.set_var("change_id", change_id)
    ctx.add_resource("change_request", change_id, "UPDATED", {"state": "IMPLEMENTING"})
    ctx.log.info(
        "Change %s submitted by %s: %s", change_id, ticket["requested_by"], ticket["summary"]
    )
    return {"change_id": change_id, "risk": risk, "host_count": len(hosts)}


def precheck(
    change_id: str, hosts: list[str], setting: dict[str, Any], ctx: StepContext
) -> dict[str, Any]:
    """Check every host is reachable and note the current value of the setting."""
    missing = [k for k in _SETTING_KEYS if k not in setting]
    if missing:
        raise ValueError(f"setting lacks {', '.join(missing)}")
    baseline = {host: current_value(host, str(setting["key"])) for host in hosts}
    simulate(ctx, 0.1, "prechecking", chunks=2)
    ctx.log.info(
        "%s: %d host(s) reachable; %s is %s", change_id, len(hosts), setting["key"], baseline
    )
    return {"reachable": list(hosts), "baseline": baseline}


def apply_setting(
    host: str, change_id: str, setting: dict[str, Any], ctx: StepContext
) -> dict[str, Any]:
    """Write the setting on one ``host`` (run once per host by ``foreach``)."""
    previous = current_value(host, str(setting["key"]))
    ctx.log.info(
        "%s: setting %s=%s in %s on %s (was %s)",
        change_id,
        setting["key"],
        setting["value"],
        setting["file"],
        host,
        previous,
    )
    simulate(ctx, 0.15, f"applying on {host}", chunks=3)
    ctx.add_resource(
        "host",
        host,
        "UPDATED",
        {
            "change_id": change_id,
            "file": setting["file"],
            "key": setting["key"],
            "previous": previous,
            "value": setting["value"],
        },
    )
    return {"host": host, "previous": previous, "value": setting["value"]}


def verify(
    results: list[dict[str, Any]], setting: dict[str, Any], ctx: StepContext
) -> dict[str, Any]:
    """Check that every host now has the new value; answers the verified hosts."""
    wrong = [r["host"] for r in results if r.get("value") != setting["value"]]
    if wrong:
        raise ValueError(f"{setting['key']} is not {setting['value']} on {', '.join(wrong)}")
    simulate(ctx, 0.05, "verifying", chunks=1)
    hosts = [str(r["host"]) for r in results]
    ctx.log.info("%s=%s verified on %s", setting["key"], setting["value"], ", ".join(hosts))
    return {"verified": hosts}


def close(change_id: str, verified: list[str], ctx: StepContext) -> dict[str, str]:
    """Close the change ticket as successful."""
    state = "CLOSED_SUCCESSFUL"
    ctx.add_resource("change_request", change_id, "UPDATED", {"state": state})
    ctx.log.info("Closed %s after changing %d host(s)", change_id, len(verified))
    return {"state": state, "summary": f"{change_id}: changed {len(verified)} host(s)"}
