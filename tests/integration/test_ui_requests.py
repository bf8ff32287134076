"""The web page against the real database through Starlette's TestClient (issue 19): only this machine's own Host
names are answered (a DNS-rebinding page gets 400, no CSRF cookie, and cannot approve), ``--allowed-host`` adds
one, and a query parameter holding a NUL, or too long, is a 400 page saying so, not a 500."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import jdgraph
from jdgraph.errors import InputError

pytestmark = pytest.mark.integration

JD = """Platform Engineer
Acme Cloud is hiring a Platform Engineer in Berlin, Germany (hybrid).
Responsibilities:
- Run our Temporal workflows and Kubernetes clusters in production.
Requirements:
- 4+ years of platform engineering; experience with Temporal, Kafka and Kubernetes.
"""


@pytest.fixture(scope="module")
def ui_catalog(database: Any, embeddings: Any) -> Iterator[Any]:
    from jdgraph.catalog.db import Database
    from jdgraph.catalog.registry import open_catalog
    from jdgraph.settings import DatabaseSettings

    db = Database(DatabaseSettings.from_env(schema=f"{database.settings.schema}_uireq"))
    catalog = open_catalog("starter", db=db, embeddings=embeddings)
    jdgraph.classify(JD, run_id=str(uuid.uuid4()), catalog_reader=catalog)
    yield catalog
    db.close()


def _client(catalog: Any, host: str = "127.0.0.1:8765", allowed_hosts: list[str] | None = None) -> Any:
    from starlette.testclient import TestClient

    from jdgraph.ui.app import create_app

    app = create_app(catalog, reviewer="ui-test", allowed_hosts=allowed_hosts)
    # raise_server_exceptions=False: a bug is the 500 a browser would get, not an exception in the test.
    return TestClient(app, base_url=f"http://{host}", raise_server_exceptions=False)


@pytest.fixture
def pending(ui_catalog: Any) -> Iterator[int]:
    """A pending review item of the catalog (one per test: an approval closes it)."""
    items = [i for i in ui_catalog.review.list(status="pending", limit=200)]
    assert items, "the JD proposed nothing"
    yield items[0].id


def _post_approve(client: Any, item_id: int, host: str) -> Any:
    token = "t" * 32
    client.cookies.set("jdgraph_csrf", token)
    return client.post(
        f"/review/{item_id}/approve",
        data={"csrf": token, "reviewer": "attacker"},
        headers={"host": host, "origin": f"http://{host}", "sec-fetch-site": "same-origin"},
        follow_redirects=False,
    )


def test_a_foreign_host_gets_400_and_no_page_or_csrf_cookie(ui_catalog: Any) -> None:
    client = _client(ui_catalog)
    for path in ("/review", "/runs", "/catalog?q=kafka", "/"):
        response = client.get(path, headers={"host": "evil.example:8765"}, follow_redirects=False)
        assert response.status_code == 400, (path, response.status_code)
        assert "jdgraph_csrf" not in response.headers.get("set-cookie", "")
        assert 'name="csrf"' not in response.text


def test_a_rebound_post_cannot_approve(ui_catalog: Any, pending: int) -> None:
    response = _post_approve(_client(ui_catalog), pending, "evil.example:8765")
    assert response.status_code == 400
    assert ui_catalog.review.get(pending).status == "pending"  # read back from the database


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "127.0.0.1", "localhost:8765", "localhost", "[::1]:8765", "[::1]"])
def test_the_loopback_names_are_answered(ui_catalog: Any, host: str) -> None:
    response = _client(ui_catalog).get("/review", headers={"host": host})
    assert response.status_code == 200
    assert "jdgraph_csrf" in response.headers.get("set-cookie", "")


def test_a_same_origin_post_on_an_allowed_name_still_approves(ui_catalog: Any, pending: int) -> None:
    response = _post_approve(_client(ui_catalog), pending, "localhost:8765")
    assert response.status_code == 303, response.text
    assert ui_catalog.review.get(pending).status == "approved"


def test_allowed_host_adds_a_name_and_a_specific_bind_address_is_one(ui_catalog: Any) -> None:
    from jdgraph.ui.app import host_names

    hosts = host_names("127.0.0.1", ["JD.example.org", "proxy.internal:443"])
    assert hosts == ["127.0.0.1", "localhost", "[::1]", "jd.example.org", "proxy.internal"]
    client = _client(ui_catalog, allowed_hosts=hosts)
    assert client.get("/review", headers={"host": "jd.example.org"}).status_code == 200
    assert client.get("/review", headers={"host": "proxy.internal:8765"}).status_code == 200
    assert client.get("/review", headers={"host": "evil.example"}).status_code == 400
    assert host_names("192.168.1.5")[-1] == "192.168.1.5"
    assert host_names("fe80::1")[-1] == "[fe80::1]"
    assert host_names("0.0.0.0") == host_names("::") == ["127.0.0.1", "localhost", "[::1]"]  # name no host
    with pytest.raises(InputError, match="is not a host name"):
        host_names("127.0.0.1", ["evil.example/x"])


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/review?q=%00", "The search text holds a NUL character"),
        ("/runs?q=a%00b", "The search text holds a NUL character"),
        ("/catalog?q=kaf%00ka", "The search text holds a NUL character"),
        ("/review?kind=new_skill&status=%00", "The parameter 'status' holds a NUL character"),
        ("/review/1?message=%00", "The parameter 'message' holds a NUL character"),
        ("/runs/%00", "The address holds a NUL character"),
        ("/runs?q=" + "a" * 2001, "The search text is 2,001 characters long; the limit is 2,000"),
    ],
)
def test_a_bad_query_parameter_is_a_400_page_that_says_so(ui_catalog: Any, path: str, says: str) -> None:
    response = _client(ui_catalog).get(path)
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert says in re.sub(r"&#3[49];", "'", response.text)
    assert response.headers["content-security-policy"]  # the error page carries the page's headers too
