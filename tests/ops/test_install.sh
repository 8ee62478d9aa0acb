#!/bin/sh
# test_install.sh -- make install lays out exactly the expected tree
# (programs, config, web root, reference configs, units with their paths
# filled in), the installed config loads and points at the installed web
# root, a second install keeps an edited config (the new one as
# tolk.conf.new), and make uninstall leaves no file but that edited config.
set -eu
. "$(dirname "$0")/lib.sh"
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT

fail() {
    echo "test_install: $*" >&2
    exit 1
}
# every file under $1, relative, sorted
tree() {
    (cd "$1" && find . -type f | sed 's|^\./||' | sort)
}

# the tree install must make for PREFIX=/usr
expected() {
    for p in "$TOP/$BUILD"/bin/tolk-*; do echo "usr/bin/${p##*/}"; done
    echo etc/tolk/tolk.conf
    (cd "$TOP/web" && find . -type f | sed 's|^\./|usr/share/tolk/web/|')
    for f in "$TOP"/deploy/*; do [ -f "$f" ] && echo "usr/share/tolk/deploy/${f##*/}"; done
    for f in "$TOP"/deploy/systemd/*; do echo "usr/lib/systemd/system/${f##*/}"; done
}

ops_make install DESTDIR="$D/r" PREFIX=/usr
expected | sort > "$D/want"
tree "$D/r" > "$D/got"
diff -u "$D/want" "$D/got" >&2 || fail "the installed tree differs from the expected one"
[ "$(wc -l < "$D/got")" -gt 20 ] || fail "too few files installed"
for p in gateway control-worker status-worker audio-worker sweeper token; do
    [ -x "$D/r/usr/bin/tolk-$p" ] || fail "usr/bin/tolk-$p is not executable"
done

# the config: web_root is the installed web root, and the programs load it
conf=$D/r/etc/tolk/tolk.conf
grep -qx 'web_root = /usr/share/tolk/web' "$conf" || fail "web_root: $(grep web_root "$conf")"
[ -f "$D/r/usr/share/tolk/web/speak.html" ] || fail "no speak.html in the web root"
TOLK_CONFIG=$conf "$D/r/usr/bin/tolk-token" --sub install-test > /dev/null || fail "tolk-token does not load the installed config"

# the units: ExecStart and TOLK_CONFIG point into the install, no placeholder left
units=$D/r/usr/lib/systemd/system
! grep -l '@[a-z]*dir@' "$units"/* >&2 || fail "a placeholder is left in a unit"
for k in gateway control-worker status-worker audio-worker; do
    grep -qx "ExecStart=/usr/bin/tolk-$k" "$units/tolk-$k@.service" || fail "tolk-$k@.service: ExecStart"
    grep -qx "Environment=TOLK_CONFIG=/etc/tolk/tolk.conf" "$units/tolk-$k@.service" || fail "tolk-$k@.service: TOLK_CONFIG"
done
grep -qx "ExecStart=/usr/bin/tolk-sweeper" "$units/tolk-sweeper.service" || fail "tolk-sweeper.service: ExecStart"

# uninstall of an untouched install leaves no file
ops_make uninstall DESTDIR="$D/r" PREFIX=/usr
[ -z "$(tree "$D/r")" ] || fail "uninstall left: $(tree "$D/r")"
# and no directory of tolk's own (the shared ones, bin and the unit
# directory, may stay as DESTDIR's install -d made them)
for dir in usr/share/tolk etc/tolk; do
    [ ! -e "$D/r/$dir" ] || fail "uninstall left the directory $dir"
done

# an edited config survives a second install and the uninstall
ops_make install DESTDIR="$D/r" PREFIX=/usr
echo "max_listeners = 800" >> "$conf"
cp "$conf" "$D/edited"
ops_make install DESTDIR="$D/r" PREFIX=/usr
cmp -s "$conf" "$D/edited" || fail "a second install overwrote the edited config"
grep -qx 'web_root = /usr/share/tolk/web' "$conf.new" || fail "no tolk.conf.new beside the edited config"
ops_make uninstall DESTDIR="$D/r" PREFIX=/usr
[ "$(tree "$D/r")" = etc/tolk/tolk.conf ] || fail "uninstall with an edited config left: $(tree "$D/r")"
cmp -s "$conf" "$D/edited" || fail "uninstall changed the edited config"
[ ! -e "$D/r/usr/share/tolk" ] || fail "uninstall with an edited config left usr/share/tolk"

# any other PREFIX: the config under PREFIX/etc, every path under PREFIX
ops_make install DESTDIR="$D/l" PREFIX=/usr/local
grep -qx 'web_root = /usr/local/share/tolk/web' "$D/l/usr/local/etc/tolk/tolk.conf" || fail "PREFIX=/usr/local: web_root"
grep -qx 'ExecStart=/usr/local/bin/tolk-gateway' "$D/l/usr/local/lib/systemd/system/tolk-gateway@.service" || fail "PREFIX=/usr/local: ExecStart"
grep -qx 'Environment=TOLK_CONFIG=/usr/local/etc/tolk/tolk.conf' "$D/l/usr/local/lib/systemd/system/tolk-sweeper.service" || fail "PREFIX=/usr/local: TOLK_CONFIG"
ops_make uninstall DESTDIR="$D/l" PREFIX=/usr/local
[ -z "$(tree "$D/l")" ] || fail "PREFIX=/usr/local: uninstall left: $(tree "$D/l")"
echo "test_install: $(wc -l < "$D/want") files installed and removed; an edited config is kept"
