#!/usr/bin/env bash
# The transfer experiment behind docs/results.md's "LIFT's mechanics on a CPU": a small ViT of CLIP's architecture
# (bench/transfer/vit.json) pretrained here on Fashion-MNIST's classes 0-4, balanced (PLAN=transfer-source, seed 0),
# then fine-tuned on classes 5-9, long-tailed at ratio 100, with LIFT's rows (PLAN=transfer, seeds 0-2): the
# classifier alone, full fine-tuning and AdaptFormer, each with ERM and LA.  It tests the mechanics of LIFT's
# modules and recipe on one pretrained network, not LIFT's published numbers (no foundation weights here).
#
#   bash results/transfer.sh          # from the repository root: a_datasets/, logs/ and results/ there
#
# Like the campaign it can be stopped and started again: the plans skip finished runs and resume stopped ones.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" REPORT= RECORDS=results PYTHON
SOURCE=logs/transfer-source.pth

# The source network's checkpoint chosen on valid/, copied where the target plan's --pretrained reads it (a target
# run records the file's SHA-256: when a source trained again replaces it, the plan trains the targets again).
source_checkpoint() {  # the best checkpoint of the source run under logs/, or nothing
    local run
    run="$("$PYTHON" "$HERE/runs.py" find --model="clip:bench/transfer/vit.json" --dataset=fmnist-head --tag="$TAG" \
        --seed=0 | cut -f2)" || true
    [ -z "$run" ] || "$PYTHON" -c "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path
from runs import best_checkpoint_path; print(best_checkpoint_path(Path(sys.argv[2])) or '')" "$HERE" "$run"
}

PLAN=transfer-source SEEDS=0 bash "$HERE/3_run.sh"
TAG="$(PLAN=transfer-source TAGS=1 bash "$HERE/3_run.sh" | cut -f1)"
best="$(source_checkpoint)"
if [ -z "$best" ] && [ ! -f "$SOURCE" ]; then
    # the source run is only a record here (a fresh clone): the targets need its checkpoint only if one must train
    if [ -z "$(PLAN=transfer SEEDS="0 1 2" SOURCE="$SOURCE" PENDING=1 bash "$HERE/3_run.sh")" ]; then
        echo "every transfer row is kept from its record: the source network's checkpoint is not needed"
        exec env PLAN=transfer SEEDS="0 1 2" SOURCE="$SOURCE" bash "$HERE/3_run.sh"
    fi
    echo "a transfer row must train, and the source network's checkpoint is not here (only its record): training it again"
    RECORDS= PLAN=transfer-source SEEDS=0 bash "$HERE/3_run.sh"  # (its record kept would stand for it)
    "$PYTHON" "$HERE/records.py" export --all --to results
    best="$(source_checkpoint)"
fi
[ -n "$best" ] || [ ! -f "$SOURCE" ] || best="$SOURCE"  # the file the targets trained from, its run gone
if [ -z "$best" ]; then
    echo "error: the source run (PLAN=transfer-source, tag $TAG, seed 0) has no best checkpoint under logs/" >&2
    exit 1
fi
if ! cmp -s "$best" "$SOURCE"; then
    cp "$best" "$SOURCE.tmp" && mv "$SOURCE.tmp" "$SOURCE"
fi
PLAN=transfer SEEDS="0 1 2" SOURCE="$SOURCE" bash "$HERE/3_run.sh"
