#!/bin/sh
# install-deps.sh -- install the Debian packages tolk needs, only those missing.
set -e
PACKAGES="build-essential pkg-config libczmq-dev libzmq3-dev libmsgpack-dev libhiredis-dev
 libwebsockets-dev check libsubunit-dev libjwt-dev libjansson-dev libssl-dev
 redis-server supervisor openssl curl clang
 libcurl4-openssl-dev libpocketsphinx-dev libsphinxbase-dev pocketsphinx pocketsphinx-en-us
 pocketsphinx-testdata apertium-apy apertium-en-es apertium-en-ca apertium-en-gl apertium-eo-en
 apertium-fr-es apertium-es-pt apertium-es-it apertium-es-ro
 libespeak-ng-dev espeak-ng-data chromium nodejs
 libsndfile1-dev libsamplerate0-dev qrencode nginx-light libwebsockets-evlib-ev libev-dev libwebsockets-test-server gnuplot-nox
 python3-prometheus-client"
# npm comes inside some nodejs builds (NodeSource) and is its own package in Debian
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES npm"
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
