#!/bin/sh
# install-deps.sh -- install the Debian packages tolk needs, only those missing.
#
# usage: tools/install-deps.sh [--test] [--bench]
#   (none)   what `make run` needs: build, run, and the README's try-it
#   --test   also what the suites need (make check, e2e, faults, fuzz; make test)
#   --bench  also what `make bench` needs (make test runs its quick form)
# Prints each missing package with the purpose it is installed for.
set -e

# make run: the compiler and the libraries tolk links; Redis, APy and its
# pairs, supervisord; curl (tolk-run waits on /readyz), openssl and qrencode
# (make run LAN=1: the certificate, the QR code); pocketsphinx-testdata holds
# the recording the README's tolk-speak example streams
RUN="build-essential pkg-config libczmq-dev libzmq3-dev libmsgpack-dev libhiredis-dev
 libwebsockets-dev libwebsockets-evlib-ev libev-dev libjwt-dev libjansson-dev libssl-dev
 libcurl4-openssl-dev libpocketsphinx-dev libsphinxbase-dev pocketsphinx pocketsphinx-en-us
 libespeak-ng-dev espeak-ng-data libsndfile1-dev libsamplerate0-dev libspeexdsp-dev
 redis-server supervisor openssl curl qrencode pocketsphinx-testdata
 apertium-apy apertium-en-es apertium-en-ca apertium-en-gl apertium-eo-en
 apertium-fr-es apertium-es-pt apertium-es-it apertium-es-ro"
# the suites: Check (unit and integration suites, and the load generator
# the fault script drives), clang (make fuzz), Chromium and Node with npm
# (make e2e), nginx (itest_proxy), systemd's systemd-analyze (tests/ops),
# pocketsphinx's Python binding and websockets (the vosk-server stand-in),
# prometheus_client's text parser (itest_metrics)
TEST="check libsubunit-dev clang chromium nodejs nginx-light systemd
 python3-pocketsphinx python3-websockets python3-prometheus-client"
# the benchmarks: Check (bench/ links the test support), the peer server
# the scenarios compare against, gnuplot for the plots, sox (bench/asr's noise)
BENCH="check libsubunit-dev libwebsockets-test-server gnuplot-nox sox"
# npm comes inside some nodejs builds (NodeSource) and is its own package in Debian
command -v npm >/dev/null 2>&1 || TEST="$TEST npm"

groups="run"
for arg in "$@"; do
    case $arg in
        --test) groups="$groups test" ;;
        --bench) groups="$groups bench" ;;
        *)
            echo "usage: $0 [--test] [--bench]" >&2
            exit 2
            ;;
    esac
done

missing=""
seen=" "
for group in $groups; do
    case $group in
        run) list=$RUN purpose="make run" ;;
        test) list=$TEST purpose="the tests" ;;
        bench) list=$BENCH purpose="make bench" ;;
    esac
    want=""
    for p in $list; do
        case $seen in *" $p "*) continue ;; esac
        seen="$seen$p "
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || want="$want $p"
    done
    [ -n "$want" ] && echo "tolk: installing for $purpose:$want"
    missing="$missing$want"
done
[ -z "$missing" ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends $missing
