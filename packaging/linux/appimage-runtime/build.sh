#!/usr/bin/env bash
# Build Deskhand's AppImage type-2 runtime (runtime.c): a static x86_64 ELF, 'A','I',2 at offset 8.
#   packaging/linux/appimage-runtime/build.sh OUT [APP_NAME]
# Needs gcc and Debian's static libraries: libsquashfuse-dev, libfuse3-dev, zlib1g-dev,
# libzstd-dev, liblzma-dev, liblz4-dev, liblzo2-dev (libsquashfuse links every decompressor).
set -euo pipefail
out="${1:?usage: build.sh OUT [APP_NAME]}"
app="${2:-deskhand}"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$(dirname "$out")"
# -static: the runtime must start on any distribution, before anything from the image is there.
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -static -DAPP_NAME="\"$app\"" \
  -I/usr/include/squashfuse -I/usr/include/fuse3 \
  "$here/runtime.c" "$here/extract.c" "$here/cache.c" -o "$out.tmp" \
  -lsquashfuse_ll -lfuse3 -lzstd -llzma -llz4 -llzo2 -lz -lpthread 2> >(grep -v -e 'statically linked applications requires at runtime' -e 'in function .fuse_get_module' >&2 || true)
strip --strip-unneeded "$out.tmp"
# The AppImage magic: bytes 8-10 of the ELF identification (EI_PAD), which the ELF leaves unused.
printf 'AI\002' | dd of="$out.tmp" bs=1 seek=8 conv=notrunc status=none
mv "$out.tmp" "$out"
