"""The WorkOS mirror: a built-in, opt-in handler set (`HOOKYARD_MIRROR_URL`) that keeps a SQL copy of what
WorkOS sent — organizations, SSO connections, directories, their users and groups — right under any order and
any redelivery of the events, and the queries an app asks of it (docs/mirror.md)."""
