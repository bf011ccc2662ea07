#!/bin/bash
# On the device machine: unpacks the Chromium chunks that earlier calls left
# in /tmp/gp (see README.md), serves .gpu/page and runs the page in headless
# Chromium under each GL backend named, appending results to $OUT.
# vk* configs: WebGL through ANGLE on Vulkan; egl*: ANGLE on the driver's
# OpenGL ES through EGL; -uncapped: no 60 Hz frame limit; -sync: uncapped,
# and each frame waits for the GPU (1-pixel readPixels).
#
#   bash bench/gpu-points/device-run.sh [CONFIG...]   (default: vk vk-uncapped vk-sync egl egl-uncapped)
set -u
here=$(cd "$(dirname "$0")" && pwd)
gp=/tmp/gp
x=$gp/x
out=${OUT:-/tmp/gp/out}
mkdir -p "$out"
results=$out/results.jsonl
log=$out/chromium.log
if [ ! -x "$x/chromium/chromium" ]; then
  for c in .gpu/carry/c*/; do cp "$c"* "$gp/"; done
  ls -la "$gp"
  (cd "$gp" && sed 's#c[0-9]*/##' "$OLDPWD/.gpu/carry/SHA256SUMS" | sha256sum -c) || exit 1
  mkdir -p "$x"
  cat "$gp"/chromium.tar.zst.* | LD_LIBRARY_PATH=$gp/tools "$gp/tools/zstd" -d -c | tar -C "$x" -xf - || exit 1
fi
for f in "$x"/debs/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
# Debian's libraries for Chromium alone: the server's Python keeps the image's.
cat >"$x/chrome" <<EOS
#!/bin/sh
LD_LIBRARY_PATH=$x/lib:$x/chromium NSS_MODULE_PATH=$x/lib/nss exec $x/chromium/chromium "\$@"
EOS
chmod +x "$x/chrome"
LD_LIBRARY_PATH=$x/lib:$x/chromium ldd "$x/chromium/chromium" | grep "not found"
"$x/chrome" --version

python3 "$here/serve.py" .gpu/page "$results" 8000 &
server=$!
sleep 1
base=(--headless --no-sandbox --disable-background-networking --enable-logging=stderr --ignore-gpu-blocklist --disable-software-rasterizer)
vk=(--use-angle=vulkan --enable-features=Vulkan --disable-vulkan-surface)
egl=(--use-gl=angle --use-angle=gl-egl)
uncapped=(--disable-gpu-vsync --disable-frame-rate-limit)
export WINDOW=1920,1300
q="durationMs=${DURATION_MS:-5000}&warmupMs=1000"
for cfg in "${@:-vk vk-uncapped vk-sync egl egl-uncapped}"; do
  for c in $cfg; do
    case $c in
      vk) "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 60 "$q" "${base[@]}" "${vk[@]}" ;;
      vk-uncapped) "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 60 "$q" "${base[@]}" "${vk[@]}" "${uncapped[@]}" ;;
      vk-sync) "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 60 "$q&sync=1" "${base[@]}" "${vk[@]}" "${uncapped[@]}" ;;
      vk-surface) "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 60 "$q" "${base[@]}" --use-angle=vulkan --enable-features=Vulkan ;;
      vk-angle-only) "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 60 "$q" "${base[@]}" --use-angle=vulkan ;;
      vk-from-angle) "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 60 "$q" "${base[@]}" --use-angle=vulkan --enable-features=Vulkan,VulkanFromANGLE,DefaultANGLEVulkan --disable-vulkan-surface ;;
      egl-sync) "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 60 "$q&sync=1" "${base[@]}" "${egl[@]}" "${uncapped[@]}" ;;
      egl-sync-nopoints) "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 60 "$q&sync=1&points=0" "${base[@]}" "${egl[@]}" "${uncapped[@]}" ;;
      vk-angle-only-sync) "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 60 "$q&sync=1" "${base[@]}" --use-angle=vulkan "${uncapped[@]}" ;;
      vk-angle-only-uncapped) "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 60 "$q" "${base[@]}" --use-angle=vulkan "${uncapped[@]}" ;;
      egl-4k) WINDOW=3840,2400 "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 60 "$q&width=3840&height=2160" "${base[@]}" "${egl[@]}" ;;
      egl-4k-sync) WINDOW=3840,2400 "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 60 "$q&width=3840&height=2160&sync=1" "${base[@]}" "${egl[@]}" "${uncapped[@]}" ;;
      egl) "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 60 "$q" "${base[@]}" "${egl[@]}" ;;
      egl-uncapped) "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 60 "$q" "${base[@]}" "${egl[@]}" "${uncapped[@]}" ;;
      swiftshader) "$here/run-chromium.sh" "$x/chrome" "$results" "$log" "$c" 90 "durationMs=20000&warmupMs=0" --headless --no-sandbox --disable-background-networking --enable-unsafe-swiftshader --use-angle=swiftshader ;;
      *) echo "unknown config $c" ;;
    esac
  done
done
kill "$server"
