#!/usr/bin/env bash
# Compiles the binding's sources (g++ -fsyntax-only, the CUDA branch on) against a PyTorch 2.x header set, so a
# change to native/ that builds against Debian 12's libtorch 1.13 but not against the PyTorch wheel of a GPU host
# is caught here, before device time is spent on it. The headers are Debian 13's libtorch-dev (2.6), downloaded
# (not installed) from the Debian mirror this machine's apt already uses, into a temporary folder.
#
#   bash scripts/gpu/check-torch2.sh [--keep]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
t=$(mktemp -d /tmp/mumu-torch2.XXXXXX)
[ "${1:-}" = --keep ] || trap 'rm -rf "$t"' EXIT
say() { printf '[torch2 check] %s\n' "$*"; }

mirror=$(sed -n 's/^URIs: *\([^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(http[^ ]*debian\) .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -1)
[ -n "$mirror" ] || { say "skipped: no Debian mirror in this machine's apt sources"; exit 0; }
mkdir -p "$t/lists/partial" "$t/cache/archives/partial" "$t/root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$t/sources.list"
apt=(-oDir::Etc::SourceList="$t/sources.list" -oDir::Etc::SourceParts=/dev/null -oDir::State::Lists="$t/lists" -oDir::Cache="$t/cache" -oAPT::Architecture=amd64)
if ! apt-get "${apt[@]}" update -qq > "$t/apt.log" 2>&1 || ! (cd "$t" && apt-get "${apt[@]}" download libtorch-dev >> "$t/apt.log" 2>&1); then
  say "skipped: could not download Debian 13's libtorch-dev ($(tail -1 "$t/apt.log"))"; exit 0
fi
dpkg -x "$t"/libtorch-dev_*.deb "$t/root"
inc="$t/root/usr/include"
say "headers: libtorch-dev $(dpkg-deb -f "$t"/libtorch-dev_*.deb Version)"
napi=$(node -p "require('node-addon-api').include_dir" 2>/dev/null || echo "$repo/node_modules/node-addon-api")
nodeinc=$(dirname "$(readlink -f "$(command -v node)")")/../include/node
status=0
for src in "$repo"/native/src/*.cc; do
  # -isystem before the default /usr/include: these headers win over Debian 12's libtorch 1.13 ones
  if g++ -std=c++17 -fsyntax-only -fexceptions -frtti -Wall -Wextra -Wno-unused-parameter -Wno-deprecated-declarations \
      -DNAPI_EXPERIMENTAL -DNAPI_CPP_EXCEPTIONS -D_GLIBCXX_USE_CXX11_ABI=1 -DMUMU_WITH_CUDA=1 \
      -I"$nodeinc" -I"$napi" -isystem "$inc" -isystem "$inc/torch/csrc/api/include" "$src" 2> "$t/err.txt"; then
    say "ok: $(basename "$src")"
  else
    say "FAILED: $(basename "$src")"; grep -m5 error "$t/err.txt" | sed 's/^/    /'; status=1
  fi
done
exit $status
