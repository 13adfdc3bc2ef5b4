#!/usr/bin/env bash
# The GPU path end to end on this CPU (docs/TRAINING.md, "On a GPU"): pack the bundle, lay it out in a clean folder
# with no node_modules, no sources and no package.json (only what a device call sends that the bundle needs: the
# run script, the model configs, a tiny stage config), build the binding with run.sh's plain g++ against Debian's
# libtorch (the stand-in for PyTorch's folder), train 2 steps, resume under a time box that stops it cleanly, send
# the results to a fake $OUT and unpack them. `node`, `npm` and `npx` on the PATH fail loudly, so nothing can fall
# back on this machine's Node.
#
#   bash scripts/gpu/dry-run.sh [--no-pack] [--keep]     (--no-pack: use gpu-bundle/ as it is)
#
# Prints each phase's time; exits non-zero on the first thing that is not as expected.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
pack=1 keep=0
for a in "$@"; do
  case "$a" in
    --no-pack) pack=0 ;;
    --keep) keep=1 ;;
    *) echo "usage: bash scripts/gpu/dry-run.sh [--no-pack] [--keep]" >&2; exit 2 ;;
  esac
done
t=$(mktemp -d /tmp/mumu-gpu-dry.XXXXXX)
[ $keep = 1 ] || trap 'rm -rf "$t"' EXIT
phase_start=$SECONDS
phase() { printf '[dry run] %-48s %4ss\n' "$1" $((SECONDS - phase_start)); phase_start=$SECONDS; }
fail() { printf '[dry run] FAILED: %s (files in %s)\n' "$*" "$t" >&2; trap - EXIT; exit 1; }

# in parts of 12 MiB, as for calls that carry one part each
if [ $pack = 1 ]; then (cd "$repo" && node --import tsx scripts/gpu/pack.ts --out "$t/gpu-bundle" --part-mib 12) || fail "pack"
else cp -r "$repo/gpu-bundle" "$t/gpu-bundle"; fi
phase "pack ($(du -sm "$t/gpu-bundle" | cut -f1) MiB)"

# the device's working tree, as far as the run needs it
tree="$t/tree"
mkdir -p "$tree/scripts/gpu" "$tree/configs" "$t/poison" "$t/home"
mv "$t/gpu-bundle" "$tree/gpu-bundle"
cp "$repo/scripts/gpu/run.sh" "$tree/scripts/gpu/"
cp -r "$repo/configs/models" "$tree/configs/models"
cat > "$tree/configs/dry.json" <<'JSON'
{
  "stage": "t2i-base", "init": null, "seed": 0, "steps": 1000, "batch_size": 2,
  "data": { "seed": 1, "size": 64, "concepts": { "slugs": ["dog-face", "cat-face", "rocket", "red-apple", "banana", "sun"] } },
  "optimizer": { "groups": [{ "name": "unet", "match": "^unet\\.", "lr": 0.0004, "weight_decay": 0.01 },
                            { "name": "text_encoder", "match": "^text_encoder\\.", "lr": 0.0002, "weight_decay": 0.01 }] },
  "train": { "unet": "full", "text_encoder": "full" },
  "ema": { "decay": 0.99, "warmup": true },
  "checkpoint": { "every": 2, "keep": 1 },
  "samples": { "every": 2, "count": 1, "steps": 2, "guidance_scale": 4 },
  "log_every": 1
}
JSON
for tool in node npm npx; do printf '#!/bin/sh\necho "dry run: %s from the PATH was called" >&2; exit 99\n' "$tool" > "$t/poison/$tool"; chmod +x "$t/poison/$tool"; done
device_env=(env -i PATH="$t/poison:/usr/sbin:/usr/bin:/sbin:/bin" HOME="$t/home" LANG=C.UTF-8 MUMU_NUM_THREADS="${MUMU_NUM_THREADS:-2}")
run() { (cd "$tree" && "${device_env[@]}" OUT="$1" bash scripts/gpu/run.sh --work "$t/work" --device cpu "${@:2}"); }

# a part not carried (yet): listed, exit 3, nothing unpacked
last=$(ls "$tree/gpu-bundle"/bundle.tar.* | tail -1)
mv "$last" "$t/held-back"
set +e; run "$t/out0" --check > "$t/missing.log" 2>&1; rc=$?; set -e
[ $rc = 3 ] && grep -q "$(basename "$last")" "$t/missing.log" || { cat "$t/missing.log"; fail "a missing part was not reported (exit $rc)"; }
mv "$t/held-back" "$last"
run "$t/out0" --check > "$t/check.log" 2>&1 || { cat "$t/check.log"; fail "run.sh --check"; }
grep -q "binding loads" "$t/check.log" || fail "the binding did not load"
phase "unpack + g++ build of the binding (run.sh --check)"

