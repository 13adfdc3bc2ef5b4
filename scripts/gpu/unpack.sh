#!/usr/bin/env bash
# Puts a GPU run back together here from the files scripts/gpu/run.sh sent (NAME.parts and NAME.tar.NN, from one
# call or spread over the calls of --send-rest):
#
#   bash scripts/gpu/unpack.sh DIR... [--into runs]
#
# writes <into>/NAME/ (metrics, samples, summary, model/, the newest checkpoint). With parts missing at the end, it
# keeps what arrived whole (the small files and the model come first) and drops the cut checkpoint.
set -euo pipefail
say() { printf '[gpu unpack] %s\n' "$*"; }
into=runs dirs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --into) into="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) dirs+=("$1"); shift ;;
  esac
done
[ ${#dirs[@]} -gt 0 ] || { echo "usage: bash scripts/gpu/unpack.sh DIR... [--into runs]" >&2; exit 2; }
names=()
for d in "${dirs[@]}"; do for f in "$d"/*.parts; do [ -f "$f" ] && names+=("$(basename "$f" .parts)"); done; done
[ ${#names[@]} -gt 0 ] || { echo "[gpu unpack] error: no NAME.parts file in ${dirs[*]}" >&2; exit 2; }
mkdir -p "$into"
status=0
for name in $(printf '%s\n' "${names[@]}" | sort -u); do
  # the list of the newest call that sent one (each run replaces the list of the run before)
  list=$(ls -t "${dirs[@]/%//$name.parts}" 2>/dev/null | head -1)
  have=() missing=()
  while read -r sum part; do
    found=""
    for d in "${dirs[@]}"; do
      if [ -f "$d/$part" ] && [ "$(sha256sum "$d/$part" | cut -d' ' -f1)" = "$sum" ]; then found="$d/$part"; break; fi
    done
    if [ -n "$found" ] && [ ${#missing[@]} = 0 ]; then have+=("$found"); else missing+=("$part"); fi
  done < "$list"
  rm -rf "${into:?}/$name.partial"
  mkdir -p "$into/$name.partial"
  if [ ${#missing[@]} = 0 ]; then
    cat "${have[@]}" | tar -x -C "$into/$name.partial"
  else
    # a cut tar: take every member that arrived whole; the last one (in the checkpoint) may be cut short
    cat "${have[@]}" | tar -x -C "$into/$name.partial" 2>/dev/null || true
    rm -rf "$into/$name.partial/$name/checkpoints"
    say "$name: ${#missing[@]} part(s) missing (${missing[*]}): the checkpoint is left out; fetch them with run.sh --send-rest while the machine is warm"
    status=4
  fi
  if [ -d "$into/$name" ]; then
    # merge over an earlier part of the same run: newer files win, older checkpoints stay
    cp -a "$into/$name.partial/$name/." "$into/$name/"
  else
    mv "$into/$name.partial/$name" "$into/$name"
  fi
  rm -rf "${into:?}/$name.partial"
  say "$name -> $into/$name ($(ls "$into/$name" | tr '\n' ' '))"
done
exit $status
