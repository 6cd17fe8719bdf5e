# Shared by bin/run, bin/test and bin/bench: a virtualenv in .venv with the given
# requirements file installed. Reinstalls only when a requirements file changed.

pick_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "error: Python 3.11 or newer is needed (python3 --version says: $(python3 --version 2>&1))" >&2
    return 1
}

ensure_venv() {
    requirements="$1"
    if [ ! -x .venv/bin/python ]; then
        python=$(pick_python)
        if ! "$python" -m venv .venv 2>/dev/null; then
            # Debian and Ubuntu ship venv separately.
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
                rm -rf .venv
                "$python" -m venv .venv
            else
                echo "error: '$python -m venv' failed; install your distribution's python3-venv package" >&2
                return 1
            fi
        fi
    fi
    # One stamp per requirements file, named after the content of all of them
    # (they include each other): reinstall when any of them changed.
    name=$(basename "$requirements" .txt)
    stamp=.venv/.installed-$name-$(cat requirements*.txt | cksum | cut -d' ' -f1)
    if [ ! -f "$stamp" ]; then
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
        rm -f .venv/.installed-"$name"-*
        touch "$stamp"
    fi
}
