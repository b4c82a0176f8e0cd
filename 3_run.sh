#!/usr/bin/env bash
# Batch experiments: edit the plan below.  The default plan is the demo: a
# long-tailed split of scikit-learn's handwritten digits, trained with each
# objective on the same small network and seed, evaluated on the test split and
# compared.  It takes a few minutes on a 2-core CPU.
#
#   bash 3_run.sh                 # the demo
#   EPOCHS=1 bash 3_run.sh        # a quick smoke run
#
# Paths are relative to the current folder (a_datasets/, logs/); the scripts
# are found next to this file.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python}"

DATASET="${DATASET:-digits-lt}"
MODEL="${MODEL:-41}"                     # 41: SimpleCNN (python get_model.py lists all)
OBJECTIVES="${OBJECTIVES:-ERM CCE COT FL}"
EPOCHS="${EPOCHS:-30}"
SEED="${SEED:-0}"
TRAIN_FLAGS="--epochs=$EPOCHS --lr=0.05 --lrstep 15 10 5 --warmup --batchsize=32 --height=16 --width=16 --augment=crop --seed=$SEED --ccegamma=1"

if [ ! -d "a_datasets/$DATASET" ]; then
    "$PYTHON" "$HERE/data_split.py" --demo
fi

for objective in $OBJECTIVES; do
    "$PYTHON" "$HERE/1_train.py" --dataset="$DATASET" --model_index="$MODEL" --objective="$objective" $TRAIN_FLAGS
    "$PYTHON" "$HERE/2_test.py" --dataset="$DATASET" --model_index="$MODEL" --objective="$objective" --datetime=latest
done

MODEL_NAME="$("$PYTHON" -c "import sys; sys.path.insert(0, '$HERE'); from get_model import model_name; print(model_name($MODEL))")"
echo
"$PYTHON" "$HERE/compare.py" --dataset="$DATASET" --model_index="$MODEL" --objectives $OBJECTIVES \
    --plot="logs/$MODEL_NAME/$DATASET/valid_acc.svg"

# The original project's command lines (CIFAR-style ResNets, 32x32 images, 200 epochs):
# python ./1_train.py --dataset=your_own_splitted_dataset_1 --model_index=36 --objective='ERM' --warmup;
# python ./1_train.py --dataset=your_own_splitted_dataset_2 --model_index=35 --objective='CCE' --warmup --ccegamma=1;
# python ./1_train.py --dataset=your_own_splitted_dataset_3 --model_index=38 --objective='FL' --warmup;
# python ./1_train.py --dataset=your_own_splitted_dataset_4 --model_index=37 --objective='COT' --warmup;
# python ./2_test.py --dataset=your_own_splitted_dataset_1 --model_index=36 --objective='ERM' --datetime='2020-08-10-22-06-19';
#
# Long-tail baselines on the same data:
# python ./1_train.py --dataset=digits-lt --model_index=41 --objective=LDAM --drw $TRAIN_FLAGS
# python ./1_train.py --dataset=digits-lt --model_index=41 --objective=BS $TRAIN_FLAGS
# python ./1_train.py --dataset=digits-lt --model_index=41 --objective=CCE --sampler=class_balanced $TRAIN_FLAGS