run "$t/out1" --config configs/dry.json --name dry -- --stop-at 2 > "$t/run1.log" 2>&1 || { tail -20 "$t/run1.log"; fail "run 1"; }
phase "run 1: 2 steps, checkpoint (run.sh)"
[ -f "$tree/runs/dry/checkpoints/ckpt-00000002/state.json" ] || fail "no checkpoint at step 2"
for f in log.txt dry.parts dry.tar.00; do [ -f "$t/out1/$f" ] || fail "run 1 sent no $f"; done

# again, with the time box: it resumes from step 2 and is stopped by SIGTERM after ~35 s from the script's start
run "$t/out2" --config configs/dry.json --name dry --minutes 0.6 > "$t/run2.log" 2>&1 || { tail -20 "$t/run2.log"; fail "run 2"; }
phase "run 2: resume, time box, model export (run.sh)"
grep -q "resumed from .*ckpt-00000002" "$t/out2/log.txt" || fail "run 2 did not resume from step 2"
grep -q "time box reached: stopped cleanly" "$t/out2/log.txt" || fail "run 2 was not stopped by its time box"
if grep -q "from the PATH was called" "$t"/*.log; then fail "something called node/npm/npx from the PATH"; fi

# the parts that did not fit the tool's 64 MiB come in further calls
outs=("$t/out2") k=3
while read -r _ next total < "$tree/gpu-out/next" && [ "$next" -lt "$total" ]; do
  run "$t/out$k" --send-rest > "$t/send$k.log" 2>&1 || { cat "$t/send$k.log"; fail "run.sh --send-rest"; }
  outs+=("$t/out$k"); k=$((k + 1))
  [ $k -lt 20 ] || fail "--send-rest never ends"
done
phase "$((k - 3)) more call(s) of run.sh --send-rest"
bash "$repo/scripts/gpu/unpack.sh" "${outs[@]}" --into "$t/back" > "$t/unpack.log" 2>&1 || { cat "$t/unpack.log"; fail "unpack"; }
back="$t/back/dry"
node -e '
const fs = require("fs"), dir = process.argv[1];
const m = fs.readFileSync(dir + "/metrics.jsonl", "utf8").trim().split("\n").map((l) => JSON.parse(l));
const s = JSON.parse(fs.readFileSync(dir + "/summary.json", "utf8"));
const steps = m.map((r) => r.step);
if (steps.some((v, i) => v !== i + 1)) throw new Error("metrics steps are not 1..N: " + steps);
if (s.resumed_from !== 2 || s.steps !== steps.length || s.steps < 3) throw new Error("summary: " + JSON.stringify(s));
const ck = fs.readdirSync(dir + "/checkpoints");
if (ck.length !== 1 || ck[0] !== "ckpt-" + String(s.steps).padStart(8, "0")) throw new Error("checkpoints: " + ck);
for (const f of ["model/model_index.json", "model/unet/config.json", "loss.png", "gpu-config.json"]) if (!fs.existsSync(dir + "/" + f)) throw new Error("missing " + f);
if (!fs.readdirSync(dir + "/samples").some((f) => f.endsWith(".png"))) throw new Error("no sample grid");
console.log(`[dry run] back here: ${s.steps} steps (resumed from ${s.resumed_from}), ${ck[0]}, model/, ${fs.readdirSync(dir + "/samples").length} sample grids`);
' "$back" || fail "the results sent back"
diff -r "$back/checkpoints" "$tree/runs/dry/checkpoints" > /dev/null || fail "the checkpoint sent back differs from the one trained"
phase "unpack the results (unpack.sh) and check them"

# and it goes on here, with the repository's own trainer, from the checkpoint that came back
steps=$(node -p 'require(process.argv[1]).steps' "$back/summary.json")
(cd "$repo" && node --single-threaded-gc bin/mumu.js train --config "$back/gpu-config.json" --out "$back" --resume --stop-at $((steps + 1))) > "$t/local.log" 2>&1 || { tail -5 "$t/local.log"; fail "resuming here"; }
grep -q "resumed from .*ckpt-$(printf '%08d' "$steps") (step $steps)" "$t/local.log" || fail "the local trainer did not resume from step $steps"
phase "resume here from the checkpoint that came back (mumu train)"
printf '[dry run] ok in %ss\n' "$SECONDS"
