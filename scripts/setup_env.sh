#!/usr/bin/env bash
# One-command set-up on a fresh machine: cached venv (keyed by a hash of the requirements),
# ROS 2 Kilted wheels, the two CMake path rewrites the wheels need, the libusb fix for open3d,
# and the colcon build of this package. Idempotent: a second run only rebuilds what changed.
# Prints the venv path on its last line.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
py=${PYTHON:-python3}
cache=${SPATIAL_VLM_CACHE:-$HOME/.cache/spatial_vlm_ros}
hash=$(cat requirements/*.txt scripts/setup_env.sh | sha256sum | cut -c1-16)
venv="$cache/venv-$hash"

log() { echo "[setup] $*" >&2; }

if [ ! -f "$venv/.complete" ]; then
  log "creating venv $venv (first run takes a few minutes)"
  rm -rf "$venv"
  mkdir -p "$cache"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  # torch first and alone: only this exact CPU build is on local disk; any other spec downloads GBs.
  "$venv/bin/pip" install -q torch==2.13.0 >&2
  "$venv/bin/pip" install -q -c requirements/constraints.txt -r requirements/ml.txt -r requirements/ros.txt >&2
  # The ROS wheels' exported CMake files carry the manylinux build machine's paths.
  inc=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  npinc=$("$venv/bin/python" -c "import numpy; print(numpy.get_include())")
  grep -rl -e '/opt/python/cp311-cp311' "$venv/share" --include='*.cmake' 2>/dev/null | while read -r f; do
    sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$npinc#g" \
           -e "s#/opt/python/cp311-cp311/include/python3.11#$inc#g" "$f"
  done
  # open3d needs libusb-1.0.so.0; the libusb-package wheel ships it.
  so=$("$venv/bin/python" -c "import libusb_package, pathlib; print(next(pathlib.Path(libusb_package.__file__).parent.glob('libusb-1.0*.so*')))")
  ln -sf "$so" "$venv/lib/libusb-1.0.so.0"
  touch "$venv/.complete"
fi

# colcon build of the interfaces + Python packages (symlink install: edits to .py files show at once).
export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
stamp=install/.build-stamp
srcs=$(find CMakeLists.txt package.xml msg srv scripts launch config -type f 2>/dev/null | sort | xargs cat | sha256sum | cut -c1-16)-$hash
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$srcs" ] || [ -n "$(find spatial_vlm_ros spatial_vlm_training -name '*.py' -newer "$stamp" 2>/dev/null | head -1)" ]; then
  log "colcon build"
  colcon --log-base build/colcon-log build --base-paths "$repo" --build-base build --install-base install \
    --symlink-install --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$venv/bin/python" >&2 \
    || { log "colcon build failed (see build/colcon-log)"; exit 1; }
  echo "$srcs" > "$stamp"
fi
echo "$venv"
