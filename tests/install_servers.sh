#!/usr/bin/env sh
# Install Redis and PostgreSQL from Debian's packages when they are missing (root only; never
# fails the build: without them the tests that need them skip and say why).
have_postgres() { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
if command -v redis-server >/dev/null 2>&1 && have_postgres; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "redis-server or PostgreSQL missing and no root apt-get to install them: their tests will skip" >&2
    exit 0
fi
packages=""
command -v redis-server >/dev/null 2>&1 || packages="$packages redis-server"
have_postgres || packages="$packages postgresql"
echo "installing$packages from Debian's packages (for the tests' servers on 127.0.0.1)" >&2
export DEBIAN_FRONTEND=noninteractive
(apt-get install -y -q --no-install-recommends $packages || (apt-get update -q && apt-get install -y -q --no-install-recommends $packages)) >/dev/null 2>&1 \
    || echo "could not install$packages: their tests will skip" >&2
# Debian starts the services it installs; the tests start their own on free ports
(service redis-server stop || true) >/dev/null 2>&1
exit 0
