"""Migration 0017: every admin of before roles becomes an owner, and so does one added without a role."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from billportal.storage.migrate import upgrade

COMPANY = "INSERT INTO companies (id, username, name, created_at, updated_at) VALUES (1, 'acme', 'Acme', 0, 0)"


def test_existing_admins_become_owners(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'roles.db'}")
    try:
        with engine.begin() as connection:
            upgrade(connection, "0012")
            connection.execute(text(COMPANY))
            for admin_id, email in ((1, "ada@acme.example"), (2, "bob@acme.example")):
                connection.execute(
                    text(
                        "INSERT INTO admins (id, email, password_hash, created_at, password_changed_at)"
                        " VALUES (:id, :email, 'x', 0, 0)"
                    ),
                    {"id": admin_id, "email": email},
                )
            connection.execute(text("INSERT INTO admin_memberships (admin_id, company_id) VALUES (1, 1)"))
            assert connection.execute(text("SELECT role FROM admin_memberships")).scalar() == "admin"
            upgrade(connection, "0017")
            connection.execute(text("INSERT INTO admin_memberships (admin_id, company_id) VALUES (2, 1)"))
            roles = connection.execute(text("SELECT admin_id, role FROM admin_memberships ORDER BY admin_id")).all()
        assert [tuple(row) for row in roles] == [(1, "owner"), (2, "owner")]
    finally:
        engine.dispose()
