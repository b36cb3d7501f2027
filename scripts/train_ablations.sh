#!/usr/bin/env bash
# The reproduction table's two ablations, rebuilt from a teacher without the rest of train_all.sh: three
# students distilled by one identical chain (distill -> region head from the teacher's -> piece head ->
# shade head), differing only in what is ablated: the control (K=4 Hidden CoT, uncertainty weighting),
# K=0, and fixed loss weights. The committed student also had a GPU language fine-tune (README, "How the
# committed checkpoints were made"), so it is not the control: an ablation is read against the control,
# which went through the same steps.
#
#   scripts/train_ablations.sh WORKDIR TEACHER TRAIN VAL
#   env: PIECE_FRAMES (600) SHADE_FRAMES (600)
# Finished steps are skipped on a re-run. Evaluate with `spatial-vlm report --teacher TEACHER
# --student WORKDIR/control_rh --student-k0 WORKDIR/k0_rh --student-fixed WORKDIR/fixed_rh --data TEST`.
set -euo pipefail
work=${1:?usage: scripts/train_ablations.sh WORKDIR TEACHER TRAIN VAL}
teacher=$(realpath "${2:?teacher model folder}")
train=$(realpath "${3:?training split}")
val=$(realpath "${4:?validation split}")
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck disable=SC1091
source scripts/env.sh >/dev/null
mkdir -p "$work"
svlm() { python -m spatial_vlm_ros.cli "$@"; }

for variant in control:distill_student k0:distill_student_k0 fixed:distill_student_fixed; do
  name=${variant%%:*}
  cfg=${variant##*:}
  [ -f "$work/$name/train_summary.json" ] || \
    svlm distill --config "config/$cfg.yaml" --teacher "$teacher" --teacher-outputs "$work/teacher_outputs" \
      --data "$train" --val "$val" --out "$work/$name"
  [ -f "$work/${name}_rh/region_summary.json" ] || \
    svlm train-regions --model "$work/$name" --teacher "$teacher" --data "$train" --val "$val" \
      --out "$work/${name}_rh" --epochs 8
  [ -f "$work/${name}_rh/piece_summary.json" ] || \
    svlm train-pieces --model "$work/${name}_rh" --data "$train" --val "$val" --out "$work/${name}_rh" \
      --frames "${PIECE_FRAMES:-600}"
  [ -f "$work/${name}_rh/shade_summary.json" ] || \
    svlm train-shades --model "$work/${name}_rh" --data "$train" --val "$val" --out "$work/${name}_rh" \
      --frames "${SHADE_FRAMES:-600}"
done
echo "done: $work/{control,k0,fixed}_rh"
