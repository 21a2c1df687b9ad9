#!/usr/bin/env bash
# Remake the checkpoints of the book's trained models by executing their chapters in full
# mode with retraining switched on. Best on a GPU; see README.md for the times it takes.
#
#   bash scripts/make_checkpoints.sh                        # every chapter with a model
#   bash scripts/make_checkpoints.sh 03_dcgan               # one chapter
#   bash scripts/make_checkpoints.sh --convert-only 03_dcgan  # only write its script
#
# Each chapter is converted by jupytext into a plain Python script (the same cells in the
# same order) under runs/chapter_scripts/, then the scripts run side by side, each from
# the chapters/ folder, with their output in runs/logs/<chapter>.log (or, when
# BOOK_RETRAIN names models, runs/logs/<chapter>.<names>.log: so one chapter's models can
# train side by side, one command each, e.g. BOOK_RETRAIN=ddpm and BOOK_RETRAIN=flow).
# Running a script instead of a notebook means the training machine needs only the book's
# Python packages, not Jupyter. The chapters write their finished models to
# book_utils/checkpoints/<name>/, and their progress while training to <data root>/runs/
# (or $BOOK_RUNS_DIR/runs/).
#
# Environment: PYTHON (default .venv/bin/python); SKIP_CONVERT=1 to reuse the converted
# scripts (for a machine without jupytext); BOOK_MODE (default full); BOOK_RETRAIN (default
# 1; 0 keeps the checkpoints already there and trains only the missing ones; model names,
# e.g. BOOK_RETRAIN=cgan, train those again and load the others); BOOK_RUNS_DIR;
# BOOK_OVERRIDES, a JSON object of hyperparameters that replace those of the chapters'
# hyperparameter cells (book_utils/runtime.py). A model trained with overrides still lands
# in book_utils/checkpoints/; scripts/compare_dcgan_configs.py runs such settings in copies.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$(pwd)/.venv/bin/python}"  # absolute: the chapters run from chapters/
convert_only=0
if [ "${1:-}" = --convert-only ]; then convert_only=1; shift; fi
if [ "$#" -gt 0 ]; then chapters=("$@"); else
    chapters=(02_mlp_gan 03_dcgan 04_vae 06_diffusion 07_stable_gans 08_conditional 10_likelihood)
fi
mkdir -p runs/chapter_scripts runs/logs
if [ "${SKIP_CONVERT:-0}" != 1 ]; then
    for chapter in "${chapters[@]}"; do
        script="runs/chapter_scripts/$chapter.py"
        new="runs/chapter_scripts/$chapter.$$.py"  # one per process; jupytext wants .py
        "$PYTHON" -m jupytext --quiet --to py:percent --output "$new" "chapters/$chapter.md"
        # jupytext comments out IPython magics; the Colab cell's `%pip` is the only
        # statement of an `if`, so it becomes `pass` (this machine is not Colab).
        sed -i -E 's/^([[:space:]]+)# %pip /\1pass  # %pip /' "$new"
        mv "$new" "$script"  # at once: a run of the same chapter may be starting
    done
fi
if [ "$convert_only" = 1 ]; then exit 0; fi
export BOOK_MODE="${BOOK_MODE:-full}" BOOK_RETRAIN="${BOOK_RETRAIN:-1}" MPLBACKEND=Agg PYTHONUNBUFFERED=1
root="$(pwd)"
tag=""  # the models named by BOOK_RETRAIN, in the logs' names
case "${BOOK_RETRAIN,,}" in 1 | 0 | true | false | yes | no | "") ;; *) tag=".${BOOK_RETRAIN//,/-}" ;; esac
declare -A pids logs
# Stopped (Ctrl-C, or SIGTERM): stop every chapter with SIGTERM (a background job ignores
# SIGINT), which makes each save after its current step; running this again resumes them.
stop() {
    echo "stopping the chapters; each keeps its last save (see Run in book_utils/training.py)"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait || true
    exit 130
}
trap stop INT TERM
for chapter in "${chapters[@]}"; do
    logs[$chapter]="runs/logs/$chapter$tag.log"
    (cd chapters && exec "$PYTHON" "$root/runs/chapter_scripts/$chapter.py") \
        > "${logs[$chapter]}" 2>&1 &
    pids[$chapter]=$!
    echo "started $chapter (log: ${logs[$chapter]})"
done
failed=0
for chapter in "${chapters[@]}"; do
    status=0
    wait "${pids[$chapter]}" || status=$?
    if [ "$status" = 0 ]; then
        echo "$chapter: done"
    elif grep -q "saved at step" "${logs[$chapter]}"; then  # stopped by a signal
        echo "$chapter: stopped; its progress is saved, run this again to resume"
        failed=1
    else
        echo "$chapter: FAILED, see ${logs[$chapter]}"
        failed=1
    fi
done
ls -l book_utils/checkpoints/
exit $failed
