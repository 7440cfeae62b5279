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
