"""The review flow in a real browser (docs/governance.md §4): an author submits, a reviewer logs in, opens the
queue, reads the diff and the source, approves; the policy shows as approved. Screenshots of the queue and
the policy page are saved under test-artifacts/."""
import io
import zipfile
from pathlib import Path

import pytest

from governance import lifecycle
from tests.governance.conftest import closes_its_connections

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "pw-for-tests-1"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def changed_package(original: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(original))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("function.py"):
                data = data.replace(b"class AIOSv1PolicyRule", b"# Reviewed: stricter default\nclass AIOSv1PolicyRule", 1)
            target.writestr(item, data)
    return out.getvalue()


def login(page, base, username):
    page.goto(f"{base}/portal/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/portal/review/")


@closes_its_connections
def test_author_submits_and_reviewer_approves_in_the_browser(
    browser, live_server, users, new_policy, file_server, sample_package
):
    ARTIFACTS.mkdir(exist_ok=True)
    base = live_server.url
    # 1.0 is the previous approved version; 1.1 changes the code and the description.
    first = new_policy(version="1.0")
    lifecycle.submit(first, users["author"])
    lifecycle.approve(first, users["admin"])
    url = file_server.serve("browser-1.1.zip", changed_package(sample_package[2]))
    second = new_policy(version="1.1", code=url, description="Blocks unknown addresses by default.")
    uri = second.policy_rule_uri

    author = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = author.new_page()
    login(page, base, "author-user")
    page.goto(f"{base}/portal/policy/{uri}/")
    assert page.inner_text("[data-testid=status]") == "Draft"
    page.fill("#submit-comment", "Tightened the default rule")
    page.click("[data-testid=submit]")
    page.wait_for_selector("text=submitted for review")
    assert page.inner_text("[data-testid=status]") == "In review"
    author.close()

    reviewer = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = reviewer.new_page()
    login(page, base, "reviewer-user")
    queue = page.locator("[data-testid=review-queue]")
    assert uri in queue.inner_text() and "author-user" in queue.inner_text()
    page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)
    page.click(f"text={uri}")
    page.wait_for_url(f"{base}/portal/policy/{uri}/")
    # The diff against 1.0: fields and the changed source file, highlighted.
    field_diff = page.inner_text("[data-testid=field-diff]")
    assert "description" in field_diff and "code_digest" in field_diff
    file_diff = page.locator("[data-testid=file-diff]").first.inner_text()
    assert "code/function.py" in file_diff and "Reviewed: stricter default" in file_diff
    sources = page.locator("[data-testid=source-file]")
    assert "code/function.py" in sources.all_inner_texts()[-1] or any(
        "code/function.py" in text for text in sources.all_inner_texts())
    assert page.locator("[data-testid=source-file] .highlight .k").count() > 0  # Pygments keyword spans
    page.fill("#comment", "Read the diff and the source: fine.")
    page.click("[data-testid=approve]")
    page.wait_for_selector("text=approved.")
    assert page.inner_text("[data-testid=status]") == "Approved"
    assert "Read the diff and the source: fine." in page.inner_text(".reviews")
    page.screenshot(path=str(ARTIFACTS / "policy-page.png"), full_page=True)
    reviewer.close()

    second.refresh_from_db()
    assert second.status == "approved"
    assert (ARTIFACTS / "review-queue.png").stat().st_size > 0

