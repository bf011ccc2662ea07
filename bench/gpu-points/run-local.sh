#!/bin/bash
# The comparison run on this machine: the same page in Debian's Chromium with
# the project's usual flags (software GL through SwiftShader). A frame of the
# whole city takes seconds there, so the measured time is longer and there is
# no warm-up. Results go to .gpu/local/results.jsonl.
#
#   bash bench/gpu-points/run-local.sh [durationMs, default 30000]
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$repo/.gpu/local
mkdir -p "$out"
python3 "$here/serve.py" "$repo/.gpu/page" "$out/results.jsonl" 8000 &
server=$!
sleep 1
export WINDOW=1920,1300
"$here/run-chromium.sh" /usr/lib/chromium/chromium "$out/results.jsonl" "$out/chromium.log" local-swiftshader 150 \
  "durationMs=${1:-30000}&warmupMs=0" --headless --no-sandbox --disable-gpu --disable-background-networking
kill "$server"
