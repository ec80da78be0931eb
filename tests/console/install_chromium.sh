#!/bin/sh
# `make tools` (browser part): Debian's `chromium` for the console's browser tests (tests/console), installed only
# when missing and only as root, the way tests/deploy/install_tools.sh installs promtool. Playwright drives this
# binary (/usr/bin/chromium); `playwright install` and its downloaded browsers are never used.
set -eu

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

# HOOKYARD_SYSTEM_PACKAGES=no: never install anything outside .venv (the browser tests then skip, outside CI).
if [ "${HOOKYARD_SYSTEM_PACKAGES:-yes}" = no ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    cat >&2 <<'MSG'
!!! ------------------------------------------------------------------------------------------------------
!!! make tools: /usr/bin/chromium is missing and is not installed here (needs root and apt-get, and
!!! HOOKYARD_SYSTEM_PACKAGES not set to `no`).
!!! Install Debian's `chromium` package: without it the console's browser tests (tests/console) SKIP
!!! outside CI and FAIL in CI.
!!! ------------------------------------------------------------------------------------------------------
MSG
    exit 0
fi

echo "make tools: installing chromium (Debian package) for the console's browser tests"
status=0
{
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
} || status=$?
if [ "$status" != 0 ]; then
    echo "make tools: apt-get install chromium failed (exit $status)" >&2
    exit "$status"
fi
/usr/bin/chromium --version 2>&1 | head -n 1
