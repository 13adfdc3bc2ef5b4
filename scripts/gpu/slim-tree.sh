#!/usr/bin/env bash
# Makes the working tree that a device call sends fit the tool's 64 MiB beside the bundle: removes from the working
# tree (not from git) the tracked files under models/ and docs/ that a GPU stage does not read, keeping the model
# folders the config names (its init and from paths) and the evaluator; --restore checks them out again.
#
#   bash scripts/gpu/slim-tree.sh --config configs/t2i-base.json   # before the device calls
#   bash scripts/gpu/slim-tree.sh --restore                        # after them
#
# Lossless: it refuses while models/ or docs/ have uncommitted changes, and --restore takes the files from HEAD.
set -euo pipefail
cd "$(dirname "$0")/../.."
die() { printf 'slim-tree: %s\n' "$*" >&2; exit 2; }
tracked_mib() { git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | awk '{printf "%.1f", $1 / 1048576}'; }

if [ "${1:-}" = "--restore" ]; then
  git ls-files -z --deleted -- models docs | xargs -0 -r git checkout HEAD --
  echo "slim-tree: restored; tracked tree $(tracked_mib) MiB"
  exit 0
fi
[ "${1:-}" = "--config" ] && [ -f "${2:-}" ] || die "usage: slim-tree.sh --config <stage config> | --restore"
[ -z "$(git status --porcelain -- models docs)" ] || die "models/ or docs/ have uncommitted changes: commit them first"
# the paths the stage reads: its init and every from, as the trainer resolves them (relative to the repo root)
resolved="$(node --single-threaded-gc bin/mumu.js train --config "$2" --print-config)" || die "cannot read $2 (see above)"
mapfile -t keep < <(node -e '
  const c = JSON.parse(process.argv[1]);
  for (const p of [c.init, ...Object.values(c.from ?? {})]) if (p) console.log(require("path").relative(".", p));
' "$resolved")
keep+=(models/evaluator)
removed=0
while IFS= read -r -d '' f; do
  for k in "${keep[@]}"; do case "$f" in "$k"/* | "$k") continue 2 ;; esac; done
  rm -f -- "$f" && removed=$((removed + 1))
done < <(git ls-files -z -- models docs)
echo "slim-tree: $removed tracked files under models/ and docs/ removed from the working tree (kept: ${keep[*]});" \
  "tracked tree now $(tracked_mib) MiB; bash scripts/gpu/slim-tree.sh --restore brings them back"
