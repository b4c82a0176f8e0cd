#!/usr/bin/env bash
# Which arrangement finishes a queue of plan runs soonest on this machine?  Trains the fmnist-lt plan's ERM row
# (seed 0) for EPOCHS epochs in four arrangements, one after the other, and prints each one's seconds per epoch
# (the last epoch, so torch.compile's first-epoch compilation is left out) and its runs per hour relative to one
# stream of two threads:
#   A  one stream, 2 threads           B  one stream, 2 threads, --compile
#   C  two streams of 1 thread each    D  two streams of 1 thread each, --compile
# Run it with nothing else running.  It works in a scratch folder (a_datasets/ linked, logs/ thrown away).
#
#   python data_split.py --from_torchvision FashionMNIST --root data --imbalance_ratio 100 --n_max 5000 \
#       --valid_per_class 100 --out_name fmnist-lt
#   bash bench/arrangements.sh            # EPOCHS=3 by default
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
EPOCHS="${EPOCHS:-3}"
DATASET="${DATASET:-fmnist-lt}"
[ -d "a_datasets/$DATASET/train" ] || { echo "error: a_datasets/$DATASET/ is missing; make it first (see the header)" >&2; exit 2; }
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/cce-arrangements.XXXXXX")"
trap '[ -n "${KEEP:-}" ] || rm -rf "$SCRATCH"' EXIT
ln -s "$PWD/a_datasets" "$SCRATCH/a_datasets"
FLAGS=(--dataset="$DATASET" --model_index=41 --objective=ERM --epochs="$EPOCHS" --seed=0 --lr=0.1 --lrstep 11 2 2
       --warmup --batchsize=128 --height=28 --width=28 --augment=crop)

one_run() {  # one_run THREADS LOGDIR [--compile]: train in LOGDIR, print the last epoch's seconds
    local threads="$1" dir="$2"; shift 2
    mkdir -p "$dir" && ln -sfn "$PWD/a_datasets" "$dir/a_datasets"
    (cd "$dir" && OMP_NUM_THREADS="$threads" "$PYTHON" "$HERE/1_train.py" "${FLAGS[@]}" "$@" > train.out 2>&1)
    tail -n 1 "$(find "$dir/logs" -name train.csv)" | tr -d '\r' | awk -F, '{print $NF}'
}

arrangement() {  # arrangement NAME STREAMS [--compile]
    local name="$1" streams="$2" s pids=(); shift 2
    for s in $(seq "$streams"); do
        one_run $((2 / streams)) "$SCRATCH/$name-$s" "$@" > "$SCRATCH/$name-$s.time" &
        pids+=($!)
    done
    for s in "${pids[@]}"; do wait "$s"; done
    # seconds per epoch, the mean of the streams; throughput (epochs per second in all) = streams / that mean
    cat "$SCRATCH/$name"-*.time | awk -v name="$name" -v n="$streams" '{t += $1} END {print name, n, t / n, n * n / t}'
}

{
    arrangement A 1
    arrangement B 1 --compile
    arrangement C 2
    arrangement D 2 --compile
} > "$SCRATCH/table"
base="$(awk '$1 == "A" {print $4}' "$SCRATCH/table")"
echo "arrangement (fmnist-lt ERM, SimpleCNN, epoch $EPOCHS of $EPOCHS)  streams  s/epoch per stream  throughput vs A"
awk -v base="$base" '{
    name = ($1 == "A") ? "A one stream, 2 threads" : ($1 == "B") ? "B one stream, 2 threads, --compile" : \
           ($1 == "C") ? "C two streams of 1 thread" : "D two streams of 1 thread, --compile"
    printf "%-45s %7d %19.1f %16.2f\n", name, $2, $3, $4 / base }' "$SCRATCH/table"
