"""A function's life in the portal, in Debian's chromium (Playwright) against the embedded system started for real
(``functions_system``: portal, worker, beat and the local executor service, with the approved stateful test
policy): deploy it from the form (a field error first), watch it turn ready live, call it from the form generated
from its input schema, send a management command and see one result per replica, read its logs, remove it. A
viewer sees none of the buttons. Screenshots in test-artifacts/portal/ (1280 px and narrow); no CSP violation."""
import re

import pytest
from playwright.sync_api import expect

from tests.functions.conftest import STATEFUL_URI, functions_system  # noqa: F401 - the fixture
from tests.pages.test_browser_portal import open_page, shot

pytestmark = [pytest.mark.browser]
NAME = "portal-counter"


def logins(system) -> dict[str, str]:
    text = (system.state / "credentials.txt").read_text()
    return dict(re.findall(r"login:\s+(\S+) / (\S+)", text))


def sign_in(browser, base, username, password, width=1280):
    return open_page(browser, base, username, width=width, password=password)


def test_deploy_call_manage_read_logs_and_remove_a_function(browser, functions_system):  # noqa: F811
    system, passwords = functions_system, logins(functions_system)
    context, page = sign_in(browser, system.base, "demo-operator", passwords["demo-operator"])
    page.goto(f"{system.base}/portal/functions/")
    page.click("[data-testid=action] >> text=Deploy a function")
    page.wait_for_url("**/portal/functions/-/deploy/")
    page.fill("#name", NAME)
    page.select_option("#policy", STATEFUL_URI)
    page.select_option("#executor", "")  # let the allocator choose
    page.fill("#replicas", "2")
    page.click("summary")
    page.fill("#parameters", '{"label": ')
    page.click("[data-testid=deploy]")
    assert "not JSON" in page.inner_text("[data-testid=error-parameters]")
    assert page.input_value("#name") == NAME
    shot(page, "function-deploy-error")
    assert page.problems == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    page.problems.clear()  # the refused form answers 400, which chromium logs
    page.fill("#parameters", '{"label": "from-the-form"}')
    page.click("[data-testid=deploy]")
    page.wait_for_url(f"**/portal/functions/{NAME}/")
    assert page.inner_text("#function-status") in ("deploying", "ready")

    # Live: the status turns ready (the page follows the API), then both replicas show ready.
    # (Playwright's own waits: the CSP refuses the eval behind wait_for_function.)
    expect(page.locator("#function-status")).to_have_text("ready", timeout=90_000)
    page.wait_for_load_state()
    expect(page.locator("[data-testid=replica-row] .status-ready")).to_have_count(2, timeout=60_000)
    # Ready once one replica serves (the message counts them as they were then).
    assert re.fullmatch(r"[12] of 2 replicas ready", page.inner_text("#function-message"))
    shot(page, "function-ready")

    # A call from the generated form.
    page.click("[data-testid=call]")
    page.wait_for_selector("[data-testid=call-output]")
    output = page.inner_text("[data-testid=call-output]")
    assert '"label": "from-the-form"' in output and '"count": 1' in output
    assert page.inner_text("[data-testid=call-outcome]") == "success"
    assert float(page.inner_text("[data-testid=call-latency]").split()[0]) > 0

    # A management command to every replica: one result each.
    page.select_option("#action", "set_label")
    assert page.is_visible("#cmd-set_label-label") and not page.is_visible("fieldset[data-command=get_state]")
    page.fill("#cmd-set_label-label", "managed")
    page.select_option("#target", "all")
    page.click("[data-testid=send]")
    page.wait_for_selector("[data-testid=manage-result]")
    results = page.locator("[data-testid=replica-result]")
    assert results.count() == 2
    for n in range(2):
        assert '"label": "managed"' in results.nth(n).inner_text()
    shot(page, "function-managed")
    page.click("[data-testid=call]")
    page.wait_for_selector("[data-testid=call-output]")
    assert '"label": "managed"' in page.inner_text("[data-testid=call-output]")

    # Logs: what the policy printed, on Refresh.
    page.fill("#log-tail", "50")
    page.click("[data-testid=refresh-logs]")
    expect(page.locator("#function-logs")).to_contain_text("function says", timeout=30_000)

    # Narrow: the same page in one column, nothing wider than the window.
    narrow_context, narrow = sign_in(browser, system.base, "demo-operator", passwords["demo-operator"], width=390)
    narrow.goto(f"{system.base}/portal/functions/{NAME}/")
    narrow.wait_for_selector("[data-testid=replica-row]")
    wider = narrow.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > 391
                       && ![...e.children].some((c) => c.getBoundingClientRect().right > 391))
        .map((e) => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)""")
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 390, wider[:8]
    shot(narrow, "function-narrow")
    assert not narrow.problems, narrow.problems
    narrow_context.close()

    # A viewer sees the function live but none of the buttons.
    viewer_context, viewer = sign_in(browser, system.base, "demo-viewer", passwords["demo-viewer"])
    viewer.goto(f"{system.base}/portal/functions/{NAME}/")
    viewer.wait_for_selector("[data-testid=replica-row]")
    for testid in ("remove", "call", "send", "call-form", "manage-form"):
        assert viewer.locator(f"[data-testid={testid}]").count() == 0, testid
    viewer.goto(f"{system.base}/portal/functions/")
    assert viewer.locator("[data-testid=action]").count() == 0
    assert not viewer.problems, viewer.problems
    viewer_context.close()

    # Remove, confirmed.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-testid=remove]")
    page.wait_for_url("**/portal/functions/")
    assert f"Function {NAME} removed." in page.inner_text(".messages")
    assert system.get(f"/function/{NAME}").status_code == 404
    assert not page.problems, page.problems
    context.close()
