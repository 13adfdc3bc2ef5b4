#!/usr/bin/env bash
# Trains one stage on a CUDA host that has PyTorch but no Node and no npm packages, from the bundle that
# scripts/gpu/pack.ts made (docs/TRAINING.md, "On a GPU"). Run from the repository root (the device tool's working
# tree: configs/ and models/ come from there, the code from the bundle):
#
#   bash scripts/gpu/run.sh --config configs/t2i-base.json [--name NAME] [--minutes 8] [--set batch_size=256]...
#                           [--device cuda] [--bundle gpu-bundle] [--results DIR] [--no-checkpoint]
#                           [-- <more mumu train flags>]
#   bash scripts/gpu/run.sh --check        unpack, print versions, build the binding; train nothing
#   bash scripts/gpu/run.sh --send-rest    copy the result parts the last run could not send (same warm machine)
#
# 1. Unpacks the bundle into --work (default /tmp/mumu-gpu; kept while the machine stays warm).
# 2. Builds the binding with plain g++ against the libtorch that scripts/find-libtorch.mjs finds (LIBTORCH,
#    Debian's libtorch-dev, or python3's torch: PyTorch's wheel, its C++ ABI flag read from torch), linking
#    torch_cuda / c10_cuda when the wheel has them.
# 3. Trains: `mumu train --device cuda` on the config with --set overrides (dotted keys, JSON values), in runs/NAME,
#    resuming when runs/NAME holds a checkpoint (carried, or left by an earlier call). --minutes is a time box from
#    the script's start: SIGTERM then, and the trainer finishes its step, checkpoints and exports the model (allow a
#    minute after it for that and for sending the results).
# 4. Sends the run back in $OUT within the device tool's limits (8 files, 16 MiB each, 64 MiB in all): log.txt,
#    NAME.parts (the list) and NAME.tar.NN, 15 MiB parts of one tar holding the metrics, samples, summary and
#    config first, then model/, then the newest checkpoint (not with --no-checkpoint: it is the bulk, 16 bytes per
#    trainable parameter). Parts that do not fit wait in gpu-out/ for --send-rest; scripts/gpu/unpack.sh puts them
#    together here.
set -euo pipefail

say() { printf '[gpu run +%ss] %s\n' "$SECONDS" "$*"; }
die() { printf '[gpu run] error: %s\n' "$*" >&2; exit 2; }

send_ckpt=1 config="" name="" minutes=8 device=cuda bundle=gpu-bundle work=/tmp/mumu-gpu results="${OUT:-}" mode=train
sets=() extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --name) name="$2"; shift 2 ;;
    --minutes) minutes="$2"; shift 2 ;;
    --set) sets+=("$2"); shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --bundle) bundle="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --results) results="$2"; shift 2 ;;
    --check) mode=check; shift ;;
    --no-checkpoint) send_ckpt=0; shift ;;
    --send-rest) mode=send-rest; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ -n "$results" ] || die "no results folder: \$OUT is not set, pass --results DIR"
