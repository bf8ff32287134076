from __future__ import annotations

import pytest
from typer.testing import CliRunner

from jdgraph.catalog.db import redact_url
from jdgraph.cli import app
from jdgraph.errors import ConfigError
from jdgraph.settings import DatabaseSettings


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://bob:s3cret@db.example:5432/cat", "postgresql://bob:***@db.example:5432/cat"),
        ("postgresql://bob@db/cat", "postgresql://bob@db/cat"),
        ("host=db user=bob password=s3cret dbname=cat", "host=db user=bob password=*** dbname=cat"),
        ("postgresql://bob:p@s3cret/x@db:5432/cat", "postgresql://bob:***@db:5432/cat"),
        ("postgresql://bob:s3cret@db/cat?password=s3cret", "postgresql://bob:***@db/cat?password=***"),
        ("bob:s3cret@db", "bob:***@db"),
        ("host=db password='s3 cret s3cret' dbname=cat", "host=db password=*** dbname=cat"),
    ],
)
def test_redact_url_hides_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert "s3cret" not in redact_url(url)


def test_invalid_schema_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="JDGRAPH_DB_SCHEMA"):
        DatabaseSettings.from_env(schema="drop table; --")


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_cli_empty_query_exits_2_with_message(query: str) -> None:
    result = CliRunner().invoke(app, ["catalog", "search", "--kind", "skill", query])
    assert result.exit_code == 2
    assert "query is empty" in result.output
