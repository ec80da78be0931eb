"""The WorkOS mirror, for apps: what Hookyard's built-in mirror (`HOOKYARD_MIRROR_URL`) knows about each
organization's SSO and Directory Sync setup, its directories' users and their groups (docs/mirror.md).

    from hookyard.mirror import mirror_engine, organization_status

    engine = mirror_engine("postgresql+psycopg://app@db/hookyard")
    status = organization_status(engine, "org_01EHWNCE74X7JSDV0X3SZ3KJNY")
    if status is not None and status.sso_state == "active": ...
"""

from __future__ import annotations

# Reading the mirror
from processor.mirror.queries import DirectoryGroup, DirectoryUser, groups_of_user, users_of_directory
from processor.mirror.status import OrganizationStatus, mirror_engine, organization_status, organization_statuses

__all__ = [
    # Reading the mirror
    "DirectoryGroup",
    "DirectoryUser",
    "OrganizationStatus",
    "groups_of_user",
    "mirror_engine",
    "organization_status",
    "organization_statuses",
    "users_of_directory",
]
