#!/usr/bin/env bash
# Re-creates this folder's model files from the pinned npm package and verifies them, so the committed
# binaries can be audited (or restored) from their public origin. Needs npm, python3 and sha256sum.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=0.4.1675468480
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@mediapipe/objectron@${version}" >/dev/null && tar xzf mediapipe-objectron-*.tgz)
packed="$work/package/objectron_solution_packed_assets.data"
# Byte ranges from objectron_solution_packed_assets_loader.js in the same package.
python3 - "$packed" "$work" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
open(f"{sys.argv[2]}/labels.txt", "wb").write(data[0:184])
open(f"{sys.argv[2]}/ssd_mobilenetv2_oidv4_fp16.tflite", "wb").write(data[184:9987912])
PY
(cd "$work" && sha256sum -c "$here/SHA256SUMS")
cp "$work/labels.txt" "$work/ssd_mobilenetv2_oidv4_fp16.tflite" "$here/"
echo "oid_ssd: model files verified in $here"
