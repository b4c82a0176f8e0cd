#!/usr/bin/env bash
# The Fashion-MNIST-LT campaign behind docs/results.md: every run its tables use, trained by 3_run.sh's plans in
# STREAMS parallel streams of one thread each (bench/arrangements.sh measured the arrangements), each run's record
# written to results/ when it has been evaluated.  A finished run is skipped and a stopped one resumed, and two
# streams never train one run at once (3_run.sh locks each row and seed), so the campaign can be stopped and
# started again at any time: it goes on where it stood.
#
#   bash results/campaign.sh             # from the repository root: a_datasets/, logs/ and results/ there
#   STREAMS=1 bash results/campaign.sh   # one stream
#   python tables.py                     # then: the tables of docs/results.md and the README from the records
#
# Each job is one plan call for one seed, or a command (COMMAND: an authors' code, the transfer experiment); the
# streams take the jobs in order.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STREAMS="${STREAMS:-2}"
SIXTY='EPOCHS=60 LRSTEP="44 8 8"'  # four times the plan's 15 epochs, its lr stages (11 2 2) scaled
SCHEDULE_ROWS='ERM LA mixup=ERM:--mix=mixup,--mix_alpha=1,--mix_prob=1 ERM:--mix=cutmix,--mix_alpha=1,--mix_prob=0.5
    ERM:--augment=randaugment,--randaugment_magnitude=5'
GRID_ROWS='LDAM:--drw,--sam_rho=0.2,--sam_bn_stats=both ERM:--augment=randaugment,--randaugment_magnitude=15
    ERM:--mix=mixup,--mix_alpha=0.2,--mix_prob=1 ERM:--mix=cutmix,--mix_alpha=0.2,--mix_prob=0.5
    ERM:--weight_decay=5e-3'
# The authors' code beside this project's rows (bench/authors/; their clone and its dependencies outside the
# repository: RIDE_CODE, RIDE_DEPS); a job of its own after seed 0's rows, skipped when its output exists.
RIDE_OUT=results/authors/ride/fmnist-lt-seed0
AUTHORS=("COMMAND: [ -e $RIDE_OUT/run.json ] || PYTHONPATH=\"\${RIDE_DEPS:-/work/official/RIDE-deps}\" OMP_NUM_THREADS=1 \
    python \"$HERE/bench/authors/ride.py\" --code \"\${RIDE_CODE:-/work/official/RIDE}\" --dataset fmnist-lt --seed 0 \
    --data_dir \"$PWD/a_datasets\" --out $RIDE_OUT")
# The transfer experiment (results/transfer.sh: LIFT's mechanics on a network pretrained here), one job of its own
# after seed 1's rows; a command rather than a fmnist-lt plan call.
TRANSFER=("COMMAND: bash \"$HERE/results/transfer.sh\"")
# GLMC's code on seeds 1 and 2 beside this project's (seed 0 alone cannot tell a gap from a seed's spread).
glmc_authors() {
    local out="results/authors/glmc/fmnist-lt-seed$1"
    echo "COMMAND: [ -e $out/run.json ] || OMP_NUM_THREADS=1 python \"$HERE/bench/authors/glmc.py\" \
        --code \"\${GLMC_CODE:-/work/official/GLMC/GLMC-2023}\" --dataset fmnist-lt --seed $1 \
        --data_dir \"$PWD/a_datasets\" --out $out"
}
JOBS=()
for seed in 0 1 2; do
    JOBS+=("SEEDS=$seed" "SEEDS=$seed OBJECTIVES=baselines")
    [ "$seed" != 0 ] || JOBS+=("${AUTHORS[@]}")
    [ "$seed" != 1 ] || JOBS+=("${TRANSFER[@]}")
    [ "$seed" = 0 ] || JOBS+=("$(glmc_authors "$seed")")
done
for seed in 0 1; do
    JOBS+=("SEEDS=$seed $SIXTY OBJECTIVES='$SCHEDULE_ROWS'")
done
JOBS+=("SEEDS=0 OBJECTIVES='$GRID_ROWS'" "SEEDS=1 OBJECTIVES='LDAM:--drw,--sam_rho=0.2,--sam_bn_stats=both'")
mkdir -p logs
QUEUE="$(mktemp "${TMPDIR:-/tmp}/cce-campaign.XXXXXX")"
trap 'rm -f "$QUEUE" "$QUEUE.lock"' EXIT
echo 0 > "$QUEUE"

next_job() {  # the index of the next job nobody has taken, or nothing
    local index
    exec {queue_fd}> "$QUEUE.lock"
    flock "$queue_fd"
    index="$(cat "$QUEUE")"
    echo $((index + 1)) > "$QUEUE"
    exec {queue_fd}>&-
    [ "$index" -lt "${#JOBS[@]}" ] && echo "$index"
}

stream() {  # take jobs until none is left
    local index
    while index="$(next_job)"; do
        echo "stream $1: job $((index + 1))/${#JOBS[@]}: ${JOBS[$index]}"
        case "${JOBS[$index]}" in
            COMMAND:*) eval "${JOBS[$index]#COMMAND:}" ;;
            *) eval "env PLAN=fmnist-lt OMP_NUM_THREADS=1 REPORT= RECORDS=results ${JOBS[$index]} bash \"$HERE/3_run.sh\"" ;;
        esac || echo "stream $1: job $((index + 1)) failed; the next call of this script tries it again" >&2
    done
}

for number in $(seq "$STREAMS"); do
    stream "$number" > "logs/campaign-stream$number.log" 2>&1 &
done
wait
echo "campaign done; regenerate the tables: python tables.py"
