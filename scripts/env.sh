# Sourced by bin/spatial-vlm and the Makefile: activates the cached venv and the colcon install.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$("$repo/scripts/setup_env.sh" | tail -n 1)
export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
set +u  # colcon's setup scripts read unset variables (COLCON_TRACE)
# shellcheck disable=SC1091
source "$repo/install/setup.bash"
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$repo/config/fastdds_shm.xml}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
