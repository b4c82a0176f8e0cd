#!/usr/bin/env bash
# One short GPU check (a few minutes): AMP + channels_last training, data-path and loss benchmarks.
# Run from the repository root on a CUDA machine; prints the numbers to record in bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${WORK:-$(mktemp -d)}"
HERE="$(pwd)"
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0), 'bf16:', torch.cuda.is_bf16_supported())"
cd "$WORK"
python "$HERE/data_split.py" --demo > /dev/null
python "$HERE/bench/throughput.py" --model_index 35 --dataset digits-lt --batchsize 256 --batches 40
python "$HERE/bench/throughput.py" --model_index 41 --dataset digits-lt --height 16 --width 16 --batchsize 256 --batches 40
python "$HERE/bench/losses.py" --repeats 200
python "$HERE/1_train.py" --dataset digits-lt --model_index 35 --objective CCE --epochs 3 --lrstep 2 1 --seed 0 \
    --batchsize 128 --augment crop | tail -2
python "$HERE/2_test.py" --dataset digits-lt --model_index 35 --objective CCE --datetime latest | sed -n 2p
