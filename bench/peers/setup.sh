#!/usr/bin/env bash
# Installs the peer tools for bench/peers/run.sh (not run by CI).
#
# Two Python environments, because Debian's CPU-only torch (1.13, built against Debian's
# NumPy 1.24) must not meet the newer NumPy that current JAX and numba pull from PyPI:
#   * bench/peers/.venv          — pip: numpy, numba, jax[cpu], diffrax (+ equinox, jaxtyping)
#   * system /usr/bin/python3    — apt: python3-torch, python3-scipy; pip --no-deps: torchsde,
#                                  trampoline (torchsde's only other dependency)
# Needs root for apt-get (or run the apt line yourself) and network access to the package
# registries (Debian, PyPI).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3-torch python3-scipy python3-venv python3-pip
fi
if ! /usr/bin/python3 -c "import torchsde" 2>/dev/null; then
    /usr/bin/python3 -m pip install --break-system-packages --no-deps torchsde trampoline
fi

if [ ! -x "$here/.venv/bin/python" ]; then
    /usr/bin/python3 -m venv "$here/.venv"
fi
"$here/.venv/bin/python" -m pip install --upgrade pip
"$here/.venv/bin/python" -m pip install numpy numba "jax[cpu]" diffrax
"$here/.venv/bin/python" - <<'PY'
import numpy, numba, jax, diffrax
print("venv:", "numpy", numpy.__version__, "numba", numba.__version__, "jax", jax.__version__, "diffrax", diffrax.__version__)
PY
/usr/bin/python3 -c "import torch, torchsde; print('system:', 'torch', torch.__version__, 'torchsde', torchsde.__version__)"