[[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--minutes must be a number, got '$minutes'"
mkdir -p "$results"
PART_BYTES=$((15 * 1024 * 1024)) # the tool returns files of up to 16 MiB
PARTS_PER_CALL=4                  # 4 x 15 MiB + log.txt + NAME.parts stay under its 64 MiB and 8 files
pending=gpu-out

# --send-rest: the parts a previous call left behind (the machine must still be the same, i.e. warm)
if [ $mode = send-rest ]; then
  [ -f "$pending/next" ] || die "no parts are waiting in $pending/ (the machine was given back, or everything was sent)"
  read -r rname next total < "$pending/next"
  cp "$pending/$rname.parts" "$results/"
  sent=0
  while [ "$next" -lt "$total" ] && [ $sent -lt $PARTS_PER_CALL ]; do
    cp "$pending/$(printf '%s.tar.%02d' "$rname" "$next")" "$results/"; next=$((next + 1)); sent=$((sent + 1))
  done
  echo "$rname $next $total" > "$pending/next"
  say "sent $sent part(s) of $rname; $((total - next)) still waiting$([ "$next" -lt "$total" ] && echo ': call --send-rest again')"
  exit 0
fi

exec > >(tee -a "$results/log.txt") 2>&1
teepid=$!

# 1. the bundle: parts bundle.tar.NN (checked against parts.sha256) -> node.xz + app.tar.xz -> $work
[ -f "$bundle/parts.sha256" ] || die "$bundle/parts.sha256 is missing: carry the folder that scripts/gpu/pack.ts made (carry: [\"$bundle\"])"
if ! bad=$(cd "$bundle" && sha256sum -c --quiet parts.sha256 2>&1); then
  printf '%s\n' "$bad" | sed 's/^/[gpu run] /'
  echo "[gpu run] error: the bundle is incomplete (above): carry every part of $bundle (parts carried by an earlier call stay while the machine is warm)" >&2
  exit 3
fi
bundle_sha=$(sha256sum < "$bundle/parts.sha256" | cut -d' ' -f1)
if [ "$(cat "$work/.bundle" 2>/dev/null)" != "$bundle_sha" ]; then
  rm -rf "$work"; mkdir -p "$work/bin" "$work/unpack"
  cat "$bundle"/bundle.tar.* | tar -x -C "$work/unpack"
  xz -dc "$work/unpack/node.xz" > "$work/bin/node"; chmod +x "$work/bin/node"
  xz -dc "$work/unpack/app.tar.xz" | tar -x -C "$work"
  rm -rf "$work/unpack"
  echo "$bundle_sha" > "$work/.bundle"
  say "bundle unpacked into $work"
else
  say "bundle already unpacked in $work"
fi
node="$work/bin/node"

# 2. versions and the binding
lt() { "$node" "$work/find-libtorch.mjs" "$1"; }
say "node $("$node" -v); $(g++ --version | head -1); libtorch: $(lt describe)"
vh=$(for d in $(lt include); do ls "$d/torch/csrc/api/include/torch/version.h" 2>/dev/null; done | head -1 || true)
torch_version=$([ -z "$vh" ] || awk '/define TORCH_VERSION_(MAJOR|MINOR|PATCH)/ { v = v (v == "" ? "" : ".") $3 } END { print v }' "$vh")
say "torch $torch_version (C++ ABI $(lt abi), CUDA libraries: $(lt cuda))"
if command -v python3 >/dev/null && python3 -c 'import torch' 2>/dev/null; then
  python3 -c 'import torch; print("[gpu run] python3 torch", torch.__version__, "CUDA", torch.version.cuda, "GPUs", torch.cuda.device_count(), *(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())))' || true
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/[gpu run] GPU: /' || true

addon="$work/native/build/Release/mumu_torch.node"
stamp="$(lt libdir) $(lt abi) $(lt libs)"
if [ "$(cat "$addon.stamp" 2>/dev/null)" != "$stamp" ]; then
  mkdir -p "$work/native/build/obj" "$(dirname "$addon")"
  # the same defines, include folders and sources as native/binding.gyp (node-gyp is not here)
  nccl=$(lt nccl)
  flags=(-std=c++17 -O2 -fPIC -pthread -fexceptions -frtti -Wno-unused-parameter -Wno-deprecated-declarations
    -DNAPI_EXPERIMENTAL -DNAPI_CPP_EXCEPTIONS -DBUILDING_NODE_EXTENSION -DNODE_GYP_MODULE_NAME=mumu_torch
    "-D_GLIBCXX_USE_CXX11_ABI=$(lt abi)" "-DMUMU_WITH_CUDA=$(lt cuda)" "-DMUMU_WITH_C10D=$(lt c10d)"
    "-DMUMU_WITH_NCCL=$nccl" -DUSE_C10D_GLOO -I"$work/native/include")
  for d in $(lt include) $(lt nccl-include); do flags+=(-I"$d"); done
  sources=()
  for src in "$work"/native/src/*.cc; do
    [ "$(basename "$src")" = distributed_nccl.cc ] && [ "$nccl" != 1 ] && continue
    sources+=("$src")
  done
  pids=()
  for src in "${sources[@]}"; do
    g++ "${flags[@]}" -c "$src" -o "$work/native/build/obj/$(basename "$src" .cc).o" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || die "compiling the binding failed (see above)"; done
  # --no-as-needed: torch_cuda is linked though no symbol is used, so its CUDA kernels register at load time
  g++ -shared -pthread -o "$addon" "$work"/native/build/obj/*.o -L"$(lt libdir)" -Wl,--no-as-needed $(lt libs) -Wl,--as-needed -Wl,-rpath,"$(lt libdir)"
  echo "$stamp" > "$addon.stamp"
  say "binding built against $(lt libdir)"
else
  say "binding already built"
fi
if [ $mode = check ]; then
  # src/torch/native.ts resolves the addon two folders above the bundled trainer
  "$node" --input-type=module -e "import { createRequire } from 'node:module'; const a = createRequire('$work/x.js')('$addon'); console.log('[gpu run] binding loads: CUDA compiled', a.withCuda, ', GPUs', a.cudaDeviceCount());"
  say "check done"; exit 0
fi

# 3. the config (with --set) and the run
[ -n "$config" ] || die "--config FILE is required"
[ -f "$config" ] || die "config $config not found (run from the repository root)"
[ -n "$name" ] || name="$(basename "$config" .json)-gpu"
[[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || die "--name may hold letters, digits, '.', '_' and '-' only"
run="runs/$name"
mkdir -p "$run"
resolved="$work/configs/$name.json"
mkdir -p "$(dirname "$resolved")"
# the trainer reads the config (its "extends" merged, defaults filled in) and the --set keys go over that
"$node" --single-threaded-gc "$work/dist/cli/mumu-train.mjs" --config "$config" --print-config > "$resolved" ||
  die "cannot read the config $config (see above)"
"$node" --input-type=module - "$resolved" "$resolved" "${sets[@]}" <<'JS' || exit 2
import fs from 'node:fs';
const [src, dst, ...sets] = process.argv.slice(2);
const cfg = JSON.parse(fs.readFileSync(src, 'utf8'));
for (const s of sets) {
  const eq = s.indexOf('=');
  if (eq < 1) { console.error(`[gpu run] error: --set wants key=value, got '${s}'`); process.exit(2); }
  const keys = s.slice(0, eq).split('.'), raw = s.slice(eq + 1);
  let value; try { value = JSON.parse(raw); } catch { value = raw; }
  let o = cfg;
  for (const k of keys.slice(0, -1)) o = o[k] ??= {};
  o[keys.at(-1)] = value;
  console.log(`[gpu run] set ${keys.join('.')} = ${JSON.stringify(value)}`);
}
if (cfg.init && !fs.existsSync(`${cfg.init}/model_index.json`)) {
  console.error(`[gpu run] error: the init model ${cfg.init} is not here: commit it under models/ or carry it, or --set init=...`);
  process.exit(2);
}
fs.writeFileSync(dst, JSON.stringify(cfg, null, 2) + '\n');
JS
resume=()
ls -d "$run"/checkpoints/ckpt-* >/dev/null 2>&1 && resume=(--resume)

send_results() {
  local rc=$?
  set +e
  mkdir -p "$pending"
  rm -f "$pending/$name".tar* "$pending/$name.parts"
  local newest
  newest=$(ls -d "$run"/checkpoints/ckpt-* 2>/dev/null | sort | tail -1)
  # small files first, then the model, then the checkpoint: the parts that arrive first are the most useful
  local members=()
  for f in config.json metrics.jsonl summary.json loss.png samples model; do [ -e "$run/$f" ] && members+=("$name/$f"); done
  [ -n "$newest" ] && [ $send_ckpt = 1 ] && members+=("$name/checkpoints/$(basename "$newest")")
  cp "$resolved" "$run/gpu-config.json" 2>/dev/null && members=("$name/gpu-config.json" "${members[@]}")
  if [ ! -f "$run/config.json" ]; then
    say "the trainer wrote nothing to send back (see the log above); train exit code $rc"
    exec >/dev/null 2>&1; wait "$teepid" 2>/dev/null; exit $rc
  fi
  tar -C runs -cf "$pending/$name.tar" "${members[@]}"
  split -b $PART_BYTES -d -a 2 "$pending/$name.tar" "$pending/$name.tar."
  rm "$pending/$name.tar"
  local parts=("$pending/$name".tar.*) total
  total=${#parts[@]}
  (cd "$pending" && sha256sum "$name".tar.* > "$name.parts")
  cp "$pending/$name.parts" "$results/"
  local next=0
  while [ $next -lt "$total" ] && [ $next -lt $PARTS_PER_CALL ]; do cp "${parts[$next]}" "$results/"; next=$((next + 1)); done
  echo "$name $next $total" > "$pending/next"
  say "results: $total part(s) of 15 MiB in $results ($next sent$([ $next -lt "$total" ] && echo "; $((total - next)) wait: call again at once with: bash scripts/gpu/run.sh --send-rest"))"
  [ -f "$run/summary.json" ] && say "summary: $(tr -d '\n ' < "$run/summary.json")"
  say "train exit code $rc; done"
  exec >/dev/null 2>&1
  wait "$teepid" 2>/dev/null # log.txt is whole before the tool collects it
  exit $rc
}
trap send_results EXIT

# the time box counts from this script's start: unpacking and building came out of it
budget=$(awk -v m="$minutes" -v s="$SECONDS" 'BEGIN { b = int(m * 60 - s); print (b < 10 ? 10 : b) }')
say "training $config as $run on $device for at most $budget s${resume:+ (resuming)}"
export MUMU_EMOJI_SUBSET="$work/emoji-world.json"
set +e
timeout -s TERM -k 120 "${budget}s" "$node" --single-threaded-gc --max-old-space-size=16384 "$work/dist/cli/mumu-train.mjs" \
  --config "$resolved" --out "$run" --device "$device" "${resume[@]}" "${extra[@]}"
rc=$?
set -e
# 124: the time box sent SIGTERM and the trainer stopped cleanly (checkpoint and model written)
if [ $rc = 124 ] && [ -f "$run/summary.json" ]; then say "time box reached: stopped cleanly"; rc=0; fi
exit $rc
