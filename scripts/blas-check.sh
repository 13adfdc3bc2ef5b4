#!/usr/bin/env bash
# Which BLAS libtorch really calls: the one the dynamic linker picks for libblas.so.3 when it loads the binding.
# Warns (and still exits 0) when that is not OpenBLAS or MKL: Debian's reference BLAS is ~30x slower.
# ldd's output is read whole before it is searched: `ldd | grep -q` under pipefail fails whenever grep has its match
# and stops reading before ldd has written everything (ldd dies of SIGPIPE), which warned about a BLAS that was
# there in about one run in five (the first run after the install, say).
set -euo pipefail
addon=${1:?usage: blas-check.sh path/to/mumu_torch.node}
libs=$(ldd "$addon" 2>/dev/null || true)
if ! grep -qiE 'openblas|mkl' <<<"$libs"; then
  cat >&2 <<'WARN'
[mumu setup] ***************************************************************************************
[mumu setup] WARNING: libtorch is NOT using OpenBLAS/MKL: matrix products will be ~30x slower.
[mumu setup] Fix: apt-get install -y libopenblas0-pthread   (then libblas.so.3 points to OpenBLAS)
[mumu setup] ***************************************************************************************
WARN
fi
