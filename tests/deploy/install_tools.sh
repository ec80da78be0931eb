#!/bin/sh
# `make tools`: the Debian packages some tests run, installed only when missing and only as root:
#   prometheus       promtool and prometheus for tests/deploy
#   rabbitmq-server  a private RabbitMQ node for the wake-up broker tests (processor/devtools/rabbitmq.py)
# Their services are never started: apt runs with a policy-rc.d that refuses service starts (one is added for the
# install if the machine has none), and systemd, where it runs, gets the units disabled. Without root or apt-get
# it says so loudly and leaves it to the tests (fail in CI, skip elsewhere).
set -eu

missing=
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    missing=" prometheus"
fi
if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ] && ! command -v rabbitmq-server >/dev/null 2>&1; then
    missing="$missing rabbitmq-server"
fi
if [ -z "$missing" ]; then
    exit 0
fi

# HOOKYARD_SYSTEM_PACKAGES=no: never install anything outside .venv (the checks then skip, outside CI).
if [ "${HOOKYARD_SYSTEM_PACKAGES:-yes}" = no ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    cat >&2 <<MSG
!!! ------------------------------------------------------------------------------------------------------
!!! make tools: Debian packages missing and not installed here (needs root and apt-get, and
!!! HOOKYARD_SYSTEM_PACKAGES not set to \`no\`):$missing
!!! Install them: without prometheus the Prometheus checks in tests/deploy, without rabbitmq-server the
!!! RabbitMQ broker tests SKIP outside CI and FAIL in CI.
!!! ------------------------------------------------------------------------------------------------------
MSG
    exit 0
fi

echo "make tools: installing$missing (Debian packages; their services are not started)"
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
        # shellcheck disable=SC2086 # one word per package
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
} || status=$?
if [ -n "$added_policy" ]; then
    rm -f "$policy"
fi
if [ "$status" != 0 ]; then
    echo "make tools: apt-get install$missing failed (exit $status)" >&2
    exit "$status"
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    for package in $missing; do
        systemctl disable --quiet "$package.service" 2>/dev/null || true
    done
fi
if command -v promtool >/dev/null 2>&1; then
    promtool --version 2>&1 | head -n 1
fi
