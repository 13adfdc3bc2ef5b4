#!/usr/bin/env bash
# Copies a trained model folder into models/emoji-default, keeping the folder's model card (README.md) and its
# example reference images, and the training plots/grids into docs/training. With a second folder (the text-only base
# the MUMU stage started from), its UNet is shipped as base_unet/ in float16: the text-only baseline and the merge's
# W_base of `mumu eval`, and the base a fresh machine can continue from (configs' `from: {unet: .../base_unet}`).
# Usage:
#   bash scripts/ship-default-model.sh runs/mumu-stage1-full/model [runs/t2i-base/model | models/stages/t2i-base-part2]
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:?usage: ship-default-model.sh <model folder>}
[ -f "$src/model_index.json" ] || { echo "ship-default-model: $src is not a model folder (no model_index.json)" >&2; exit 2; }
dst=models/emoji-default
keep=$(mktemp -d)
[ -f $dst/README.md ] && cp $dst/README.md "$keep/"
[ -d $dst/examples ] && cp -r $dst/examples "$keep/"
rm -rf $dst.new && cp -r "$src" $dst.new
if [ -n "${2:-}" ]; then
  [ -f "$2/unet/config.json" ] || { echo "ship-default-model: $2 has no unet/" >&2; exit 2; }
  if [ -f "$2/model_index.json" ]; then node --import tsx scripts/export-parts.ts "$2" $dst.new unet=base_unet
  else cp -r "$2/unet" $dst.new/base_unet; fi # a committed stage folder (models/stages/...): its unet/ is float16
fi
[ -f "$keep/README.md" ] && cp "$keep/README.md" $dst.new/
[ -d "$keep/examples" ] && cp -r "$keep/examples" $dst.new/
rm -rf $dst && mv $dst.new $dst && rm -rf "$keep"
mkdir -p docs/training
for s in vae t2i-base vlm adapter-align mumu-stage1 mumu-stage1-full mumu-stage2 style-finetune; do
  [ -f runs/$s/loss.png ] && cp runs/$s/loss.png docs/training/$s-loss.png
  last=$(ls runs/$s/samples/*.png 2>/dev/null | tail -1 || true); [ -n "$last" ] && cp "$last" docs/training/$s-samples.png
  lastt=$(ls runs/$s/samples/*.txt 2>/dev/null | tail -1 || true); [ -n "$lastt" ] && cp "$lastt" docs/training/$s-captions.txt
done
du -sh $dst
