# lib.sh -- sourced by the ops suites: where the tree is, and a make that
# installs from it.
TOP=${TOLK_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
export BUILD

# ops_make ARGS...: make in the repository, keeping the outer make's
# variables (SAN=1) but not its -j and jobserver, whose descriptors a
# suite does not inherit (make would warn on every call)
ops_make() {
    MAKEFLAGS=$(printf '%s' "${MAKEFLAGS:-}" | sed -e 's/ *--jobserver-[a-z]*=[^ ]*//g' -e 's/ *-j *[0-9]*//g') \
        make -s -C "$TOP" "$@" >/dev/null
}
