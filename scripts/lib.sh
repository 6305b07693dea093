# Shared by scripts/quickstart.sh and scripts/test.sh: Debian packages and the project venv.
# shellcheck shell=bash

# ensure_apt PKG...: install the Debian packages that are missing, without starting their
# services (the tests start nginx, Apache and lighttpd themselves, on loopback ports).
ensure_apt() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "==> apt-get install ${missing[*]}"
    local guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        guard=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$guard" >/dev/null
        $sudo chmod +x "$guard"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
    [ -z "$guard" ] || $sudo rm -f "$guard"
}

# ensure_venv EXTRAS: a .venv with wsgigate installed in editable mode plus the given extras.
ensure_venv() {
    local extras="$1"
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "wsgigate needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
        return 1
    fi
    if [ ! -x .venv/bin/python ]; then
        "$python" -m venv .venv 2>/dev/null || {
            ensure_apt python3-venv
            rm -rf .venv
            "$python" -m venv .venv
        }
    fi
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    # pip refuses ".[]": no brackets without extras (scripts/quickstart.sh passes none)
    .venv/bin/python -m pip install -q -e ".${extras:+[${extras}]}"
}
