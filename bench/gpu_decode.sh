#!/usr/bin/env bash
# Builds .gpu/ffmpeg.tar.xz: this machine's ffmpeg (Debian 12, 5.1, built with
# --enable-cuda/nvdec/cuvid through ffnvcodec, which dlopens the driver's libcuda.so.1 and
# libnvcuvid.so.1) with every shared library it loads, for bench/gpu_decode.py on a GPU box
# that has no ffmpeg and no network. The device carries `.gpu` (git-ignored) and the bench
# unpacks the archive itself (python tarfile + lzma: no tar/xz binary needed there).
#
#   bench/gpu_decode.sh [OUT_ARCHIVE]      # default .gpu/ffmpeg.tar.xz
#   FF_BUNDLE_STAGE=/tmp/ff FF_BUNDLE_XZ=-0 bench/gpu_decode.sh /tmp/quick.tar.xz
#                                          # keep the unpacked tree there; fast, larger xz
#
# Layout once unpacked (at /tmp/ff):
#   ffmpeg, ffprobe   launchers: the device's glibc when it is >= 2.36 (what these Debian
#                     libraries need), with LD_LIBRARY_PATH=lib; else the bundled glibc's
#                     loader (glibc/ld-linux-x86-64.so.2 --library-path lib:glibc).
#                     FF_GLIBC=system|bundled forces either.
#   bin/              the unmodified Debian binaries
#   lib/              every library they need except glibc itself
#   glibc/            Debian 12's glibc (loader, libc, libm, ...), used only as a fallback
#   MANIFEST          versions, the stubbed libraries and checksums
#
# Size: the full dependency closure is ~235 MB (77 MB as xz), over what a device run can
# carry. Libraries that only serve features the bench never touches are therefore replaced
# by stubs with the same SONAME, version nodes and exported symbols (ffmpeg is linked with
# BIND_NOW, so every symbol must resolve at load): calling any stub function prints
# "mediaflow stub: <lib> called" and exits 86, so an accidental use is loud, never silent.
# Stubbed: codec2 (codec), flite + its voices (flite filter), librsvg (svg decoder),
# libplacebo (libplacebo filter), pocketsphinx/sphinxbase (asr filter), ICU (libxml2's
# charset conversions: the DASH demuxer only). Their now-unreferenced dependencies (ICU
# data, LAPACK/BLAS/gfortran, Vulkan, pango, ...) drop out of the closure.
# libavcodec/libavformat/libavfilter/libavutil/libswscale, x264, x265 and everything else
# stay the exact Debian files.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "$0")/.." && pwd)
OUT=${1:-$REPO/.gpu/ffmpeg.tar.xz}
FFMPEG=$(command -v ffmpeg)
FFPROBE=$(command -v ffprobe)
STUBS=(libcodec2.so.1.0 libflite.so.1 libflite_cmu_us_awb.so.1 libflite_cmu_us_kal.so.1
       libflite_cmu_us_kal16.so.1 libflite_cmu_us_rms.so.1 libflite_cmu_us_slt.so.1
       librsvg-2.so.2 libplacebo.so.208 libpocketsphinx.so.3 libsphinxbase.so.3
       libicuuc.so.72)
GLIBC=(ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 libresolv.so.2
       librt.so.1 libmvec.so.1)

if [[ -n ${FF_BUNDLE_STAGE:-} ]]; then
    STAGE=$FF_BUNDLE_STAGE
    rm -rf "$STAGE"
else
    STAGE=$(mktemp -d /tmp/mediaflow-ffbundle.XXXXXX)
    trap 'rm -rf "$STAGE"' EXIT
fi
mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/glibc"
cp -L "$FFMPEG" "$FFPROBE" "$STAGE/bin/"

is_glibc() {  # a file of Debian's libc6 package (the device brings its own)
    local owner
    owner=$(dpkg -S "$(readlink -f "$1")" 2>/dev/null || dpkg -S "$1" 2>/dev/null || true)
    [[ ${owner%%:*} == libc6 ]]
}

# 1. the full closure, as the system loader resolves it
while read -r path; do
    is_glibc "$path" || cp -L "$path" "$STAGE/lib/$(basename "$path")"
done < <(ldd "$FFMPEG" "$FFPROBE" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u)
for name in "${GLIBC[@]}"; do
    cp -L "/lib/x86_64-linux-gnu/$name" "$STAGE/glibc/"
