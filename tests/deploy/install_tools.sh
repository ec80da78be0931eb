#!/bin/sh
# `make tools`: promtool and prometheus for tests/deploy, from Debian's `prometheus` package, installed only when
# missing and only as root. The package's service is never started: apt runs with a policy-rc.d that refuses
# service starts (one is added for the install if the machine has none), and systemd, where it runs, gets the
# unit disabled. Without root or apt-get it says so loudly and leaves it to the tests (fail in CI, skip elsewhere).
set -eu

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    exit 0
fi

# HOOKYARD_SYSTEM_PACKAGES=no: never install anything outside .venv (the checks then skip, outside CI).
if [ "${HOOKYARD_SYSTEM_PACKAGES:-yes}" = no ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    cat >&2 <<'MSG'
!!! ------------------------------------------------------------------------------------------------------
!!! make tools: promtool/prometheus are missing and are not installed here (needs root and apt-get, and
!!! HOOKYARD_SYSTEM_PACKAGES not set to `no`).
!!! Install Debian's `prometheus` package (or put promtool and prometheus on PATH): without them the
!!! Prometheus checks in tests/deploy SKIP outside CI and FAIL in CI.
!!! ------------------------------------------------------------------------------------------------------
MSG
    exit 0
fi

echo "make tools: installing promtool and prometheus (Debian package prometheus; its service is not started)"
policy=/usr/sbin/policy-rc.d
added_policy=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# Added by hookyard make tools for one apt-get install: start no services.\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added_policy=1
fi
status=0
{
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
} || status=$?
if [ -n "$added_policy" ]; then
    rm -f "$policy"
fi
if [ "$status" != 0 ]; then
    echo "make tools: apt-get install prometheus failed (exit $status)" >&2
    exit "$status"
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --quiet prometheus.service 2>/dev/null || true
fi
promtool --version 2>&1 | head -n 1
