#!/usr/bin/env bash
# Same numbers before and after a change to the training code: trains the methods of methods/ (and plain ERM) for
# a few epochs of the digits demo, seed 0, one thread, with two checkouts, and compares their train.csv and
# valid.csv column by column (times left out).  Used for the move of BCL and GLMC into methods/ (issue [4/5]).
#
#   bash bench/same_numbers.sh /path/to/old/checkout /path/to/new/checkout [EPOCHS]
set -euo pipefail
OLD="$1"; NEW="$2"; EPOCHS="${3:-3}"
PYTHON="${PYTHON:-python}"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
"$PYTHON" "$NEW/data_split.py" --demo > /dev/null
COMMON=(--dataset=digits-lt --model_index=41 --seed=0 --epochs="$EPOCHS" --lr=0.05 --lrstep 2 1 --warmup
        --batchsize=32 --height=16 --width=16 --augment=crop)
status=0
for row in "ERM" "LA --method=bcl --normed_head --normed_scale=30 --projection_out=32" "ERM --method=glmc"; do
    read -r objective flags <<< "$row"
    for side in old new; do
        checkout="$OLD"; [ "$side" = new ] && checkout="$NEW"
        OMP_NUM_THREADS=1 "$PYTHON" "$checkout/1_train.py" "${COMMON[@]}" --objective="$objective" $flags \
            --logs_dir="logs-$side" > /dev/null 2>&1
    done
    for file in train.csv valid.csv; do
        a="$(ls -d logs-old/SimpleCNN/digits-lt/"$objective"/*/ | tail -1)$file"
        b="$(ls -d logs-new/SimpleCNN/digits-lt/"$objective"/*/ | tail -1)$file"
        if diff <(cut -d, -f1-5 "$a") <(cut -d, -f1-5 "$b") > /dev/null; then
            echo "same: $row: $file ($(tail -1 "$b" | cut -d, -f1-3))"
        else
            echo "DIFFERENT: $row: $file"; diff <(cut -d, -f1-5 "$a") <(cut -d, -f1-5 "$b") | head -4; status=1
        fi
    done
done
exit $status
