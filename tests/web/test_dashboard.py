"""The dashboard end to end, as a person uses it: sign in, start a run from the generated
form and watch it without reloading, act on runs (approve, cancel, retry, delete), drill
into foreach items and sub-workflows, follow logs; what a viewer and another namespace see;
the keyboard alone; no serious or critical accessibility violation on any page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import ADMIN_KEY, PASSWORD, Server
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(180)


def sign_in(page: Any, server: Server, key: str = ADMIN_KEY, *, next: str = "/ui") -> None:
    page.goto(f"{server.url}/ui/login?next={next}")
    page.fill("#key", key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(server.url + next) + r"$"))


def assert_accessible(page: Any, axe_source: str) -> None:
    """axe-core finds no serious or critical violation on the page as it is now."""
    page.wait_for_load_state()  # a click just before may still be loading the next page
    page.add_script_tag(content=axe_source)
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3)
            .map(n => n.target.join(" "))}))"""
    )
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], serious


def step_row(page: Any, key: str) -> Any:
    return page.locator(f'#step-rows tr[data-key="{key}"]').first


def test_sign_in_with_a_key_and_with_a_password(page: Any, server: Server, axe_source: str) -> None:
    page.goto(server.url + "/")  # a browser at / lands on the sign-in page of /ui
    expect(page).to_have_url(re.compile(r"/ui/login\?next=/ui$"))
    assert_accessible(page, axe_source)
    page.fill("#key", "lg_not_a_key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_have_text("invalid or revoked API key")

    page.fill("#key", server.keys["operator"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "legato_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["expires"] > 0  # expiring, not a browser-session cookie
    assert server.keys["operator"] not in cookie["value"]
    assert_accessible(page, axe_source)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    assert not [c for c in page.context.cookies() if c["name"] == "legato_session"]
    page.goto(server.url + "/ui")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=/ui$"))

    page.get_by_label("a user name and password").check()
    page.fill("#username", "olivia")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    expect(page.locator(".role")).to_have_text("olivia · operator")


def test_start_from_the_form_and_watch_it_live(page: Any, server: Server, axe_source: str) -> None:
    sign_in(page, server, server.keys["operator"], next="/ui/workflows/paced")
    assert_accessible(page, axe_source)
    form = page.locator("#start-form")
    expect(page.locator("#in-count")).to_have_value("4")  # the declared default
    page.fill("#in-count", "2.5")
    form.get_by_role("button", name="Start run").click()
    expect(page.locator("#err-count")).to_have_text("expected a whole number")
    expect(page.locator("#err-word")).to_have_text("required")
    # what the browser lets through, the server checks too: its errors land by their field
    page.evaluate(
        """() => {
            document.querySelector('.field[data-name="count"]').dataset.type = "string";
            document.getElementById("in-count").type = "text";
        }"""
    )
    page.fill("#in-count", "six")
    page.fill("#in-word", "hello")
    form.get_by_role("button", name="Start run").click()
    expect(page.locator("#err-count")).to_have_text("expected integer, got string")
    expect(page.locator("#start-result")).to_have_text("The server refused some fields.")
    page.evaluate(
        """() => {
            document.querySelector('.field[data-name="count"]').dataset.type = "integer";
            document.getElementById("in-count").type = "number";
        }"""
    )
    page.fill("#in-count", "8")
    form.get_by_role("button", name="Start run").click()
    page.locator("#started-run").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Run \d+"))).to_be_visible()

    page.evaluate("window.notReloaded = true")
    # the DOM changes as the steps go on: logs arrive line by line, the first step ends
    # while the second waits or runs, then the run ends
    expect(page.locator("#log-lines li", has_text="tick 2")).to_be_visible()
    expect(step_row(page, "first")).to_have_attribute("data-status", "RUNNING")
    page.screenshot(path=str(page_artifact("run-page")), full_page=True)  # docs/dashboard-run.png
    expect(page.locator("#log-lines li", has_text="tick 7")).to_be_visible()
    expect(step_row(page, "first")).to_have_attribute("data-status", "SUCCEEDED")
    expect(page.locator("#run-status")).to_have_text("SUCCEEDED")
    expect(step_row(page, "second")).to_have_attribute("data-status", "SUCCEEDED")
    expect(page.locator("#run-percent")).to_have_text("100%")
    expect(page.locator("#log-state")).to_have_text("the run has ended")
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator('#dag g[data-key="second"]')).to_have_attribute("data-status", "SUCCEEDED")

    # logs filter by step and by level
    page.select_option("#log-step", "second")
    expect(page.locator("#log-lines li:visible", has_text="tick")).to_have_count(0)
    page.select_option("#log-step", "first")
    expect(page.locator("#log-lines li:visible", has_text="tick")).to_have_count(8)
    page.select_option("#log-level", "ERROR")
    expect(page.locator("#log-lines li:visible")).to_have_count(0)

    page.get_by_role("tab", name="Outputs & values").click()
    expect(page.locator("#panel-values")).to_contain_text("hello")
    page.get_by_role("tab", name="Inputs").click()
    expect(page.locator("#panel-inputs")).to_contain_text('"count": 8')
    assert_accessible(page, axe_source)


def test_approve_an_approval_step(page: Any, server: Server, axe_source: str) -> None:
    run = server.start("gated")
    sign_in(page, server, server.keys["operator"], next=f"/ui/runs/{run['id']}")
    expect(step_row(page, "approve")).to_contain_text("waiting for approval")
    assert_accessible(page, axe_source)
    page.get_by_role("button", name="Approve or reject…").click()
    page.fill("#approve-payload", '{"by": "ops"}')
    page.locator("#approve-ok").click()
    expect(page.locator("#action-result")).to_have_text("Step approve was approved.")
    expect(page.locator("#run-status")).to_have_text("SUCCEEDED")
    done = server.wait(run["id"], {"SUCCEEDED"})
    assert done["steps"][0]["outputs"] == {"approved": True, "by": "ops"}


def page_artifact(name: str) -> Any:
    from conftest import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{name}.png"


def test_cancel_a_running_run_then_delete_it(page: Any, server: Server) -> None:
    run = server.start("sleepy")
    sign_in(page, server, server.keys["operator"], next=f"/ui/runs/{run['id']}")
    expect(step_row(page, "nap")).to_have_attribute("data-status", "RUNNING")
    page.get_by_role("button", name="Cancel run").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#action-result")).to_have_text(f"Run {run['id']} is being canceled.")
    expect(page.locator("#run-status")).to_have_text("CANCELED")
    server.wait(run["id"], {"CANCELED"})

    page.get_by_role("button", name="Delete run").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#action-result")).to_have_text(f"Run {run['id']} was deleted.")
    with server.client() as c:
        assert c.get(f"/api/v1/runs/{run['id']}").status_code == 404


def test_retry_a_failed_run(page: Any, server: Server) -> None:
    flag = server.home / "retry-flag"
    run = server.start("flag", path=str(flag))
    server.wait(run["id"], {"FAILED"})
    sign_in(page, server, server.keys["operator"], next=f"/ui/runs/{run['id']}")
    expect(page.locator("#run-status")).to_have_text("FAILED")
    expect(step_row(page, "check")).to_contain_text("flag is not set")
    page.get_by_role("tab", name="Errors").click()
    expect(page.locator("#panel-errors")).to_contain_text("flag is not set")
    flag.touch()
    page.get_by_role("button", name="Retry failed steps").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#action-result")).to_have_text(
        f"Run {run['id']} is running its failed steps again."
    )
    expect(page.locator("#run-status")).to_have_text("SUCCEEDED")
    expect(step_row(page, "check")).to_have_attribute("data-status", "SUCCEEDED")


def test_drill_into_a_foreach_and_a_sub_workflow(
    page: Any, server: Server, axe_source: str
) -> None:
    run = server.start("fan")
    server.wait(run["id"], {"SUCCEEDED"})
    sign_in(page, server, server.keys["viewer"], next=f"/ui/runs/{run['id']}")
    expect(step_row(page, "each")).to_contain_text("3 succeeded")
    page.get_by_role("button", name="Expand each").click()
    items = page.locator('#step-rows tr[data-depth="1"]')
    expect(items).to_have_count(3)
    page.get_by_role("button", name="Expand sub").click()
    expect(page.locator('#step-rows tr[data-key="inner"][data-depth="1"]')).to_have_attribute(
        "data-status", "SUCCEEDED"
    )
    page.get_by_role("button", name="Collapse each").click()
    expect(items).to_have_count(1)  # the sub-workflow's step is still open
    assert_accessible(page, axe_source)
    child = page.locator('#step-rows tr[data-key="sub"] a').get_attribute("href")
    page.goto(server.url + child)
    expect(page.locator("#parent-link")).to_have_text(f"run {run['id']}")


def test_a_viewer_sees_no_actions_and_forged_ones_are_refused(page: Any, server: Server) -> None:
    run = server.start("gated")
    sign_in(page, server, server.keys["viewer"], next=f"/ui/runs/{run['id']}")
    expect(step_row(page, "approve")).to_contain_text("waiting for approval")
    expect(
        page.get_by_role("button", name=re.compile("Cancel|Retry|Delete|Approve"))
    ).to_have_count(0)

    forged = page.evaluate(
        """async (id) => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch(`/api/v1/runs/${id}/cancel`,
                {method: "POST", headers: {"X-CSRF-Token": csrf}});
            return [r.status, (await r.json()).code];
        }""",
        run["id"],
    )
    assert forged == [403, "forbidden"]
    page.goto(server.url + "/ui/workflows/gated")
    expect(page.locator("#start-form")).to_have_count(0)

    # an operator's session without the CSRF token cannot act either
    sign_in(page, server, server.keys["operator"], next=f"/ui/runs/{run['id']}")
    no_token = page.evaluate(
        """async (id) => {
            const r = await fetch(`/api/v1/runs/${id}/cancel`, {method: "POST"});
            return [r.status, (await r.json()).code];
        }""",
        run["id"],
    )
    assert no_token == [403, "csrf_failed"]
    with server.client() as c:
        assert c.get(f"/api/v1/runs/{run['id']}").json()["status"] == "RUNNING"
        assert c.post(f"/api/v1/runs/{run['id']}/cancel").status_code == 200


def test_another_namespace_run_is_not_found(page: Any, server: Server, axe_source: str) -> None:
    theirs = server.start("child", key=server.keys["other"])
    sign_in(page, server, server.keys["operator"], next=f"/ui/runs/{theirs['id']}")
    expect(page.locator("#not-found")).to_have_text(f"run {theirs['id']} does not exist")
    assert_accessible(page, axe_source)
    status = page.evaluate("async (id) => (await fetch(`/api/v1/runs/${id}`)).status", theirs["id"])
    assert status == 404


def test_the_keyboard_alone_reaches_every_action(page: Any, server: Server) -> None:
    run = server.start("gated")
    sign_in(page, server, server.keys["operator"], next=f"/ui/runs/{run['id']}")
    expect(step_row(page, "approve")).to_contain_text("waiting for approval")
    reached: list[str] = []
    for _ in range(80):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate("document.activeElement.id || document.activeElement.textContent")
        )
        if reached[-1].startswith("approve-"):
            break
    assert "act-cancel" in reached
    assert reached[-1].startswith("approve-")
    page.keyboard.press("Enter")
    expect(page.locator("#approve")).to_be_visible()
    page.keyboard.type('{"by": "keyboard"}')  # the payload field has the focus
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "approve-ok":
            break
    page.keyboard.press("Enter")
    expect(page.locator("#action-result")).to_have_text("Step approve was approved.")
    assert server.wait(run["id"], {"SUCCEEDED"})["steps"][0]["outputs"]["by"] == "keyboard"

    # the tabs of the details follow the arrow keys
    page.locator("#tab-logs").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-values")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-values")).to_be_visible()


