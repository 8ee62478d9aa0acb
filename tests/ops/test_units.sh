#!/bin/sh
# test_units.sh -- every systemd unit in deploy/systemd/, installed by
# `make install DESTDIR=... PREFIX=/usr` (paths filled in), passes
# `systemd-analyze verify` without a word about a tolk unit.
#
# There is no running systemd here (a container), so verify runs with
# --root on the install tree; the distribution's own units (sysinit.target,
# multi-user.target, ...) are copied into that root so that the default
# dependencies resolve, and ExecStart is checked against the installed
# binaries. A deliberately broken copy must be reported, so that a verify
# that silently looked at nothing cannot pass.
set -eu
. "$(dirname "$0")/lib.sh"
command -v systemd-analyze >/dev/null || { echo "test_units: systemd-analyze missing (tools/install-deps.sh --test)" >&2; exit 1; }
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
UNITDIR=$ROOT/usr/lib/systemd/system

ops_make install DESTDIR="$ROOT" PREFIX=/usr
mkdir -p "$ROOT/lib/systemd/system"
for f in /lib/systemd/system/*; do
    case ${f##*/} in tolk*) ;; *) cp -a "$f" "$ROOT/lib/systemd/system/" ;; esac
done

# the unit names to verify: templates get an instance (a gateway's is its port)
units=""
for f in "$UNITDIR"/tolk*; do
    name=${f##*/}
    case $name in
        tolk-gateway@.service) name=tolk-gateway@8080.service ;;
        *@.service) name=${name%@.service}@1.service ;;
    esac
    units="$units $name"
done
[ "$(echo "$units" | wc -w)" -eq "$(ls "$TOP"/deploy/systemd | wc -w)" ] || { echo "test_units: not every unit was installed" >&2; exit 1; }

# verify does not mind a Wants= naming no unit: every unit tolk.target
# wants must be installed (an instance, its template)
for w in $(sed -n 's/^Wants=//p' "$UNITDIR/tolk.target"); do
    f=$(echo "$w" | sed 's/@[^.]*\./@./')
    [ -f "$UNITDIR/$f" ] || { echo "test_units: tolk.target wants $w, and $f is not installed" >&2; exit 1; }
done

# prints what systemd-analyze verify said about the tolk units, and its exit status when not 0
verify() {
    out=$(systemd-analyze verify --root="$ROOT" --man=no $units 2>&1) && rc=0 || rc=$?
    echo "$out" | grep -i tolk || true
    [ "$rc" -eq 0 ] || echo "systemd-analyze verify: exit $rc"
}

said=$(verify)
if [ -n "$said" ]; then
    echo "test_units: systemd-analyze verify complained:" >&2
    echo "$said" >&2
    exit 1
fi
echo "test_units: verified$units"

# the negative control: an unknown key and a missing binary are reported
sed -i 's/^NoNewPrivileges=/NoNewPrivilegs=/' "$UNITDIR/tolk-sweeper.service"
rm "$ROOT/usr/bin/tolk-gateway"
said=$(verify)
echo "$said" | grep -q "Unknown key 'NoNewPrivilegs'" || { echo "test_units: a broken unit was not reported: $said" >&2; exit 1; }
echo "$said" | grep -q "/usr/bin/tolk-gateway is not executable" || { echo "test_units: a missing binary was not reported: $said" >&2; exit 1; }
echo "test_units: a broken copy is reported"
