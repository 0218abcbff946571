# shellcheck shell=bash
# Shared by scripts/emulators and tools/emulators/freeze: finding a Python and reading the
# "# key: value" header lines of the requirement files.

die() {
    printf 'emulators: %s\n' "$*" >&2
    exit 1
}

# header_value FILE KEY: the value of the first "# KEY: value" line of FILE.
header_value() {
    sed -n "s/^# $2: *//p" "$1" | head -n 1
}

# The platform the recorded hashes are for, as written in the requirement files.
this_platform() {
    printf '%s %s\n' "$(uname -s)" "$(uname -m)"
}

pyenv_root() {
    if command -v pyenv >/dev/null 2>&1 && pyenv root 2>/dev/null; then
        return
    fi
    printf '%s\n' "${PYENV_ROOT:-$HOME/.pyenv}"
}

# find_python WANT MIN: prints "EXECUTABLE X.Y" of a working Python, preferring version WANT
# (pythonWANT on PATH, then pyenv's versions/WANT*), else the newest one found that is at least
# MIN. Candidates are run, not just looked up: a pyenv shim exists for every version pyenv
# has but fails unless that version is selected.
find_python() {
    local want=$1 min=$2 root c out
    local -a candidates=()
    root=$(pyenv_root)
    candidates+=("python$want")
    for c in "$root"/versions/"$want"*/bin/python"$want"; do
        candidates+=("$c")
    done
    for c in $(printf '%s\n' "$root"/versions/3.*/bin/python3 | sort -V -r); do
        candidates+=("$c")
    done
    candidates+=(python3.14 python3.13 python3.12 python3.11 python3.10 python3)
    for c in "${candidates[@]}"; do
        if out=$("$c" -c '
import sys
want = tuple(int(x) for x in sys.argv[1].split("."))
have = sys.version_info[:2]
if have != want: sys.exit(1)
print(sys.executable, "%d.%d" % have)' "$want" 2>/dev/null); then
            printf '%s\n' "$out"
            return 0
        fi
    done
    for c in "${candidates[@]}"; do
        if out=$("$c" -c '
import sys
least = tuple(int(x) for x in sys.argv[1].split("."))
if sys.version_info[:2] < least: sys.exit(1)
print(sys.executable, "%d.%d" % sys.version_info[:2])' "$min" 2>/dev/null); then
            printf '%s\n' "$out"
            return 0
        fi
    done
    return 1
}
