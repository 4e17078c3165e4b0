#!/usr/bin/env bash
# Builds the AWS Lambda deployment zip of the service for the provided.al2023 runtime:
#   target/lambda/mgraph-deploy-<arch>.zip, holding one executable file, `bootstrap`.
#
# Usage: deploy/package.sh [--arch arm64|x86_64]     (default arm64, what deploy/template.yaml runs)
#
# The build is `cargo lambda build --release` (pinned in deploy/requirements.txt), which links
# with zig against an old glibc, so the binary runs on Amazon Linux 2023 (glibc 2.34) whatever
# the build machine's glibc is. The script then checks the zip: one entry named `bootstrap`,
# executable, an ELF of the right machine, needing no glibc newer than 2.34; and prints sizes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARCH=arm64
GLIBC_CEILING=2.34
ZIP_LIMIT=$((50 * 1024 * 1024)) # Lambda's limit for a zip uploaded directly

while [[ $# -gt 0 ]]; do
    case "$1" in
        --arch) ARCH="${2:?--arch needs arm64 or x86_64}"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$ARCH" in
    arm64) TRIPLE=aarch64-unknown-linux-gnu; FLAG=--arm64; MACHINE=AArch64 ;;
    x86_64) TRIPLE=x86_64-unknown-linux-gnu; FLAG=--x86-64; MACHINE=X86-64 ;;
    *) echo "package.sh: --arch must be arm64 or x86_64, not $ARCH" >&2; exit 2 ;;
esac

cd "$ROOT"
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$TRIPLE"; then
    rustup target add "$TRIPLE"
fi
TOOLS="$(bash deploy/tools.sh)"
export PATH="$TOOLS:$PATH"

OUT="$ROOT/target/lambda"
BUILD="$OUT/build-$ARCH"
# Build paths out of the binary: the same commit gives the same binary wherever it is checked out.
CARGO_HOME_DIR="${CARGO_HOME:-$HOME/.cargo}"
export RUSTFLAGS="--remap-path-prefix=$ROOT=/build --remap-path-prefix=$CARGO_HOME_DIR=/cargo"
cargo lambda build --release --locked --bin mgraph-deploy "$FLAG" \
    --output-format zip --lambda-dir "$BUILD"
ZIP="$OUT/mgraph-deploy-$ARCH.zip"
# Repacked with a fixed date and mode: the same binary always gives the same zip, so its sha256
# (the S3 key deploy.sh uses) changes only when the code does.
python3 - "$BUILD/mgraph-deploy/bootstrap.zip" "$ZIP" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as built:
    binary = built.read("bootstrap")
entry = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
entry.create_system = 3  # Unix, so that the mode below is honoured
entry.external_attr = 0o100755 << 16
entry.compress_type = zipfile.ZIP_DEFLATED
with zipfile.ZipFile(sys.argv[2], "w") as packed:
    packed.writestr(entry, binary, compresslevel=9)
PY

CHECK="$(mktemp -d)"
trap 'rm -rf "$CHECK"' EXIT
python3 - "$ZIP" "$CHECK" <<'PY'
import stat, sys, zipfile
archive, into = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(archive) as z:
    entries = z.infolist()
    names = [e.filename for e in entries]
    if names != ["bootstrap"]:
        sys.exit(f"package.sh: the zip must hold exactly `bootstrap`, it holds {names}")
    mode = entries[0].external_attr >> 16
    if not mode & stat.S_IXUSR:
        sys.exit(f"package.sh: `bootstrap` is not executable in the zip (mode {oct(mode)})")
    z.extractall(into)
PY
BINARY="$CHECK/bootstrap"
if ! readelf -h "$BINARY" | grep -q "Machine:.*$MACHINE"; then
    echo "package.sh: bootstrap is not an $MACHINE binary:" >&2
    readelf -h "$BINARY" | grep Machine >&2
    exit 1
fi
GLIBC_FLOOR="$(readelf -V --wide "$BINARY" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)"
if [[ -z "$GLIBC_FLOOR" ]]; then
    echo "package.sh: found no glibc symbol versions in bootstrap" >&2
    exit 1
fi
if [[ "$(printf '%s\n%s\n' "$GLIBC_FLOOR" "$GLIBC_CEILING" | sort -V | tail -1)" != "$GLIBC_CEILING" ]]; then
    echo "package.sh: bootstrap needs glibc $GLIBC_FLOOR; provided.al2023 has $GLIBC_CEILING" >&2
    exit 1
fi
ZIP_BYTES="$(stat -c %s "$ZIP")"
if (( ZIP_BYTES > ZIP_LIMIT )); then
    echo "package.sh: the zip is $ZIP_BYTES bytes, over Lambda's $ZIP_LIMIT" >&2
    exit 1
fi
echo "bootstrap: $(stat -c %s "$BINARY") bytes, $ARCH, needs glibc >= $GLIBC_FLOOR (provided.al2023 has $GLIBC_CEILING)"
echo "zip: ${ZIP#"$ROOT"/} $ZIP_BYTES bytes, sha256 $(sha256sum "$ZIP" | cut -d' ' -f1)"
