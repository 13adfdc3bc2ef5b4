#!/usr/bin/env bash
# One idempotent set-up for every entry point (README commands, npm test, benches, CI): installs libtorch, OpenBLAS
# and Gloo's headers with apt when missing, npm dependencies when missing, and builds the native binding when stale.
# Fast (about a second) when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[mumu setup] %s\n' "$*" >&2; }

have_libtorch() {
  [ -n "${LIBTORCH:-}" ] && return 0
  [ -d /usr/include/torch ] && ls /usr/lib/*/libtorch_cpu.so >/dev/null 2>&1 && return 0
  python3 -c 'import torch' >/dev/null 2>&1 && return 0
  return 1
}

apt_install() {
  local pkgs="$*"
  if [ "$(id -u)" != 0 ]; then
    say "missing system packages. Run as root:  apt-get update && apt-get install -y $pkgs"
    exit 1
  fi
  say "installing $pkgs with apt (one time, a few minutes)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq $pkgs >/dev/null
  # the linker's cache must know the new libraries before the BLAS check below asks it
  ldconfig
}

if [ -f /etc/debian_version ]; then
  missing=""
  have_libtorch || missing="libtorch-dev"
  # Without OpenBLAS, Debian's libtorch falls back to the reference BLAS: matmul is ~30x slower.
  if [ -z "${LIBTORCH:-}" ] && ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then missing="$missing libopenblas0-pthread"; fi
  # Debian's libtorch ships c10d's headers (torch.distributed's engine) but not the Gloo headers they include.
  if [ -z "${LIBTORCH:-}" ] && { [ -d /usr/include/torch ] || [ -n "$missing" ]; } && [ ! -f /usr/include/gloo/context.h ]; then
    missing="$missing libgloo-dev"
  fi
  [ -n "$missing" ] && apt_install $missing
elif ! have_libtorch; then
  say "libtorch not found: set LIBTORCH to a libtorch folder, or install PyTorch for python3"
  exit 1
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  # playwright-core (the browser test's driver) has no install script; these keep any browser package from fetching one
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

addon=native/build/Release/mumu_torch.node
stamp=native/build/libtorch.txt  # what the addon was built against: a change (Gloo headers installed since) rebuilds
found="$(node scripts/find-libtorch.mjs describe)"
stale=0
[ -f "$addon" ] || stale=1
if [ $stale = 0 ] && [ -n "$(find native/src native/binding.gyp scripts/find-libtorch.mjs -newer "$addon" 2>/dev/null | head -1)" ]; then stale=1; fi
if [ $stale = 0 ] && [ "$(cat "$stamp" 2>/dev/null)" != "$found" ]; then stale=1; fi
if [ $stale = 1 ]; then
  say "building the libtorch binding ($found; about a minute)"
  nodedir=()
  [ -f /usr/include/node/node_api.h ] && nodedir=(--nodedir=/usr)
  build() { (cd native && npx --no-install node-gyp rebuild -j 2 "${nodedir[@]}" --loglevel=error >&2); }
  if ! build; then
    # The NCCL part (native/src/distributed_nccl.cc) is only compiled on CUDA hosts, never on the machine this
    # project is developed on: if it breaks a build, build without it rather than not at all.
    [[ $found == *NCCL* ]] || { say "native build failed (see above)"; exit 1; }
    say "native build with NCCL failed (see above): building without NCCL (MUMU_NCCL=0); CUDA tensors then use Gloo"
    export MUMU_NCCL=0
    found="$(node scripts/find-libtorch.mjs describe)"
    build || { say "native build failed (see above)"; exit 1; }
  fi
  printf '%s\n' "$found" > "$stamp"
fi

# The BLAS that libtorch really calls at run time is the one the dynamic linker picks for libblas.so.3.
[ -n "${MUMU_SKIP_BLAS_CHECK:-}" ] || bash scripts/blas-check.sh "$addon"
