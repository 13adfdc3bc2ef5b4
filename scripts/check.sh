#!/usr/bin/env bash
# The habits CI enforces before the tests (.ci/run; `npm run check` by hand): the types, the lint rules, and the
# formatting (prettier at width 120; clang-format for native/ where it is installed). The whole tree is formatted
# (scripts/format-tree.sh, commit 1ac7092); files listed in a .format-pending (`format-tree.sh --pending`, after
# merging a branch that brings unformatted files) are left out of the format check until formatted. Exits non-zero
# on the first failing check.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[mumu check] %s\n' "$*" >&2; }

say 'types (tsc --noEmit)'
npx --no-install tsc --noEmit

say 'lint (eslint)'
npx --no-install eslint src test bench scripts bin

say 'format (prettier --check)'
ignore=(--ignore-path .gitignore --ignore-path .prettierignore)
[ -f .format-pending ] && ignore+=(--ignore-path .format-pending)
npx --no-install prettier --check --log-level warn "${ignore[@]}" . || {
  say 'format: the files above differ from prettier: npx prettier --write FILE (or npm run format)'
  exit 1
}

if command -v clang-format >/dev/null 2>&1; then
  say 'format (clang-format, native/)'
  mapfile -t native < <(git ls-files 'native/src/*.cc' 'native/src/*.h' | grep -vxF -f <(grep -v '^#' .format-pending 2>/dev/null || true) || true)
  [ ${#native[@]} -eq 0 ] || clang-format --dry-run --Werror "${native[@]}" || {
    say 'format: the native files above differ from native/.clang-format: clang-format -i FILE'
    exit 1
  }
else
  say 'format: clang-format is not installed, native/ not checked (apt-get install clang-format)'
fi
say 'all checks passed'