done

# 2. stubs for the libraries of features the bench never uses
python3 - "$STAGE/lib" "${STUBS[@]}" <<'PY'
import re, subprocess, sys
from pathlib import Path

libdir, names = Path(sys.argv[1]), sys.argv[2:]
for name in names:
    lib = libdir / name
    dyn = subprocess.run(["readelf", "-dW", str(lib)], capture_output=True, text=True,
                         check=True).stdout
    soname = re.search(r"\(SONAME\)\s+Library soname: \[(.+?)\]", dyn).group(1)
    table = subprocess.run(["readelf", "--dyn-syms", "-W", str(lib)], capture_output=True,
                           text=True, check=True).stdout
    versions, asm, count = [], [], 0
    msg = f"mediaflow stub: {name} called\n".encode()
    asm += [".text", "__mf_stub_die:",
            "  mov $2, %edi", "  lea __mf_stub_msg(%rip), %rsi", f"  mov ${len(msg)}, %edx",
            "  mov $1, %eax", "  syscall", "  mov $86, %edi", "  mov $231, %eax", "  syscall",
            "  ud2",
            ".section .rodata", "__mf_stub_msg:",
            "  .byte " + ",".join(str(b) for b in msg)]
    for line in table.splitlines():
        parts = line.split()
        if len(parts) < 8 or not parts[0].endswith(":") or not parts[0][:-1].isdigit():
            continue
        _, _, size, kind, bind, _, ndx, full = parts[:8]
        if ndx in ("UND", "ABS") or bind not in ("GLOBAL", "WEAK"):
            continue
        size = int(size, 0)
        symbol, default, version = full, True, None
        if "@@" in full:
            symbol, version = full.split("@@", 1)
        elif "@" in full:
            symbol, version = full.split("@", 1)
            default = False
        if version and version not in versions:
            versions.append(version)
        count += 1
        label = f"__mf_sym_{count}" if version else symbol
        section = {"FUNC": ".text", "IFUNC": ".text", "TLS": '.section .tbss,"awT",@nobits'}
        asm.append(section.get(kind, ".data"))
        quoted = f'"{label}"'
        asm += [f".globl {quoted}", ".weak " + quoted if bind == "WEAK" else ""]
        if kind in ("FUNC", "IFUNC", "NOTYPE"):
            asm += [f".type {quoted}, @function", f"{quoted}:", "  jmp __mf_stub_die"]
        else:
            object_type = "@tls_object" if kind == "TLS" else "@object"
            asm += [".balign 16", f".type {quoted}, {object_type}",
                    f".size {quoted}, {max(size, 1)}", f"{quoted}:", f"  .zero {max(size, 1)}"]
        if version:
            at = "@@" if default else "@"
            asm.append(f'.symver {quoted}, "{symbol}{at}{version}"')
    source = libdir / f"{name}.stub.S"
    script = libdir / f"{name}.stub.map"
    source.write_text("\n".join(asm) + '\n.section .note.GNU-stack,"",@progbits\n')
    script.write_text("".join(f"{v} {{ }};\n" for v in versions) or "{ };\n")
    args = ["gcc", "-shared", "-nostdlib", "-fPIC", f"-Wl,-soname,{soname}", "-Wl,-z,now",
            "-o", str(lib), str(source)]
    if versions:
        args.insert(-2, f"-Wl,--version-script={script}")
    subprocess.run(args, check=True)
    source.unlink()
    script.unlink()
    print(f"stub {name}: {count} symbols, {len(versions)} version nodes")
PY

# 3. drop what nothing references any more: the DT_NEEDED closure of the binaries within
#    the bundle, then ldd must resolve every non-glibc library into it
python3 - "$STAGE" "${GLIBC[@]}" <<'PY'
import re, subprocess, sys
from pathlib import Path

