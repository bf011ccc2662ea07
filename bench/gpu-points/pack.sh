#!/bin/sh
# Builds the page with the whole city's data into .gpu/page, then packs
# Debian's Chromium, the shared libraries it needs beyond glibc, and the
# GL/Vulkan loader packages into .gpu/carry/ as zstd chunks small enough for
# one device call each (the device image has no browser and no network).
#
#   sh bench/gpu-points/pack.sh [chunk MiB, default 56]
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
node --import tsx bench/gpu-points/make-data.ts --out .gpu/data
npx vite build -c bench/gpu-points/vite.config.ts --logLevel warn

stage=$repo/.gpu/stage
carry=$repo/.gpu/carry
chunk=${1:-56}
rm -rf "$stage" "$carry"
mkdir -p "$stage/chromium/locales" "$stage/lib/nss" "$stage/debs" "$carry"

src=/usr/lib/chromium
# Not needed headless: the 2x UI pack, the Vulkan validation layer and mock ICD, other locales.
for f in chromium chrome_crashpad_handler chrome_100_percent.pak icudtl.dat resources.pak snapshot_blob.bin \
  v8_context_snapshot.bin libEGL.so libGLESv2.so libvulkan.so.1 libvk_swiftshader.so vk_swiftshader_icd.json; do
  cp "$src/$f" "$stage/chromium/"
done
cp "$src/locales/en-US.pak" "$stage/chromium/locales/"

# Everything ldd resolves except glibc itself and the C++ runtime, which the
# device's newer Ubuntu has (newer is backward compatible; older is not).
ldd "$src/chromium" | awk '$3 ~ /^\// {print $3}' | while read -r so; do
  case $(basename "$so") in
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|ld-linux*|libstdc++.so.*|libgcc_s.so.*) ;;
    *) cp -L "$so" "$stage/lib/" ;;
  esac
done
# NSS loads its crypto modules by dlopen.
cp -L /usr/lib/x86_64-linux-gnu/nss/*.so "$stage/lib/nss/" 2>/dev/null || true

# glvnd EGL/GL loaders for ANGLE's EGL backend (see the device README).
lists=/tmp/amd64-lists
mkdir -p "$lists/partial"
o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
# shellcheck disable=SC2086
apt-get $o update >/dev/null
# shellcheck disable=SC2086
(cd "$stage/debs" && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)

du -sh "$stage"
tar -C "$stage" -cf - . | zstd -3 -T1 -q -c | split -b "${chunk}M" -d -a 1 - "$carry/chromium.tar.zst."
for f in "$carry"/*; do
  n=$(basename "$f")
  mkdir -p "$carry/c${n##*.}" && mv "$f" "$carry/c${n##*.}/"
done
sha256sum "$carry"/c*/* | sed "s#$carry/##" > "$carry/SHA256SUMS"
ls -la "$carry"/c*

# zstd itself, for the device, whose image may lack it.
mkdir -p "$carry/tools"
cp /usr/bin/zstd "$carry/tools/"
ldd /usr/bin/zstd | awk '$3 ~ /^\// {print $3}' | grep -v -E '/(libc|libm)\.so' | xargs -I{} cp -L {} "$carry/tools/"
