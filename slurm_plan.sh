# A plan of 3_run.sh as Slurm job arrays (SCHEDULER=slurm, or LAUNCH=slurm): sourced by 3_run.sh, which has set
# the plan's variables.  It writes readable scripts into logs/<model>/<dataset>/slurm/<time>/ and submits them:
#
#   row-<k>.sbatch   one job array per row of the plan, one task per seed: the task runs 3_run.sh for that row and
#                    seed (ONLY_ROW), which trains or resumes or skips the run (found by its tag and seed) and
#                    evaluates it; a second stage's array waits for its first stage's, task by task
#                    (--dependency=aftercorr: task i starts from the same seed's run)
#   collect.sbatch   after every array (afterany): compare.py's table and report.py's page of the runs
#   submit.sh        the sbatch commands, in order, with their dependencies: run it again to resubmit (complete runs
#                    are skipped, stopped ones resumed)
#
# Resources (each with its default): SLURM_GPUS (1; 0 for the CPU plans demo, fmnist-lt and study), SLURM_CPUS
# (4), SLURM_MEM (16G), SLURM_TIME (24:00:00), SLURM_PARTITION and SLURM_ACCOUNT (the cluster's defaults),
# SLURM_EXTRA (more sbatch flags, e.g. "--qos=high --constraint=a100").  SLURM_DRY_RUN=1 (or DRY_RUN=1) writes the
# scripts and prints the sbatch commands without submitting.  A task that is preempted is requeued by Slurm
# (--requeue); one that nears its time limit requeues itself (SIGUSR1 two minutes before); either way it resumes
# from last.pth.

check_slurm_values() {  # every value written into a generated script, validated: it can only be what it names
    local name pattern
    for name in SLURM_GPUS:'^[A-Za-z0-9_:]+$' SLURM_CPUS:'^[1-9][0-9]*$' SLURM_MEM:'^[1-9][0-9]*[KMGT]?$' \
                SLURM_TIME:'^[0-9]+([:-][0-9]+)*$' SLURM_PARTITION:'^[A-Za-z0-9_.,-]+$' SLURM_ACCOUNT:'^[A-Za-z0-9_.-]+$'; do
        pattern="${name#*:}"; name="${name%%:*}"
        if [ -n "${!name:-}" ] && ! [[ "${!name}" =~ $pattern ]]; then
            echo "error: $name=$(printf %q "${!name}") is not a value Slurm takes here (it must match $pattern)" >&2
            exit 2
        fi
    done
    local flag
    set -f  # SLURM_EXTRA is split into flags, never glob-expanded
    for flag in ${SLURM_EXTRA:-}; do
        if ! [[ "$flag" =~ ^--[a-z][a-z-]*(=[A-Za-z0-9_.,:=/@%+-]+)?$ ]]; then
            set +f
            echo "error: SLURM_EXTRA: $(printf %q "$flag") is not an sbatch flag of the form --name or --name=value" >&2
            exit 2
        fi
    done
    set +f
}

slurm_settings() {  # the #SBATCH lines every job of the plan shares
    local gpus="${SLURM_GPUS:-}"
    if [ -z "$gpus" ]; then case "$PLAN" in demo|fmnist-lt|study) gpus=0 ;; *) gpus=1 ;; esac; fi
    echo "#SBATCH --cpus-per-task=${SLURM_CPUS:-4}"
    echo "#SBATCH --mem=${SLURM_MEM:-16G}"
    echo "#SBATCH --time=${SLURM_TIME:-24:00:00}"
    [ "$gpus" = 0 ] || echo "#SBATCH --gres=gpu:$gpus"
    [ -z "${SLURM_PARTITION:-}" ] || echo "#SBATCH --partition=$SLURM_PARTITION"
    [ -z "${SLURM_ACCOUNT:-}" ] || echo "#SBATCH --account=$SLURM_ACCOUNT"
    local flag
    set -f
    for flag in ${SLURM_EXTRA:-}; do echo "#SBATCH $flag"; done
    set +f
}

plan_variables() {  # the variables that make 3_run.sh this plan, as bash assignments a job can source
    local name
    printf 'export PLAN=%q DATASET=%q MODEL=%q EPOCHS=%q PYTHON=%q\n' "$PLAN" "$DATASET" "$MODEL" "$EPOCHS" "$PYTHON"
    printf 'export OBJECTIVES=%q\n' "$OBJECTIVES"
    for name in EXTRA ROOT LISTS IMAGES PROCESSES LAUNCH MARKDOWN HEIGHT WIDTH AUGMENT PRETRAINED REPORT RECORDS LRSTEP; do
        if [ -n "${!name+set}" ]; then printf 'export %s=%q\n' "$name" "${!name}"; fi
    done
}

write_row_script() {  # row-<k>.sbatch for row $1 (its index) $2 (its spec) over the seeds of $SEEDS
    local index="$1" spec="$2" seeds=($SEEDS) body
    body="$(row_body "$spec")"
    cat > "$FOLDER/row-$index.sbatch" <<EOF
#!/usr/bin/env bash
# Row $index of plan $PLAN on $DATASET: $spec
# One array task per seed (${seeds[*]}); task i trains, resumes or skips seed i's run and evaluates it.
#SBATCH --job-name=cce-${DATASET// /_}-$index-${body%%:*}
#SBATCH --array=0-$(( ${#seeds[@]} - 1 ))
#SBATCH --output=row-$index-%A_%a.out
#SBATCH --requeue
#SBATCH --signal=B:USR1@120
$(slurm_settings)
set -euo pipefail
cd $(printf %q "$PWD")
source $(printf %q "$FOLDER/plan.env")
seeds=(${seeds[*]})
# Near the time limit Slurm sends USR1: requeue this task, which then resumes from its last.pth.
trap 'scontrol requeue "\${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}"' USR1
SEEDS="\${seeds[\$SLURM_ARRAY_TASK_ID]}" ONLY_ROW=$index SCHEDULER=local bash $(printf %q "$HERE/3_run.sh") &
wait \$!
EOF
}

