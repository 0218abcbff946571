# shellcheck shell=bash
# Shared by scripts/bench-plan and scripts/test: the Sceptre venv (.venv/sceptre) from the pinned,
# hashed tools/bench/sceptre.txt. Source tools/emulators/lib.sh first (find_python, header_value,
# this_platform, die); run from the repository's root.

# The Sceptre venv, made the way scripts/emulators makes moto's: --require-hashes where the
# Python version and platform are those the hashes were recorded for, the same == pins elsewhere;
# skipped when .venv/sceptre/.requirements.sha256 matches.
setup_sceptre() {
    local req=tools/bench/sceptre.txt venv=.venv/sceptre want platform py version stamp hashes=yes
    want=$(header_value "$req" python)
    platform=$(header_value "$req" platform)
    read -r py version < <(find_python "$want" 3.9) ||
        die "Sceptre needs Python $want (or at least 3.9): none found on PATH or in $(pyenv_root)/versions"
    if [[ $version != "$want" || $platform != "$(this_platform)" || -n ${FORMWORK_BENCH_NO_HASHES:-} ]]; then
        hashes=no
    fi
    stamp="$(sha256sum "$req" | cut -d' ' -f1) python=$version hashes=$hashes"
    if [[ -f $venv/.requirements.sha256 && $(<"$venv/.requirements.sha256") == "$stamp" && -x $venv/bin/sceptre ]]; then
        return 0
    fi
    echo "setting up $venv (Python $version, hashes: $hashes) ..."
    rm -rf "$venv"
    local -a pip_args=(--quiet --no-input --disable-pip-version-check)
    local log
    log=$(mktemp)
    if [[ $hashes == yes ]]; then
        pip_args+=(--require-hashes -r "$req")
    else
        sed -e 's/ *\\$//' -e '/^ *--hash=/d' "$req" >"$log.req"
        pip_args+=(-r "$log.req")
    fi
    if ! { "$py" -m venv "$venv" && "$venv/bin/python" -m pip install "${pip_args[@]}"; } >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        rm -rf "$venv" "$log" "$log.req"
        die "setting up the Sceptre venv failed"
    fi
    printf '%s\n' "$stamp" >"$venv/.requirements.sha256"
    rm -f "$log" "$log.req"
}
