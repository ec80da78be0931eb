"""Example Hookyard plugin: a SQLite mirror of WorkOS directory users and group memberships."""