write_collect_script() {
    cat > "$FOLDER/collect.sbatch" <<EOF
#!/usr/bin/env bash
# The last job of plan $PLAN on $DATASET: compare.py's table and report.py's page of every run the tasks left.
#SBATCH --job-name=cce-${DATASET// /_}-collect
#SBATCH --output=collect-%j.out
#SBATCH --cpus-per-task=1
#SBATCH --mem=${SLURM_MEM:-16G}
#SBATCH --time=01:00:00
$( [ -z "${SLURM_PARTITION:-}" ] || echo "#SBATCH --partition=$SLURM_PARTITION" )
$( [ -z "${SLURM_ACCOUNT:-}" ] || echo "#SBATCH --account=$SLURM_ACCOUNT" )
set -euo pipefail
cd $(printf %q "$PWD")
source $(printf %q "$FOLDER/plan.env")
SEEDS=$(printf %q "$SEEDS") COLLECT=1 bash $(printf %q "$HERE/3_run.sh")
EOF
}

row_index_of() {  # the index of the row a --init_from=row:NAME names, or nothing
    local name="$1" index=0 spec
    for spec in $OBJECTIVES; do
        index=$((index + 1))
        if { [[ "$spec" =~ ^[a-z][a-z0-9_-]*= ]] && [ "${spec%%=*}" = "$name" ]; } || [ "$spec" = "$name" ]; then
            echo "$index"; return
        fi
    done
}

submit_plan() {  # (3_run.sh has checked the SLURM_* values: check_slurm_values)
    FOLDER="$PWD/logs/$MODEL_NAME/$DATASET/slurm/$(date +%Y-%m-%d-%H-%M-%S)"
    mkdir -p "$FOLDER"
    plan_variables > "$FOLDER/plan.env"
    {
        echo '#!/usr/bin/env bash'
        echo "# Submit plan $PLAN on $DATASET (seeds $SEEDS) to Slurm: one job array per row, second stages after their"
        echo "# first (task by task), the table and the report last.  Run it again to resubmit: complete runs are"
        echo "# skipped, stopped ones resumed.  SLURM_DRY_RUN=1 prints the sbatch commands instead."
        echo 'set -euo pipefail'
        echo 'cd "$(dirname "$0")"'
        echo 'submit() {  # sbatch --parsable ARGS, printing the command; in a dry run, a made-up job id ($1)'
        echo '    local fake="$1"; shift'
        echo '    echo "sbatch $*" >&2'
        echo '    if [ "${SLURM_DRY_RUN:-0}" = 1 ]; then echo "$fake"; return; fi'
        echo '    local id'
        echo '    id=$(sbatch --parsable "$@") || { echo "error: sbatch $* failed (above); fix it and run $0 again: complete runs are skipped" >&2; exit 2; }'
        echo '    echo "${id%%;*}"'
        echo '}'
    } > "$FOLDER/submit.sh"
    local index=0 spec name first all=() fake=()
    DRY_COMMANDS=()  # what submit.sh will run, with made-up job ids: a dry run prints these and runs nothing
    for spec in $OBJECTIVES; do
        index=$((index + 1))
        write_row_script "$index" "$spec"
        local dependency="" planned=""
        while IFS= read -r name; do  # a second stage's tasks start after their first stage's, seed by seed
            [ -n "$name" ] || continue
            first="$(row_index_of "$name")"
            dependency="--dependency=aftercorr:\$row$first"
            planned="--dependency=aftercorr:$((1000 + first)) "
        done <<< "$(first_stage_names "$spec")"
        echo "row$index=\$(submit $((1000 + index)) $dependency row-$index.sbatch)" >> "$FOLDER/submit.sh"
        all+=("\$row$index")
        DRY_COMMANDS+=("sbatch ${planned}row-$index.sbatch")
        fake+=("$((1000 + index))")
    done
    write_collect_script
    local joined
    joined="$(IFS=:; echo "${all[*]}")"
    echo "collect=\$(submit 1999 --dependency=afterany:$joined collect.sbatch)" >> "$FOLDER/submit.sh"
    DRY_COMMANDS+=("sbatch --dependency=afterany:$(IFS=:; echo "${fake[*]}") collect.sbatch")
    echo 'echo "submitted: rows ${row1}... and the collecting job $collect (squeue -u ${USER:-$(id -un)} to watch)"' >> "$FOLDER/submit.sh"
    chmod +x "$FOLDER/submit.sh" "$FOLDER"/*.sbatch
    echo "wrote the Slurm scripts of this plan into $FOLDER"
    if [ "$DRY_RUN" = 1 ] || [ "${SLURM_DRY_RUN:-0}" = 1 ]; then  # a dry run executes nothing it wrote
        echo "dry run: nothing submitted; bash $(printf %q "$FOLDER/submit.sh") submits them (job ids made up here):"
        printf '%s\n' "${DRY_COMMANDS[@]}" >&2
        return
    fi
    if ! command -v sbatch > /dev/null; then
        echo "error: SCHEDULER=slurm needs Slurm's sbatch on PATH; the scripts are in $FOLDER (SLURM_DRY_RUN=1 only writes them)" >&2
        exit 2
    fi
    bash "$FOLDER/submit.sh"
}
