#!/usr/bin/env bash
# Regenerates the README's before/after pictures with the installed convfilter.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/images
src=sample_images/ascent.png
convfilter blur "$src" "$out/ascent-blur-stride-2-1.png" --stride 2 1 --overwrite
convfilter gaussian "$src" "$out/ascent-gaussian-7.png" --size 7 --sigma 2 --padding same --overwrite
convfilter edge "$src" "$out/ascent-edge.png" --padding same --overwrite
convfilter sobel-x "$src" "$out/ascent-sobel-x.png" --padding same --overwrite
convfilter emboss "$src" "$out/ascent-emboss.png" --padding same --overwrite
convfilter random "$src" "$out/ascent-random-seed-7.png" --seed 7 --size 5 --padding same --overwrite
convfilter identity "$src" "$out/ascent-identity-stride-4.png" --size 1 --stride 4 4 --overwrite
convfilter edge "$src" "$out/ascent-edge-abs.png" --padding same --range abs --overwrite
convfilter gaussian "$src" "$out/ascent-gaussian-15-zero.png" --size 15 --sigma 4 --padding same --overwrite
convfilter gaussian "$src" "$out/ascent-gaussian-15-reflect.png" --size 15 --sigma 4 --padding same --border reflect --overwrite
convfilter pool max "$src" "$out/ascent-pool-max-4.png" --size 4 --overwrite
# "Learn with convfilter" (README.md): comparison figures made with --compare
convfilter sobel-x docs/examples/square-7x7.csv /tmp/convfilter-square.csv --stride 2 2 --padding same \
  --compare "$out/learn-stride-same.png" --overwrite
convfilter identity "$src" "$out/ascent-identity-stride-8.png" --size 1 --stride 8 8 --overwrite
convfilter chain --overwrite --compare "$out/learn-chain.png" "$out/ascent-identity-stride-8.png" /tmp/convfilter-chain.png \
  gaussian --size 5 -- sobel-x --padding same -- pool max --size 2
# The tutorial (docs/tutorial.md): the classic animations, transposed convolution and filter banks
anim=docs/animations
mkdir -p "$anim"
convfilter animate "$anim/no_padding.gif" --shape 5 5 --kernel-size 3 3 --overwrite
convfilter animate "$anim/same_padding.gif" --shape 5 5 --kernel-size 3 3 --padding same --overwrite
convfilter animate "$anim/full_padding.gif" --shape 5 5 --kernel-size 3 3 --padding full --overwrite
convfilter animate "$anim/strides.gif" --shape 5 5 --kernel-size 3 3 --stride 2 2 --overwrite
convfilter animate "$anim/dilation.gif" --shape 7 7 --kernel-size 3 3 --dilation 2 2 --overwrite
convfilter animate "$anim/transposed_strides.gif" --shape 3 3 --kernel-size 3 3 --transpose --stride 2 2 --overwrite
convfilter animate "$anim/sobel_values.gif" --input docs/examples/ramp-4x5.csv --kernel sobel-x --padding same \
  --fps 1 --overwrite
convfilter blur "$src" "$out/ascent-blur-transposed-2.png" --transpose --stride 2 2 --padding same --overwrite
convfilter bank sobel-x sobel-y "$src" "$out/ascent-bank-magnitude.png" --padding same --overwrite
convfilter custom --kernel "1,1,1;1,1,1;1,1,1" "$src" "$out/ascent-ones-stride-2-1.png" --stride 2 1 --overwrite