def test_lists_and_operations_pages(page: Any, server: Server, axe_source: str) -> None:
    run = server.start("child")
    server.wait(run["id"], {"SUCCEEDED"})
    sign_in(page, server, server.keys["operator"])
    row = page.locator(f"#run-{run['id']}")
    expect(row).to_contain_text("child v1")
    expect(page.locator('[data-count="SUCCEEDED"]')).not_to_have_text("")
    # a run started now appears without reload
    page.evaluate("window.notReloaded = true")
    fresh = server.start("child")
    expect(page.locator(f"#run-{fresh['id']}")).to_be_visible()
    expect(page.locator(f"#run-{fresh['id']}")).to_have_attribute("data-status", "SUCCEEDED")
    assert page.evaluate("window.notReloaded") is True
    page.locator('.chip[data-status="SUCCEEDED"]').click()
    expect(page.locator("#run-rows tr[data-status]:not([data-status=SUCCEEDED])")).to_have_count(0)
    assert_accessible(page, axe_source)
    page.goto(server.url + "/ui/workflows")
    expect(page.locator("#wf-child")).to_contain_text("v1")
    assert_accessible(page, axe_source)
    page.goto(server.url + "/ui/operations")
    expect(page.locator("#workers tbody tr")).to_have_count(1)
    assert_accessible(page, axe_source)
    page.emulate_media(color_scheme="dark")
    page.goto(server.url + f"/ui/runs/{run['id']}")
    expect(page.locator("#run-status")).to_have_text("SUCCEEDED")
    assert_accessible(page, axe_source)
