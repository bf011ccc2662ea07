#!/bin/bash
# Runs the page once in headless Chromium and waits for its result.
#
#   run-chromium.sh CHROMIUM_BIN RESULTS_JSONL LOG LABEL TIMEOUT_S QUERY [CHROMIUM FLAGS...]
#
# Needs serve.py running on 127.0.0.1:${PORT:-8000}. The result is the line
# the page appends to RESULTS_JSONL; Chromium's stderr goes to LOG.
set -u
bin=$1 results=$2 log=$3 label=$4 limit=$5 query=$6
shift 6
profile=$(mktemp -d)
url="http://127.0.0.1:${PORT:-8000}/index.html?label=${label}&${query}"
echo "=== ${label}: $(basename "$bin") $* --window-size=${WINDOW:-1920,1080} '$url'" >>"$log"
"$bin" --user-data-dir="$profile" --window-size="${WINDOW:-1920,1080}" --no-first-run \
  --disable-background-networking --disable-extensions --disable-dev-shm-usage "$@" "$url" >>"$log.tmp" 2>&1 &
pid=$!
start=$(date +%s)
while [ ! -e "$results.$label.done" ]; do
  if ! kill -0 "$pid" 2>/dev/null; then echo "chromium exited before a result" >>"$log"; break; fi
  if [ $(( $(date +%s) - start )) -ge "$limit" ]; then
    echo "no result after ${limit}s" >>"$log"
    printf '{"label":"%s","ok":false,"error":"no result after %ss"}\n' "$label" "$limit" >>"$results"
    break
  fi
  sleep 0.5
done
kill "$pid" 2>/dev/null
sleep 1
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
# Chromium is chatty (with no fonts, HarfBuzz complains of every label; no
# D-Bus either): keep the tail of the rest.
grep -a -v -E 'render_text_harfbuzz|dbus/' "$log.tmp" | tail -n 80 >>"$log"
rm -rf "$profile" "$log.tmp"
echo "=== ${label}: $(grep "\"label\": *\"$label\"" "$results" | tail -1 | head -c 600)"