stage, glibc = Path(sys.argv[1]), set(sys.argv[2:])
def needed(path):
    out = subprocess.run(["readelf", "-dW", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)
seen, todo = set(), [stage / "bin/ffmpeg", stage / "bin/ffprobe"]
while todo:
    for name in needed(todo.pop()):
        if name in seen or name in glibc:
            continue
        if not (stage / "lib" / name).exists():
            sys.exit(f"{name} is needed but not in the bundle")
        seen.add(name)
        todo.append(stage / "lib" / name)
for lib in (stage / "lib").iterdir():
    if lib.name not in seen:
        lib.unlink()
PY
outside=$(LD_LIBRARY_PATH="$STAGE/lib" ldd "$STAGE/bin/ffmpeg" "$STAGE/bin/ffprobe" \
    | awk -v lib="$STAGE/lib/" '$2 == "=>" && index($3, lib) != 1 {print $1}' | sort -u)
for name in $outside; do
    if [[ " ${GLIBC[*]} " != *" $name "* ]]; then
        echo "resolved outside the bundle: $name" >&2
        exit 1
    fi
done

# 4. launchers
for tool in ffmpeg ffprobe; do
    cat > "$STAGE/$tool" <<'SH'
#!/bin/sh
# Runs bin/<this name> with the bundle's libraries (see MANIFEST).
d=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
tool=$(basename -- "$0")
mode=${FF_GLIBC:-auto}
if [ "$mode" = auto ]; then
    mode=bundled
    v=$(getconf GNU_LIBC_VERSION 2>/dev/null || true)
    v=${v#glibc }
    major=${v%%.*}
    minor=${v#*.}
    minor=${minor%%.*}
    if [ "$major" = 2 ] && [ "$minor" -ge 36 ] 2>/dev/null; then
        mode=system
    fi
fi
if [ "$mode" = system ]; then
    LD_LIBRARY_PATH="$d/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$d/bin/$tool" "$@"
fi
exec "$d/glibc/ld-linux-x86-64.so.2" --library-path "$d/lib:$d/glibc${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$d/bin/$tool" "$@"
SH
    chmod 755 "$STAGE/$tool"
done

# 5. self-test: every object the loader maps comes from the bundle (bundled glibc, so not
#    even libc is the host's), and both launcher modes encode H.264/HEVC and decode them
probe=$(mktemp -d /tmp/mediaflow-ffprobe.XXXXXX)
LD_DEBUG=libs LD_DEBUG_OUTPUT="$probe/ld" "$STAGE/glibc/ld-linux-x86-64.so.2" \
    --library-path "$STAGE/lib:$STAGE/glibc" "$STAGE/bin/ffmpeg" -nostdin -v error -y \
    -f lavfi -i testsrc2=size=320x240:rate=30 -t 0.5 -c:v libx264 -f mp4 "$probe/a.mp4"
foreign=$(grep -h 'calling init:' "$probe"/ld.* | awk '{print $NF}' | grep -v "^$STAGE/" || true)
if [[ -n $foreign ]]; then
    echo "loaded from outside the bundle: $foreign" >&2
    exit 1
fi
for mode in system bundled; do
    FF_GLIBC=$mode "$STAGE/ffmpeg" -nostdin -v error -y -f lavfi -i testsrc2=size=320x240:rate=30 \
        -t 0.5 -c:v libx265 -x265-params log-level=error -f mp4 "$probe/$mode.mp4"
    FF_GLIBC=$mode "$STAGE/ffmpeg" -nostdin -v error -i "$probe/$mode.mp4" -i "$probe/a.mp4" \
        -map 0:v -map 1:v -f null -
done
rm -rf "$probe"
echo "self-test passed: $(grep -c . <<< "$(ls "$STAGE/lib")") libraries, all loaded from the bundle"

# 6. manifest, archive
{
    echo "ffmpeg bundle for bench/gpu_decode.py, built $(date -u +%FT%TZ) by bench/gpu_decode.sh"
    echo "source: $(dpkg -S "$(readlink -f "$FFMPEG")" | cut -d: -f1) $(dpkg-query -W -f='${Version}' ffmpeg)"
    grep -E '^(PRETTY_NAME)=' /etc/os-release
    "$FFMPEG" -hide_banner -version | head -1
    echo "glibc fallback: $(getconf GNU_LIBC_VERSION)"
    echo "stubbed (feature libraries the bench never calls): ${STUBS[*]}"
    echo "sha256:"
    (cd "$STAGE" && find bin lib glibc -type f -print0 | sort -z | xargs -0 sha256sum)
} > "$STAGE/MANIFEST"

mkdir -p "$(dirname "$OUT")"
tar -C "$STAGE" --owner=0 --group=0 --sort=name -cf - . | xz "${FF_BUNDLE_XZ:--9e}" -T1 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "$(du -sh "$STAGE" | cut -f1) unpacked, $(find "$STAGE/lib" -type f | wc -l) libraries"
ls -l "$OUT"
