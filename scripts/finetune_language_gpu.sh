#!/usr/bin/env bash
# Language-path fine-tune of the teacher and the three students of the reproduction table, on one GPU
# (or, slowly, a CPU), from a pack made by `scripts/language_pack.py make` (no frames needed there).
#
#   scripts/finetune_language_gpu.sh PACK OUT [STUDENT_K0 STUDENT_FIXED]
#
# 1. teacher  <- config/finetune_teacher_language.yaml from resource/models/teacher
# 2. its answers over the training split (top-k token log-probabilities), answers only
#    (1 and 2 are skipped when the pack carries teacher_outputs: the students then learn from those)
# 3. students <- config/finetune_student_language{,_fixed}.yaml from resource/models/student and the
#    two ablation students, side by side (each its own process; the models are tiny)
# OUT/<model> are complete save_pretrained folders; the image heads are those of the starting models.
# Extra arguments after the folders go to every train/distill command (e.g. --max-steps 5 for a smoke run).
set -euo pipefail
pack=$1 out=$2
k0=${3:-resource/models/student_k0} fixed=${4:-resource/models/student_fixed}
shift $(( $# < 4 ? $# : 4 ))
extra=("$@")
work=$(mktemp -d)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_MININTERVAL=10
cli() { python3 -m spatial_vlm_ros.cli "$@"; }
mkdir -p "$out"
python3 scripts/language_pack.py unpack "$pack" "$work"
t0=$(date +%s)
if [[ ! -d "$work/teacher_outputs" ]]; then
    cli train --config config/finetune_teacher_language.yaml --data "$work/train" --val "$work/val" \
        --out "$out/teacher" --init-from resource/models/teacher "${extra[@]}" 2>&1 | tee "$out/teacher.log"
    echo "teacher done after $(( $(date +%s) - t0 )) s"
    # the teacher answers on exactly the features the students will train on
    python3 - "$out/teacher" "$work/train" "$work/teacher_outputs" <<'EOF'
import sys
from spatial_vlm_training.distill.config import TrainConfig
from spatial_vlm_training.distill.teachers.embedded import EmbeddedTeacher
share = TrainConfig.from_yaml("config/finetune_student_language.yaml").proposal_mask_share
EmbeddedTeacher(sys.argv[1], "cuda").dump(sys.argv[2], sys.argv[3], batch_size=64, proposal_share=share, answers_only=True)
EOF
    echo "teacher answers done after $(( $(date +%s) - t0 )) s"
fi
pids=()
for spec in "student:config/finetune_student_language.yaml:resource/models/student" \
            "student_k0:config/finetune_student_language.yaml:$k0" \
            "student_fixed:config/finetune_student_language_fixed.yaml:$fixed"; do
    IFS=: read -r name config init <<<"$spec"
    cli distill --config "$config" --teacher "$work/teacher_outputs" --data "$work/train" --val "$work/val" \
        --out "$out/$name" --init-from "$init" "${extra[@]}" >"$out/$name.log" 2>&1 &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
tail -n 2 "$out"/student*.log
echo "students done after $(( $(date +%s) - t0 )) s (status $status)"
exit $status
