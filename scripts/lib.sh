# Shared by scripts/cluster and scripts/test: install missing Debian packages.
# Sourced, not run.

# apt_install_missing CMD:PACKAGE...: installs PACKAGE when CMD is not on PATH. Runs
# `apt-get update` first, and only when something is missing.
apt_install_missing() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    ((${#missing[@]})) || return 0
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}
