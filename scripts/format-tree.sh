#!/usr/bin/env bash
# One time: formats the whole tree (prettier at width 120 for TypeScript, JavaScript, JSON and Markdown;
# clang-format with native/.clang-format for the binding) and deletes .format-pending, so that scripts/check.sh (CI)
# checks every file from then on. Run it once, after the open branches are merged, and commit the result on its own
# (`git commit -am "Format the tree"`; add the commit to .git-blame-ignore-revs so blame skips it).
# Without clang-format the native files stay listed in .format-pending (install it and run this again).
#   bash scripts/format-tree.sh --pending   formats nothing: rewrites .format-pending as the list of every file that
#                                           is not formatted now (after merging a branch that brought such files)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[mumu format] %s\n' "$*" >&2; }

if [ "${1:-}" = --pending ]; then
  {
    printf '# Files not yet formatted (the tree was never formatted as a whole). scripts/check.sh skips them;\n'
    printf '# scripts/format-tree.sh formats them and deletes this list. A file formatted by hand may be taken off it.\n'
    npx --no-install prettier --list-different --ignore-path .gitignore --ignore-path .prettierignore . || true
    git ls-files 'native/src/*.cc' 'native/src/*.h' | while read -r f; do
      if ! command -v clang-format >/dev/null 2>&1 || ! clang-format --dry-run --Werror "$f" 2>/dev/null; then echo "$f"; fi
    done
  } >.format-pending
  say "$(grep -vc '^#' .format-pending) files listed in .format-pending"
  exit 0
fi

npx --no-install prettier --write --log-level warn --ignore-path .gitignore --ignore-path .prettierignore .
native=()
mapfile -t native < <(git ls-files 'native/src/*.cc' 'native/src/*.h')
if command -v clang-format >/dev/null 2>&1; then
  clang-format -i "${native[@]}"
  rm -f .format-pending
  say "formatted; .format-pending removed: CI checks every file now"
else
  printf '# native files wait for clang-format (apt-get install clang-format; bash scripts/format-tree.sh)\n' >.format-pending
  printf '%s\n' "${native[@]}" >>.format-pending
  say "formatted the TypeScript, JSON and Markdown; clang-format is not installed, so native/ stays in .format-pending"
fi
# formatting must not change meaning: the types and the lint rules still hold
npx --no-install tsc --noEmit
npx --no-install eslint src test bench scripts bin
say "done: review with git diff --stat, build the binding (npm run setup) and run npm test, then commit"
