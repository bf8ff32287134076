"""The web page end to end in real headless Chromium (the system's, driven by Playwright; no browser download):
approve a pending skill and find it in the catalog, open a run and see its evidence highlighted, a JD holding
``<script>`` renders inert, a cross-site form post is refused. Screenshots go to ``$JDGRAPH_SCREENSHOTS`` when set
(the README's come from here)."""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import jdgraph
from tests.ports import free_port

pytestmark = pytest.mark.integration

HOSTILE_JD = """Platform Engineer
Acme Cloud is hiring a Platform Engineer in Berlin, Germany (hybrid).
Responsibilities:
- Run our Temporal workflows and Kubernetes clusters in production.
- Automate infrastructure with Terraform. <script>window.pwned = 1; document.title = "pwned"</script>
- Improve our <b onmouseover="window.pwned=2">CI/CD</b> pipelines.
Requirements:
- 4+ years of platform engineering; experience with Temporal, Kafka and Kubernetes.
"""


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def ui_catalog(database, embeddings):  # type: ignore[no-untyped-def]
    from jdgraph.catalog.db import Database
    from jdgraph.catalog.registry import open_catalog
    from jdgraph.settings import DatabaseSettings

    db = Database(DatabaseSettings.from_env(schema=f"{database.settings.schema}_ui"))
    yield open_catalog("starter", db=db, embeddings=embeddings)
    db.close()


@pytest.fixture(scope="module")
def server(ui_catalog) -> Iterator[str]:  # type: ignore[no-untyped-def]
    import uvicorn

    from jdgraph.ui.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(ui_catalog, reviewer="ui-test"), host="127.0.0.1", port=port, log_level="error")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = _chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed: .ci/run installs it (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _shot(page: Any, name: str) -> None:
    folder = os.environ.get("JDGRAPH_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_review_run_page_and_inert_script_in_a_real_browser(ui_catalog, server: str, browser: Any) -> None:
    result = jdgraph.classify(HOSTILE_JD, run_id=str(uuid.uuid4()), catalog_reader=ui_catalog)
    assert any(q.kind == "new_skill" and q.key == "temporal" for q in result.queued), result.queued
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # The queue: find the proposal with its evidence, approve it.
    page.goto(f"{server}/review?kind=new_skill")
    row = page.locator("#queue tr", has_text="Temporal").first
    assert "experience with Temporal, Kafka" in row.inner_text()  # the evidence that proposed it
    _shot(page, "review-queue")
    row.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    assert "skill created: temporal" in page.locator(".message").inner_text()

    # The catalog now has it (a reviewed skill, found by its name).
    page.goto(f"{server}/catalog?q=Temporal")
    catalog_row = page.locator("#skills tr", has_text="temporal").first
    assert "review" in catalog_row.inner_text() and "exact" in catalog_row.inner_text()
    item = next(i for i in ui_catalog.review.list(kind="new_skill", status="approved") if i.key == "temporal")
    assert item.decided_by == "ui-test"

    # The run page: evidence highlighted in the JD, the script shown as text and never run.
    page.goto(f"{server}/runs?q=Platform")
    page.locator("#runs a", has_text=result.run_id).click()
    page.wait_for_load_state()
    marks = page.locator("#jd mark").all_inner_texts()
    assert "Kubernetes" in marks and "Terraform" in marks
    jd_text = page.locator("#jd").inner_text()
    assert "<script>window.pwned = 1" in jd_text, "the hostile markup is shown as text"
    assert page.evaluate("typeof window.pwned") == "undefined" and page.title() != "pwned"
    page.locator("#jd").hover()
    assert page.evaluate("typeof window.pwned") == "undefined" and not dialogs
    assert page.locator("#signals .bar").count() >= 3
    assert result.decision.chosen_role.display_name in page.locator("#role").inner_text()
    _shot(page, "run-page")

    # A form posted from another origin is refused before it is read.
    page.set_content(
        f'<form method="post" action="{server}/review/{item.id}/reject">'
        '<input name="reason" value="x"><input name="csrf" value="x"></form>'
    )
    with page.expect_navigation() as nav:
        page.evaluate("document.forms[0].submit()")
    assert nav.value.status == 403
    assert ui_catalog.review.get(item.id).status == "approved"
    page.close()
