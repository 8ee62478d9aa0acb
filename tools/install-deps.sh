#!/bin/sh
# install-deps.sh -- install the Debian packages tolk needs, only those missing.
set -e
PACKAGES="build-essential pkg-config libczmq-dev libzmq3-dev libmsgpack-dev libhiredis-dev
 libwebsockets-dev check libsubunit-dev libjwt-dev libjansson-dev libssl-dev
 redis-server supervisor openssl curl clang"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "tolk: installing$missing"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends $missing
