#!/usr/bin/env bash
# Regenerates the README's before/after pictures with the installed convfilter.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/images
src=sample_images/ascent.png
convfilter blur "$src" "$out/ascent-blur-stride-2-1.png" --stride 2 1
convfilter gaussian "$src" "$out/ascent-gaussian-7.png" --size 7 --sigma 2 --padding same
convfilter edge "$src" "$out/ascent-edge.png" --padding same
convfilter sobel-x "$src" "$out/ascent-sobel-x.png" --padding same
convfilter emboss "$src" "$out/ascent-emboss.png" --padding same
convfilter random "$src" "$out/ascent-random-seed-7.png" --seed 7 --size 5 --padding same
convfilter identity "$src" "$out/ascent-identity-stride-4.png" --size 1 --stride 4 4
convfilter edge "$src" "$out/ascent-edge-abs.png" --padding same --range abs
convfilter gaussian "$src" "$out/ascent-gaussian-15-zero.png" --size 15 --sigma 4 --padding same
convfilter gaussian "$src" "$out/ascent-gaussian-15-reflect.png" --size 15 --sigma 4 --padding same --border reflect
convfilter pool max "$src" "$out/ascent-pool-max-4.png" --size 4
# "Learn with convfilter" (docs/readme-issue7.md): comparison figures made with --compare
convfilter sobel-x docs/examples/square-7x7.csv /tmp/convfilter-square.csv --stride 2 2 --padding same \
  --compare "$out/learn-stride-same.png"
convfilter identity "$src" "$out/ascent-identity-stride-8.png" --size 1 --stride 8 8
convfilter chain --compare "$out/learn-chain.png" "$out/ascent-identity-stride-8.png" /tmp/convfilter-chain.png \
  gaussian --size 5 -- sobel-x --padding same -- pool max --size 2
