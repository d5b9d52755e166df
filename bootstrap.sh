#!/usr/bin/env bash
# Set up droptop on a Debian/Ubuntu machine, then run it or its tests. As root:
#
#   ./bootstrap.sh run [droptop options]   install what is missing, start droptop
#   ./bootstrap.sh test [pytest options]   install what is missing, run the whole test suite
#
# Installs only what is missing (apt packages, a venv in .venv made with
# --system-site-packages so that Debian's bcc is visible, droptop itself), so a
# second run starts at once. Changes no system directory beyond apt's and the
# tracefs mount.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

mode="${1:-run}"
shift || true

say() { printf 'bootstrap: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    say "run me as root (droptop loads a BPF program; apt installs need root too)"
    exit 1
fi

# --- apt packages ------------------------------------------------------------
arch="$(dpkg --print-architecture)"
want=(python3-bpfcc python3-venv python3-pip nftables iproute2 bpftool)
if [ "$mode" = test ]; then
    # The tests check droptop against real peers: Prometheus scrapes it (and promtool
    # checks its rules), tcpdump and tshark read its pcapng.
    want+=(prometheus tcpdump tshark)
fi
headers_pkg=""
if [ ! -d "/lib/modules/$(uname -r)/build/include" ] && ! ls -d /usr/src/linux-headers-* >/dev/null 2>&1; then
    headers_pkg="want"
fi
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] || [ -n "$headers_pkg" ]; then
    say "installing: ${missing[*]:-} ${headers_pkg:+kernel headers}"
    apt-get update -qq
    if [ -n "$headers_pkg" ]; then
        # The running kernel's headers if the archive has them, else the distribution's
        # current ones: droptop takes struct offsets from BTF, so any version works.
        for cand in "linux-headers-$(uname -r)" "linux-headers-$arch" linux-headers-generic; do
            if apt-cache show "$cand" >/dev/null 2>&1; then
                missing+=("$cand")
                break
            fi
        done
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- tracefs (for the tracepoint format file, droptop's second source of names) ---
if [ -d /sys/kernel/tracing ] && [ ! -e /sys/kernel/tracing/events ]; then
    mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || say "could not mount tracefs (names still come from BTF)"
fi

# --- venv and droptop ----------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
    say "creating .venv (with system site packages, for bcc)"
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.droptop-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    say "installing droptop and its test tools into .venv"
    if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' >.venv/pip.log 2>&1; then
        cat .venv/pip.log >&2
        say "pip install failed (log above, also in .venv/pip.log)"
        exit 1
    fi
    touch "$stamp"
fi

case "$mode" in
    run)
        exec .venv/bin/droptop "$@"
        ;;
    test)
        exec .venv/bin/python -m pytest -q -rs "$@"
        ;;
    *)
        say "usage: ./bootstrap.sh run|test [args]"
        exit 2
        ;;
esac
