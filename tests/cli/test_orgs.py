"""`hookyard orgs` and `hookyard org ORG_ID`: the mirror's organizations, as a table, one at a time, and as JSON,
on both backends."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from processor.cli import main
from tests.fixtures import cli_state
from tests.mirror.events import ORG, apply, envelope, organization
from tests.mirror.scenarios import CONNECTION, DIRECTORY, USER

OTHER = "org_01HQMIRRORZSECONDORG000000"


@pytest.fixture
def mirror(
    engine: sa.Engine,
    mirror_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> sa.Engine:
    """A mirror with two organizations: Foo Corp set up (SSO active, a directory with a user in a group) and a
    second one that only started (its connection is validating)."""
    cli_state.use_environment(monkeypatch, HOOKYARD_MIRROR_URL=mirror_url)
    monkeypatch.chdir(tmp_path)  # no dev mirror of the checkout's data directory in the way
    apply(engine, organization("organization.created", 1, domains=(("foo-corp.com", "verified"),)))
    apply(engine, envelope("connection.activated", 2, resource_id=CONNECTION, connection_type="OktaSAML"))
    apply(engine, envelope("dsync.activated", 3, resource_id=DIRECTORY, type="okta scim v2.0"))
    added = envelope("dsync.group.user_added", 4, resource_id=USER)
    apply(engine, added)
    domains = [{"object": "connection_domain", "id": "conn_domain_2", "domain": "second.example"}]
    second = envelope("connection.activated", 5, organization_id=OTHER, state="validating", domains=domains)
    apply(engine, second)
    capsys.readouterr()
    return engine


def test_orgs_lists_each_organizations_setup(mirror: sa.Engine, capsys: pytest.CaptureFixture[str]) -> None:
    # When the operator lists the organizations
    assert main(["orgs"]) == 0
    # Then each has a row: SSO and directory state with their kind, users, groups, the last event
    header, first, second = [line.split("  ") for line in capsys.readouterr().out.splitlines()]
    cells = [[cell.strip() for cell in row if cell.strip()] for row in (header, first, second)]
    assert cells[0][:3] == ["ORGANIZATION", "NAME", "SSO"]
    assert cells[1][:3] == [ORG, "Foo Corp", "active (OktaSAML)"]
    assert "active (okta scim v2.0)" in cells[1] and "dsync.group.user_added" in " ".join(cells[1])
    assert cells[2][0] == OTHER and cells[2][1] == "-" and cells[2][2].startswith("validating")


def test_orgs_pages_and_searches(mirror: sa.Engine, capsys: pytest.CaptureFixture[str]) -> None:
    # When the first page holds one organization
    assert main(["orgs", "--limit", "1", "--json"]) == 0
    page = orjson.loads(capsys.readouterr().out)
    # Then the next page starts after it
    assert [o["organization_id"] for o in page["organizations"]] == [ORG] and page["next_after"] == ORG
    assert main(["orgs", "--after", ORG, "--json"]) == 0
    assert [o["organization_id"] for o in orjson.loads(capsys.readouterr().out)["organizations"]] == [OTHER]
    # And a search matches a domain, case-insensitively, but not text that is only in the JSON's keys
    assert main(["orgs", "--search", "FOO-CORP.COM", "--json"]) == 0
    assert [o["organization_id"] for o in orjson.loads(capsys.readouterr().out)["organizations"]] == [ORG]
    assert main(["orgs", "--search", "connection_domain"]) == 0
    assert capsys.readouterr().out.strip() == "no organization matches 'connection_domain'"


def test_org_shows_one_organization(mirror: sa.Engine, capsys: pytest.CaptureFixture[str]) -> None:
    # When the operator asks about Foo Corp
    assert main(["org", ORG]) == 0
    lines = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in capsys.readouterr().out.splitlines())
    # Then it shows its setup, with since when
    assert lines["sso"].startswith("active (OktaSAML), since 2026-03-01T12:00:02")
    assert lines["directory"].startswith("active (okta scim v2.0), since 2026-03-01T12:00:03")
    assert (lines["users"], lines["groups"]) == ("1 active", "1")
    assert lines["last event"].startswith("dsync.group.user_added at 2026-03-01T12:00:04Z (")
    assert lines["last sync"].startswith("2026-03-01T12:00:04Z (") and "foo-corp.com" in lines["domains"].split(", ")
    # And as JSON, the status fields themselves
    assert main(["org", ORG, "--json"]) == 0
    document = orjson.loads(capsys.readouterr().out)
    assert (document["users"], document["groups"], document["sso_since"]) == (1, 1, "2026-03-01T12:00:02Z")
    assert document["last_sync_at"] == "2026-03-01T12:00:04Z" and "foo-corp.com" in document["domains"]


def test_org_says_when_the_mirror_never_heard_of_it(mirror: sa.Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["org", "org_unknown"]) == 1
    assert "no organization 'org_unknown'" in capsys.readouterr().err


def test_orgs_without_a_mirror_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no HOOKYARD_MIRROR_URL and no dev mirror in the data directory
    cli_state.use_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    # Then the verb names the setting
    assert main(["orgs"]) == 2
    assert "HOOKYARD_MIRROR_URL" in capsys.readouterr().err
