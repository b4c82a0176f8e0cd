#!/usr/bin/env bash
# Batch experiments: a plan is a dataset, a network, training flags and a list of rows (an objective and its
# flags), run for every seed in SEEDS, each run evaluated on the test split, then one table (mean +- std over
# seeds) of every row.
#
#   bash 3_run.sh                                   # the demo: long-tailed digits, ~1.5 min on 2 CPU cores
#   EPOCHS=1 bash 3_run.sh                          # a quick smoke run
#   SEEDS="0 1 2" PLAN=fmnist-lt bash 3_run.sh      # Fashion-MNIST-LT, all eight objectives, 3 seeds (CPU)
#   SEEDS="0 1 2" PLAN=cifar10-lt bash 3_run.sh     # CIFAR-10-LT as Cao et al. (2019) train it (GPU)
#   PLAN=cifar100-lt bash 3_run.sh                  # CIFAR-100-LT, same recipe (GPU)
#   SEEDS="0 1 2" PLAN=fmnist-lt OBJECTIVES=baselines bash 3_run.sh   # today's baselines (below)
#   DRY_RUN=1 PLAN=cifar10-lt OBJECTIVES=baselines bash 3_run.sh     # print the commands, run nothing
#
# Environment variables (each has a default per plan):
#   PLAN        demo | study | fmnist-lt | cifar10-lt | cifar100-lt | imagenet-lt | places-lt | inat2018 |
#               transfer-source | transfer (results/transfer.sh runs both: LIFT's mechanics on Fashion-MNIST)
#   DATASET     PLAN=study: the folder in a_datasets/ to study (its network, size and schedule: study.py)
#   MODEL, HEIGHT, WIDTH, AUGMENT, PRETRAINED   PLAN=study: override the study's network, size, augmentation
#               (default crop: a study cannot know whether a mirrored image is still its class), or fine-tune
#               ImageNet weights (PRETRAINED=1, from the torch hub cache); MODEL=clip:NAME.TAG (weights in
#               open_clip's cache) studies LIFT's rows with its recipe at the encoder's input size
#   SEEDS       seeds to run every row with (default "0"; SEED is read too)
#   OBJECTIVES  the rows: OBJECTIVE or OBJECTIVE:FLAG,FLAG, e.g. "ERM LDAM:--drw CCE:--ccegamma=2"; a row may be
#               named, name=OBJECTIVE:FLAGS, and a second stage names its first with --init_from=row:NAME (or
#               row:OBJECTIVE for an unnamed row without flags): each seed's second stage then starts from the
#               same seed's run of that row, found by the row's tag (1_train.py --tag, --init_from tag:...).
#               "baselines" runs the rows of $BASELINES in order; docs/recipes.md gives every value and its source.
#   EPOCHS      overrides the plan's number of epochs (of first stages; a second stage keeps its own)
#   LRSTEP      overrides the plan's lr stages (--lrstep), e.g. EPOCHS=60 LRSTEP="44 8 8" for fmnist-lt's 11 2 2 at
#               four times the length
#   EXTRA       more flags for every 1_train.py run
#   ROOT        torchvision's download folder for the benchmark plans (default data)
#   SOURCE      PLAN=transfer: the source network's checkpoint its rows fine-tune (default
#               logs/transfer-source.pth; a run records the file's SHA-256, so another file there trains them again)
#   LISTS       the large plans: the folder holding the split lists (ImageNet_LT_train.txt, ...)
#   IMAGES      the large plans: the folder the lists' paths are relative to
#   MODEL       the network, overriding the plan's (imagenet-lt: 14 ResNeXt-50, or 11 ResNet-50): a registry index,
#               or a backbone by name as 1_train.py's --model takes it (timm:NAME, clip:NAME.TAG, clip:CONFIG.json)
#   LAUNCH      how to start training, e.g. "torchrun --nproc_per_node=8" (default: $PYTHON)
#   PROCESSES   training processes in all (machines x GPUs): the large plans divide their global batch
#   MARKDOWN    also write the table to this markdown file
#   REPORT      the HTML report of the plan's runs (default logs/<model>/<dataset>/report.html; REPORT= none)
#   DRY_RUN     1: print the commands instead of running them
#   PENDING     1: print each row and seed that would train or be evaluated (seed, row, what was found:
#               incomplete, complete, stale or none; tab-separated): what is left of a plan (it trains nothing,
#               but prepares a missing dataset, whose images a record must match)
#   TAGS        1: print each row's tag, network folder, dataset, the row and its 1_train.py flags for seed 0
#               (tab-separated; the flags apart by the ASCII unit separator, \x1f), run nothing (tables.py finds a
#               row's runs by its tag, and shows only current ones)
#   RECORDS     also write each evaluated run's record to this folder (records.py export; e.g. results, committed),
#               and keep a current record there as its row's run where logs/ has none or a stale one (a fresh
#               clone: nothing trains again; a second stage that must train trains its first stage again, for its
#               checkpoint); the table then reads the records (docs/operations.md, "Records")
#
# A run of a row and seed that is already complete is not trained again (and not evaluated again once it has
# test metrics, a SADE row's under every test prior); one that stopped part-way is resumed; one that trained
# otherwise than the row trains now is trained again beside it.  Paths are relative to the current folder
# (a_datasets/, logs/, data/); the scripts are found next to this file.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python}"
PLAN="${PLAN:-demo}"
SEEDS="${SEEDS:-${SEED:-0}}"
ROOT="${ROOT:-data}"
LISTS="${LISTS:-lists}"
IMAGES="${IMAGES:-images}"
PROCESSES="${PROCESSES:-1}"
DRY_RUN="${DRY_RUN:-0}"
STUDIED="${DATASET:-}"; USER_MODEL="${MODEL:-}"
if ! [[ "$SEEDS" =~ ^[[:space:]]*[0-9]+([[:space:]]+[0-9]+)*[[:space:]]*$ ]]; then
    echo "error: SEEDS takes whole numbers separated by spaces, e.g. SEEDS=\"0 1 2\"; got $(printf %q "$SEEDS")" >&2
    exit 2
fi
check_name() {  # a dataset name ($2, from variable $1) by the rules of --dataset: one plain folder name, no control
    "$PYTHON" -c "import sys; sys.path.insert(0, sys.argv[1]); from utils import UserError, name_argument
try:
    name_argument(sys.argv[2])(sys.argv[3])
except UserError as error:
    sys.exit(f'error: {error}')" "$HERE" "$1" "$2" || exit 2
}
[ -z "$STUDIED" ] || check_name DATASET "$STUDIED"
source "$HERE/slurm_plan.sh"  # the Slurm functions; their values are checked before any work
if [ "${SCHEDULER:-local}" = slurm ] || [ "${LAUNCH:-}" = slurm ]; then check_slurm_values; fi
# LIFT's optimisation (docs/recipes.md, "LIFT"): SGD at lr 0.01, weight decay 5e-4, cosine per epoch, batch 128
LIFT_RECIPE="--lr=0.01 --weight_decay=5e-4 --schedule=cosine_each_epoch --batchsize=128"
ALL_OBJECTIVES="ERM CCE COT FL CB LDAM:--drw BS LA"
LARGE_OBJECTIVES="ERM LDAM:--drw BS LA"

from_lists() {  # PREPARE for a benchmark defined by <PREFIX>_train/_val/_test.txt in $LISTS, named NAME
    PREPARE=("$HERE/data_split.py" --from_list --train_list "$LISTS/$1_train.txt" --valid_list "$LISTS/$1_val.txt"
             --test_list "$LISTS/$1_test.txt" --images "$IMAGES" --out_name "$2")
}

# The methods' recipes (docs/recipes.md gives each value's source; tests/test_recipes.py keeps the two in step).
# Second stages of Kang et al. (cRT, LWS) and Alshammari et al. (weight balancing): the class-aware sampler (cRT,
# LWS), one cosine lr per epoch stepped at its start, the frozen backbone in training mode (batch norm re-estimated).
CRT="--epochs=10"; LWS="--epochs=5"
WB1="wb1=ERM:--weight_decay=5e-3"; WB2="--lr=0.01,--weight_decay=0.1,--epochs=10,--batchsize=64"
SAM_RHO=0.8; RA_MAGNITUDE=9
# The 2021-2023 records (Zhong et al.'s MiSLAS, Zhu et al.'s BCL, Du et al.'s GLMC) as their CIFAR-10-LT code or paper
# has them; MiSLAS's stage 1 is the plan's mixup row unless MISLAS1 names a row of its own.
MISLAS1=""; MISLAS2="--lws_classifier_lr=0.5,--las_head=0.3,--las_tail=0.0,--bn_stats=frozen"
BCL="--normed_head,--normed_scale=30"  # alpha, beta, temperature and the projection heads: their code's defaults
GLMC="--glmc_label_weighting=1.2,--glmc_consistency=4,--glmc_resample=0"
GLMC_OPTIMISER=",--lr=0.01,--weight_decay=5e-3,--batchsize=64,--schedule=cosine_each_epoch,--no-warmup"
# The multi-expert methods (Wang et al.'s RIDE, Zhang et al.'s SADE): three experts; RIDE's per-expert term is
# LDAM-DRW; SADE's NormedLinear x30.  Their CIFAR optimiser (Nesterov, weight decay 5e-4) where the plan is CIFAR's.
RIDE="--method=ride"; SADE="--method=sade,--normed_head,--normed_scale=30"
CMO_PAUSES=""     # CMO's off-epochs (4 and 3) as absolute epochs, as in its 200-epoch recipe
PLAN_ROWS=""      # rows a plan adds to the baselines (the official values beside the ones chosen on valid/)
case "$PLAN" in
    demo)  # SimpleCNN on 16x16 long-tailed handwritten digits (scikit-learn's, ratio 10)
        DATASET="digits-lt"; MODEL=41; DEFAULT_OBJECTIVES="ERM CCE COT FL"; DEFAULT_EPOCHS=30
        TRAIN_FLAGS="--lr=0.05 --lrstep 15 10 5 --warmup --batchsize=32 --height=16 --width=16 --augment=crop"
        PREPARE=("$HERE/data_split.py" --demo) ;;
    study)  # any dataset folder: the methods a practitioner should try first, network and schedule from its data
        if [ -z "$STUDIED" ] || [ ! -d "a_datasets/$STUDIED/train" ]; then
            echo "error: PLAN=study needs DATASET=<name> of a dataset folder a_datasets/<name>/{train,valid,test}/ (data_split.py makes one)" >&2
            exit 2
        fi
        DATASET="$STUDIED"
        recipe="$("$PYTHON" "$HERE/study.py" --dataset "$DATASET" ${PRETRAINED:+--pretrained})" || exit 2  # it said why
        eval "$recipe"
        MODEL="${USER_MODEL:-$MODEL}"; DEFAULT_EPOCHS="$STUDY_EPOCHS"
        TRAIN_FLAGS="--lr=$LR --lrstep $LRSTEP --warmup --batchsize=$BATCH --height=${HEIGHT:-$SIZE} --width=${WIDTH:-$SIZE} --augment=${AUGMENT:-crop}${PRETRAINED:+ --pretrained}"
        DEFAULT_OBJECTIVES="ERM LA BS LDAM:--drw CRT CCE"
        if [[ "$MODEL" == clip:* ]]; then  # a CLIP encoder (its weights cached, or EXTRA=--pretrained=FILE): LIFT's
            # recipe at the encoder's input size (docs/recipes.md), its default module, the classifier alone, and ERM
            size="$("$PYTHON" -c "import sys; sys.path.insert(0, sys.argv[1]); from get_model import network
try:
    size = network(sys.argv[2]).exact_size
except ValueError as error:
    sys.exit(f'error: MODEL: {error}')
print(*((size, size) if isinstance(size, int) else size))" "$HERE" "$MODEL")" || exit 2
            read -r height width <<< "$size"
            DEFAULT_EPOCHS=10; LRSTEP=""  # the study's lr stages are its from-scratch recipe's
            TRAIN_FLAGS="$LIFT_RECIPE --height=${HEIGHT:-$height} --width=${WIDTH:-$width} --augment=${AUGMENT:-rrc_flip} --pretrained"
            DEFAULT_OBJECTIVES="LA:--method=lift LA:--method=lift,--lift_module=none ERM:--method=lift"
        fi
        PREPARE=(true) ;;
    fmnist-lt)  # CPU-sized: SimpleCNN, 15 epochs, Fashion-MNIST with CIFAR-10-LT's counts (ratio 100)
        DATASET="fmnist-lt"; MODEL=41; DEFAULT_OBJECTIVES="$ALL_OBJECTIVES"; DEFAULT_EPOCHS=15
        TRAIN_FLAGS="--lr=0.1 --lrstep 11 2 2 --warmup --batchsize=128 --height=28 --width=28 --augment=crop"
        WB1="ERM"  # chosen on valid/: the plan's own 5e-4 (80.8) beat 5e-3 (63.7), docs/results.md
        SAM_RHO=0.05; RA_MAGNITUDE=5  # chosen on valid/ (of 0.05/0.2/0.8 and 5/9/15), docs/results.md
        CMO_PAUSES=",--mix_off_reference=200"  # CMO on for the same share of the schedule as in its 200 epochs
        PLAN_ROWS="CCE:--ccegamma=-0.9
            LDAM:--drw,--sam_rho=0.8,--sam_bn_stats=both
            ERM:--augment=randaugment,--randaugment_magnitude=9
            LA:--augment=randaugment,--randaugment_magnitude=9
            ERM:--method=glmc,\$GLMC"  # the authors' gamma, rho and magnitude; GLMC with the plan's optimiser
        PREPARE=("$HERE/data_split.py" --from_torchvision FashionMNIST --root "$ROOT" --imbalance_ratio 100
                 --n_max 5000 --valid_per_class 100 --out_name fmnist-lt) ;;
    cifar10-lt|cifar100-lt)  # Cao et al. (2019): ResNet-32, 200 epochs, lr 0.1, x0.01 at 160 and 180, wd 2e-4
        if [ "$PLAN" = cifar10-lt ]; then NAME=CIFAR10; else NAME=CIFAR100; fi
        # Cao et al.'s baselines as they ran them: focal gamma 1, class-balanced re-weighting reduced by the weighted
        # mean (--cb_reduction weighted), LDAM's DRW likewise (always weighted).
        DATASET="$PLAN"; MODEL=43; DEFAULT_EPOCHS=200
        DEFAULT_OBJECTIVES="ERM CCE COT FL:--focal_gamma=1 CB:--cb_reduction=weighted LDAM:--drw BS LA"
        TRAIN_FLAGS="--lr=0.1 --lrstep 160 20 20 --lrdecay=0.01 --warmup --batchsize=128 --weight_decay=2e-4 --height=32 --width=32 --augment=crop_flip"
        # Weight balancing's stage 1 as Alshammari et al. train it (lr 0.01, cosine, batch 64, wd 5e-3, 320 epochs).
        WB1="wb1=ERM:--weight_decay=5e-3,--lr=0.01,--schedule=cosine_epoch,--no-warmup,--batchsize=64,--epochs=320"
        # MiSLAS: mixup with x0.1 steps at 160 and 180; stage 2 per dataset (CIFAR-100: lr factor 0.2, smoothing
        # 0.4 to 0.1, shifted batch norm).  BCL: the paper's batch 256 and weight decay 5e-4, warm-up then cosine.
        MISLAS1="mislas1=ERM:--mix=mixup,--mix_alpha=1,--mix_prob=1,--lrdecay=0.1"
        if [ "$PLAN" = cifar100-lt ]; then
            MISLAS2="--lws_classifier_lr=0.2,--las_head=0.4,--las_tail=0.1,--bn_stats=update"
        fi
        BCL="$BCL,--batchsize=256,--weight_decay=5e-4,--schedule=cosine"
        RIDE="$RIDE,--nesterov,--weight_decay=5e-4"  # their lr steps x0.01 at 160 and 180, as the plan's
        SADE="$SADE,--nesterov,--weight_decay=5e-4,--lrdecay=0.1"  # theirs x0.1
        # Exact published train counts (n_max 5000 / 500); valid/ comes from the official test set.
        PREPARE=("$HERE/data_split.py" --from_torchvision "$NAME" --root "$ROOT" --imbalance_ratio 100
                 --valid_source test --out_name "$PLAN") ;;
    imagenet-lt)  # Kang et al. (2020): ResNeXt-50 32x4d (MODEL=11: ResNet-50), 90 epochs, batch 512, lr 0.2, cosine
        DATASET="imagenet-lt"; MODEL="${MODEL:-14}"; DEFAULT_OBJECTIVES="$LARGE_OBJECTIVES"; DEFAULT_EPOCHS=90
        TRAIN_FLAGS="--lr=0.2 --schedule=cosine --weight_decay=5e-4 --batchsize=$((512 / PROCESSES)) --height=224 --width=224 --augment=rrc_flip --workers=8"
        CRT="--epochs=10,--lr=0.2"; LWS="--epochs=5,--lr=0.2"; SAM_RHO=0.05
        from_lists ImageNet_LT imagenet-lt ;;
    places-lt)  # Liu et al. (2019), Kang et al. (2020): ImageNet-pretrained ResNet-152 fine-tuned, 30 epochs
        DATASET="places-lt"; MODEL="${MODEL:-13}"; DEFAULT_OBJECTIVES="$LARGE_OBJECTIVES"; DEFAULT_EPOCHS=30
        TRAIN_FLAGS="--pretrained --lr=0.01 --schedule=cosine --weight_decay=5e-4 --batchsize=$((256 / PROCESSES)) --height=224 --width=224 --augment=rrc_flip --workers=8"
        CRT="--epochs=10,--lr=0.1"; LWS="--epochs=5,--lr=0.1"; SAM_RHO=0.05
        from_lists Places_LT places-lt ;;
    inat2018)  # Kang et al. (2020): ResNet-50, 90 epochs, batch 512, lr 0.2, weight decay 1e-4, cosine
        DATASET="inat2018"; MODEL="${MODEL:-11}"; DEFAULT_OBJECTIVES="$LARGE_OBJECTIVES"; DEFAULT_EPOCHS=90
        TRAIN_FLAGS="--lr=0.2 --schedule=cosine --weight_decay=1e-4 --batchsize=$((512 / PROCESSES)) --height=224 --width=224 --augment=rrc_flip --workers=8"
        CRT="--epochs=30,--lr=0.2"; LWS="--epochs=5,--lr=0.2"; WB1="wb1=ERM:--weight_decay=5e-4"; SAM_RHO=0.05
        # The literature tests on the official validation list; valid/ takes 2 training images of each class.
        PREPARE=("$HERE/data_split.py" --from_list --train_list "$LISTS/iNaturalist18_train.txt"
                 --test_list "$LISTS/iNaturalist18_val.txt" --valid_per_class 2 --images "$IMAGES"
                 --out_name inat2018) ;;
    transfer-source|transfer)  # LIFT's mechanics on a CPU (bench/transfer/): a small ViT of CLIP's architecture
        # pretrained here on five balanced Fashion-MNIST classes (transfer-source), then fine-tuned on the other five,
        # long-tailed, with LIFT's recipe (transfer): no classifier from text (no text tower), so LIFT's class-mean
        # start; the rows: the classifier alone, full fine-tuning (their lr for it), AdaptFormer; ERM and LA each.
        # The config by a path relative to the repository root, where the plan runs (a tag that is the same in every
        # checkout of it); from elsewhere, this checkout's file.
        VIT="bench/transfer/vit.json"; [ -f "$VIT" ] || VIT="$HERE/$VIT"
        MODEL="${USER_MODEL:-clip:$VIT}"
        PREPARE=("$HERE/bench/transfer/prepare.py" --root "$ROOT")
        if [ "$PLAN" = transfer-source ]; then
            DATASET="fmnist-head"; DEFAULT_EPOCHS=20; DEFAULT_OBJECTIVES="ERM"
            TRAIN_FLAGS="--optimizer=adamw --lr=1e-3 --weight_decay=0.05 --schedule=cosine --warmup --batchsize=128 --height=32 --width=32 --augment=crop_flip"
        else
            DATASET="fmnist-tail"; DEFAULT_EPOCHS=10
            TRAIN_FLAGS="--pretrained=${SOURCE:-logs/transfer-source.pth} $LIFT_RECIPE --height=32 --width=32 --augment=crop_flip"
            LIFT="--method=lift,--lift_init=class_mean"
            DEFAULT_OBJECTIVES="ERM:$LIFT,--lift_module=none LA:$LIFT,--lift_module=none
                ERM:$LIFT,--lift_module=full,--lr=0.0005 LA:$LIFT,--lift_module=full,--lr=0.0005 ERM:$LIFT LA:$LIFT"
        fi ;;
    *)
        echo "error: unknown PLAN '$PLAN'; choose demo, study, fmnist-lt, cifar10-lt, cifar100-lt, imagenet-lt, places-lt, inat2018, transfer-source or transfer" >&2
        exit 2 ;;
esac
STAGE2="--schedule=cosine_epoch,--no-warmup"
# The multi-expert rows where their network can be built (methods/experts.py: SimpleCNN and the CIFAR ResNets)
case "$MODEL" in 41|42|43|44|45|46) EXPERT_ROWS="LDAM:--drw,$RIDE ERM:$SADE" ;; *) EXPERT_ROWS="" ;; esac
# Weight balancing's stage 1 is the plan's ERM row when WB1 is "ERM", else a named row of its own before stage 2.
if [ "$WB1" = ERM ]; then WB1=""; WB_START="row:ERM"; else WB_START="row:${WB1%%=*}"; fi
if [ -z "$MISLAS1" ]; then MISLAS1_ROW=""; MISLAS1="mixup"; else MISLAS1_ROW="$MISLAS1"; fi
MIX="--mix_alpha=1"
CMO="--mix=cmo,$MIX,--mix_prob=0.5,--mix_off_first=4,--mix_off_last=3,--cmo_alpha=1$CMO_PAUSES"
REMIX="--mix=remix,$MIX,--mix_prob=1,--remix_kappa=3,--remix_tau=0.5"
BASELINES="ERM
    CRT
    ERM:--init_from=row:ERM,--lws,--sampler=class_aware,$STAGE2,$LWS
    $WB1
    CB:--init_from=$WB_START,--freeze_backbone,--cb_loss=softmax_bce,--maxnorm=0.1,--maxnorm_threshold=relative,--maxnorm_every=epoch,$STAGE2,$WB2
    mixup=ERM:--mix=mixup,$MIX,--mix_prob=1
    ERM:--mix=cutmix,$MIX,--mix_prob=0.5
    ERM:$REMIX
    ERM:$REMIX,--drw,--drw_reduction=plain
    ERM:$CMO
    LA
    LA:$CMO
    LDAM:--drw,--sam_rho=$SAM_RHO,--sam_bn_stats=both
    ERM:--augment=randaugment,--randaugment_magnitude=$RA_MAGNITUDE
    LA:--augment=randaugment,--randaugment_magnitude=$RA_MAGNITUDE
    $MISLAS1_ROW
    LAS:--init_from=row:${MISLAS1%%=*},--lws,--sampler=class_aware,--schedule=cosine_each_epoch,--no-warmup,--epochs=10,$MISLAS2
    LA:--method=bcl,$BCL
    ERM:--method=glmc,$GLMC$GLMC_OPTIMISER
    $EXPERT_ROWS
    ${PLAN_ROWS//\$GLMC/$GLMC}"
if [ "$PLAN" = fmnist-lt ]; then  # the CPU plan also runs both batch-norm modes of cRT and LWS
    BASELINES="$BASELINES
    CRT,--bn_stats=frozen
    ERM:--init_from=row:ERM,--lws,--sampler=class_aware,$STAGE2,$LWS,--bn_stats=frozen"
fi
OBJECTIVES="${OBJECTIVES:-$DEFAULT_OBJECTIVES}"
if [ "$OBJECTIVES" = baselines ]; then OBJECTIVES="$BASELINES"; fi
CRT_ROW="ERM:--init_from=row:ERM,--freeze_backbone,--reinit_head,--sampler=class_aware,$STAGE2,$CRT"
OBJECTIVES="${OBJECTIVES//CRT/$CRT_ROW}"  # CRT in a list of rows: cRT from that plan's ERM row
OBJECTIVES="$(printf '%s\n' $OBJECTIVES | awk '!seen[$0]++')"  # a row given twice (an official value the plan uses) runs once
EPOCHS="${EPOCHS:-$DEFAULT_EPOCHS}"
DATASET="${DATASET_NAME:-$DATASET}"
[ -z "${DATASET_NAME:-}" ] || check_name DATASET_NAME "$DATASET_NAME"
if [ -n "${LRSTEP:-}" ]; then
    if ! [[ "$LRSTEP" =~ ^[1-9][0-9]*( [1-9][0-9]*)*$ ]]; then
        echo "error: LRSTEP takes positive whole numbers of epochs separated by spaces, got '$LRSTEP'" >&2; exit 2
    fi
    if [[ "$TRAIN_FLAGS" != *"--lrstep "* ]]; then
        echo "error: LRSTEP: PLAN=$PLAN has no lr stages (its schedule is not --lrstep)" >&2; exit 2
    fi
    TRAIN_FLAGS="$(sed -E "s/--lrstep [0-9 ]+/--lrstep $LRSTEP /" <<< "$TRAIN_FLAGS")"
fi

show() {  # a command as it would run (DRY_RUN) or ran
    printf '%s\n' "$*"
}


row_body() {  # a row without its name: name=OBJECTIVE:FLAGS -> OBJECTIVE:FLAGS
    if [[ "$1" =~ ^[a-z][a-z0-9_-]*= ]]; then echo "${1#*=}"; else echo "$1"; fi
}

row_tag() {  # the tag of a row's runs: a hash of everything that defines them but the seed
    printf '%s\n' "$DATASET" "$MODEL" "$EPOCHS" "$TRAIN_FLAGS" "$(row_body "$1")" "${EXTRA:-}" | sha1sum | cut -c1-12
}

named_row() {  # the row a --init_from=row:NAME refers to
    local name="$1" spec
    for spec in $OBJECTIVES; do
        if [ "${spec%%=*}" = "$name" ] && [[ "$spec" =~ ^[a-z][a-z0-9_-]*= ]]; then echo "$spec"; return; fi
        if [ "$spec" = "$name" ]; then echo "$spec"; return; fi
    done
    echo "error: a row refers to row:$name, which is not a row of this plan" >&2
    exit 2
}

first_stage_names() {  # the NAMEs of row $1's --init_from=row:NAME flags, one a line (the plan's and Slurm's)
    local body flag parts
    body="$(row_body "$1")"
    [ "$body" != "${body%%:*}" ] || return 0
    IFS=',' read -r -a parts <<< "${body#*:}"
    for flag in "${parts[@]}"; do
        [[ "$flag" != --init_from=row:* ]] || echo "${flag#--init_from=row:}"
    done
}

row_flags() {  # the flags of a row, with --init_from=row:NAME turned into the tag of that row's runs
    local body flags="" flag target parts
    body="$(row_body "$1")"
    [ "$body" != "${body%%:*}" ] || return 0
    IFS=',' read -r -a parts <<< "${body#*:}"
    for flag in "${parts[@]}"; do
        if [[ "$flag" == --init_from=row:* ]]; then
            target="$(named_row "${flag#--init_from=row:}")" || exit 2
            flag="--init_from=tag:$(row_tag "$target")"
        fi
        flags="$flags $flag"
    done
    echo "$flags"
}

# MODEL: a registry index (--model_index) or a backbone by name (--model timm:NAME, clip:NAME.TAG, clip:CONFIG.json)
if [[ "$MODEL" =~ ^[0-9]+$ ]]; then MODEL_FLAG="--model_index=$MODEL"; else MODEL_FLAG="--model=$MODEL"; fi
model_folder_name() {  # the run folders' network name of MODEL (logs/<name>/...; a registry index's without torch)
    "$PYTHON" -c "import sys; sys.path.insert(0, sys.argv[1]); from b_models.names import folder_name
model = sys.argv[2]
try:
    print(folder_name(int(model) if model.isdigit() else model))
except ValueError as error:
    sys.exit(f'error: MODEL: {error}')" "$HERE" "$MODEL" || exit 2
}

row_command() {  # ROW_COMMAND: the 1_train.py flags of row $2 (a spec) for seed $1
    local body objective flags
    body="$(row_body "$2")"; objective="${body%%:*}"; flags="$(row_flags "$2")"
    # shellcheck disable=SC2206  # flag lists are meant to split
    ROW_COMMAND=(--dataset="$DATASET" "$MODEL_FLAG" --objective="$objective" --epochs="$EPOCHS"
                 --seed="$1" --tag="$(row_tag "$2")" $TRAIN_FLAGS $flags ${EXTRA:-})
}

for spec in $OBJECTIVES; do row_flags "$spec" > /dev/null; done  # a reference to no row stops the plan here
if [ "${TAGS:-0}" = 1 ]; then  # tag, network folder, dataset, row, its 1_train.py flags for seed 0 (apart by \x1f)
    name="$(model_folder_name)"
    for spec in $OBJECTIVES; do
        row_command 0 "$spec"
        printf '%s\t%s\t%s\t%s\t%s\n' "$(row_tag "$spec")" "$name" "$DATASET" "$spec" "$(IFS=$'\x1f'; echo "${ROW_COMMAND[*]}")"
    done
    exit 0
fi

if [ ! -d "a_datasets/$DATASET" ]; then
    if [ "$DRY_RUN" = 1 ]; then show "$PYTHON" "${PREPARE[@]}"; else "$PYTHON" "${PREPARE[@]}"; fi
fi

MODEL_NAME="$(model_folder_name)"

EVAL_FLAGS="--posthoc_tau=auto --tau_norm=auto"  # test-time adjustments beside every row (tau-norm where it applies)

row_eval_flags() {  # the 2_test.py flags of the row in ROW_COMMAND: SADE's test-time aggregation learns its weights
    # for each test prior, so its rows (the method in the row, EXTRA or the plan's flags) are evaluated under all eleven
    case " ${ROW_COMMAND[*]} " in
        *" --method=sade "*) echo "$EVAL_FLAGS --test_prior=all" ;;
        *) echo "$EVAL_FLAGS" ;;
    esac
}

start_runs_server() {  # one runs.py serve answers every runs.py find of this plan (RUNS_ASK, RUNS_ANSWER): a
    # question then costs no start of Python and torch, seconds each; it ends with the plan (its input closes)
    coproc RUNS_SERVER { trap '' INT; exec "$PYTHON" "$HERE/runs.py" serve; }  # Ctrl-C: the plan's to act on,
    # even while the server still imports torch (an ignored signal stays ignored in the program exec starts)
    SERVER_PID="$RUNS_SERVER_PID"  # the coproc's variables go when it ends; this copy stays for the wait
    exec {RUNS_ASK}>&"${RUNS_SERVER[1]}" {RUNS_ANSWER}<&"${RUNS_SERVER[0]}"
    eval "exec ${RUNS_SERVER[1]}>&- ${RUNS_SERVER[0]}<&-"  # the copies above, which subshells keep, stay open
    trap stop_runs_server EXIT
}

stop_runs_server() {  # at the plan's end, however it ends: close the server's input and wait for it to go, so
    # nothing of the plan outlives it (a caller reading the plan's output waits for every process that holds it)
    exec {RUNS_ASK}>&-
    wait "$SERVER_PID" 2> /dev/null || true
}

find_run() {  # the runs.py find answer for seed $1 of row $2: "<status><TAB><run>[<TAB><settings>]", or nothing
    local needs=() request status answer
    row_command "$1" "$2"
    # a run evaluated without the test priors its row's evaluation asks for is evaluated again
    case " $(row_eval_flags) " in *" --test_prior=all "*) needs+=(--evaluated_with=test_priors) ;; esac
    # a row's current record stands for its run where logs/ has none (a fresh clone, a lost machine), except while
    # a first stage is restored for its checkpoint (restore_first_stages: restoring, a local it sets)
    [ -z "${RECORDS:-}" ] || [ -n "${restoring:-}" ] || needs+=(--records="$RECORDS")
    request=(find "$MODEL_FLAG" --dataset="$DATASET" --tag="$(row_tag "$2")" --seed="$1" "${needs[@]}" --
             "${ROW_COMMAND[@]}")
    case "${request[*]}" in
        *$'\x1f'*|*$'\n'*)  # the question's separators
            echo "error: row $2 (or EXTRA) holds a newline or an ASCII unit separator (\\x1f) in a flag" >&2
            exit 2 ;;
    esac
    (IFS=$'\x1f'; printf '%s\n' "${request[*]}") >&"$RUNS_ASK"
    # its exit status (1: no run) and what it printed; "not found" and an error it explained print nothing
    if ! IFS=$'\x1f' read -r status answer <&"$RUNS_ANSWER"; then
        echo "error: runs.py serve, which finds this plan's runs, has stopped (killed, or the error above)" >&2
        exit 2
    fi
    [ "$status" != 2 ] || exit 2  # the question was refused (its error line is above): not "no run"
    [ -z "$answer" ] || printf '%s\n' "$answer"
}

lock_run() {  # hold a lock on seed $1 of row $2 while it trains and is evaluated: two plans never train one run at once
    command -v flock > /dev/null || return 0
    local locks="logs/$MODEL_NAME/$DATASET/.locks"
    mkdir -p "$locks"
    exec {LOCK_FD}> "$locks/$(row_tag "$2")-$1.lock"
    if ! flock -n "$LOCK_FD"; then
        echo "waiting: another plan is training row $2, seed $1"
        flock "$LOCK_FD"
    fi
}

unlock_run() {
    [ -z "${LOCK_FD:-}" ] || exec {LOCK_FD}>&-
    LOCK_FD=""
}

first_stages() {  # the rows whose runs row $1 starts from, one a line
    local name
    while IFS= read -r name; do
        [ -z "$name" ] || named_row "$name"
    done <<< "$(first_stage_names "$1")"
}

restore_first_stages() {  # seed $1 of row $2 is to train and starts from other rows' checkpoints: where such a
    # run is not under logs/ (only its record, on a machine without the run folders), train it again first
    local seed="$1" spec="$2" first found status restoring=1  # restoring: find_run leaves the records out
    while IFS= read -r first; do
        [ -n "$first" ] || continue
        found="$(find_run "$seed" "$first")"
        IFS=$'\t' read -r status _ <<< "$found"
        case "$status" in
            evaluated|complete) ;;
            *) echo "row $spec, seed $seed starts from row $first, whose run is not under logs/ (found:"\
                    "${status:-none}; a record keeps no checkpoint): training that first"
               run_row "$seed" "$first" ;;
        esac
    done <<< "$(first_stages "$spec")"
}

table_run() {  # seed $1 of row $2's run in the table is $3: a row's first, or its run trained again (restored)
    local key="$1"$'\t'"$2" index
    for index in "${!RUN_KEYS[@]}"; do
        if [ "${RUN_KEYS[$index]}" = "$key" ]; then RUNS[index]="$3"; return; fi
    done
    [ -n "${restoring:-}" ] || { RUN_KEYS+=("$key"); RUNS+=("$3"); }  # a restored row comes in its own turn
}

record_of() {  # the record RECORDS holds of run $1 (records.py's place: the run's last four folders under RECORDS)
    local run="$1" tail="" part
    for part in 1 2 3 4; do tail="/${run##*/}$tail"; run="${run%/*}"; done
    echo "$RECORDS$tail"
}

run_row() {  # train (or resume, or skip) and evaluate seed $1 of row $2; its run (its record, with RECORDS) goes
    # into the table (RUNS)
    local seed="$1" spec="$2" found="" status run objective eval_flags
    row_command "$seed" "$spec"
    eval_flags="$(row_eval_flags)"
    objective="${ROW_COMMAND[2]#--objective=}"
    if [ "$DRY_RUN" != 1 ] && [ -n "${RECORDS:-}" ] && [ -n "$(first_stages "$spec")" ]; then
        found="$(find_run "$seed" "$spec")"
        IFS=$'\t' read -r status _ <<< "$found"
        case "$status" in
            evaluated|complete|incomplete|recorded) ;;
            *) restore_first_stages "$seed" "$spec"; row_command "$seed" "$spec" ;;  # (this row's ROW_COMMAND again)
        esac
    fi
    [ "$DRY_RUN" = 1 ] || lock_run "$seed" "$spec"
    [ "$DRY_RUN" = 1 ] || found="$(find_run "$seed" "$spec")"
    IFS=$'\t' read -r status run _ <<< "$found"  # runs.py find: tab-separated, as a folder may hold spaces
    case "$status" in
        recorded)
            echo "done already: $run (its record; row $spec, seed $seed)"
            unlock_run
            table_run "$seed" "$spec" "$run"
            return ;;
        evaluated) echo "done already: $run (row $spec, seed $seed)" ;;
        complete) ;;
        incomplete) ${LAUNCH:-$PYTHON} "$HERE/1_train.py" --resume="$run" ;;
        *)
            if [ "$status" = stale ]; then
                echo "note: $run has this row's tag but trained otherwise (${found##*$'\t'}); training it again"
            fi
            if [ "$DRY_RUN" = 1 ]; then show ${LAUNCH:-$PYTHON} "$HERE/1_train.py" "${ROW_COMMAND[@]}"
            else ${LAUNCH:-$PYTHON} "$HERE/1_train.py" "${ROW_COMMAND[@]}"; fi ;;
    esac
    if [ "$DRY_RUN" = 1 ]; then
        show "$PYTHON" "$HERE/2_test.py" --dataset="$DATASET" "$MODEL_FLAG" --objective="$objective" \
            --datetime="<run of tag $(row_tag "$spec"), seed $seed>" $eval_flags
        return
    fi
    # A run trained just now is found by its tag (its folder is named when it starts); a resumed or finished one is
    # the folder found above
    case "$status" in
        evaluated|complete|incomplete) ;;
        *) found="$(find_run "$seed" "$spec")"; IFS=$'\t' read -r status run _ <<< "$found" ;;
    esac
    if [ "$status" != evaluated ]; then
        "$PYTHON" "$HERE/2_test.py" --dataset="$DATASET" "$MODEL_FLAG" --objective="$objective" \
            --datetime="$(basename "$run")" $eval_flags
    fi
    if [ -n "${RECORDS:-}" ]; then
        "$PYTHON" "$HERE/records.py" export "$run" --to "$RECORDS"
        run="$(record_of "$run")"  # the table reads the records: one root for the kept and the trained
    fi
    unlock_run
    table_run "$seed" "$spec" "$run"
}

compare_and_report() {  # the table of RUNS, the validation curves and the HTML report
    REPORT="${REPORT-logs/$MODEL_NAME/$DATASET/report.html}"
    echo
    if [ "$DRY_RUN" = 1 ]; then
        show "$PYTHON" "$HERE/compare.py" --runs "<the runs above>"
        [ -z "$REPORT" ] || show "$PYTHON" "$HERE/report.py" --runs "<the runs above>" --out="$REPORT"
        return
    fi
    "$PYTHON" "$HERE/compare.py" --runs "${RUNS[@]}" --plot="logs/$MODEL_NAME/$DATASET/valid_acc.svg" \
        ${MARKDOWN:+--markdown="$MARKDOWN"}
    if [ -n "$REPORT" ]; then
        echo
        "$PYTHON" "$HERE/report.py" --runs "${RUNS[@]}" --out="$REPORT"
    fi
}

RUNS=(); RUN_KEYS=()  # the table's runs, and the seed and row of each
SCHEDULER="${SCHEDULER:-local}"
if [ "${LAUNCH:-}" = slurm ]; then SCHEDULER=slurm; unset LAUNCH; fi  # LAUNCH=slurm: the same as SCHEDULER=slurm

if [ -n "${COLLECT:-}" ]; then  # the last job of a cluster plan: the runs every task left, compared and reported
    start_runs_server
    for seed in $SEEDS; do
        for spec in $OBJECTIVES; do
            found="$(find_run "$seed" "$spec")"
            IFS=$'\t' read -r status run _ <<< "$found"
            if [ "$status" = evaluated ] && [ -n "${RECORDS:-}" ] && [ -d "$(record_of "$run")" ]; then
                run="$(record_of "$run")"  # as a local plan's table: the records, one root for all its runs
            fi
            if [ "$status" = evaluated ] || [ "$status" = recorded ]; then RUNS+=("$run")
            else echo "warning: no evaluated run of row $spec, seed $seed (${found:-none}); left out" >&2; fi
        done
    done
    [ ${#RUNS[@]} -gt 0 ] || { echo "error: no evaluated run of this plan to compare" >&2; exit 2; }
    compare_and_report
elif [ "${PENDING:-0}" = 1 ]; then  # what is left: the rows and seeds neither evaluated nor kept from a record
    start_runs_server
    for seed in $SEEDS; do
        for spec in $OBJECTIVES; do
            IFS=$'\t' read -r status _ <<< "$(find_run "$seed" "$spec")"
            case "$status" in
                evaluated|recorded) ;;
                *) printf '%s\t%s\t%s\n' "$seed" "$spec" "${status:-none}" ;;
            esac
        done
    done
elif [ "$SCHEDULER" = slurm ]; then
    submit_plan
elif [ "$SCHEDULER" = local ]; then
    [ "$DRY_RUN" = 1 ] || start_runs_server
    index=0
    for seed in $SEEDS; do
        index=0
        for spec in $OBJECTIVES; do
            index=$((index + 1))
            [ -z "${ONLY_ROW:-}" ] || [ "$ONLY_ROW" = "$index" ] || continue
            run_row "$seed" "$spec"
        done
    done
    [ -n "${ONLY_ROW:-}" ] || compare_and_report  # one task of a cluster plan leaves the table to the last job
else
    echo "error: unknown SCHEDULER '$SCHEDULER'; choose local or slurm" >&2
    exit 2
fi

# The original project's command lines (CIFAR-style ResNets, 32x32 images, 200 epochs):
# python ./1_train.py --dataset=your_own_splitted_dataset_1 --model_index=36 --objective='ERM' --warmup;
# python ./1_train.py --dataset=your_own_splitted_dataset_2 --model_index=35 --objective='CCE' --warmup --ccegamma=1;
# python ./1_train.py --dataset=your_own_splitted_dataset_3 --model_index=38 --objective='FL' --warmup;
# python ./1_train.py --dataset=your_own_splitted_dataset_4 --model_index=37 --objective='COT' --warmup;
# python ./2_test.py --dataset=your_own_splitted_dataset_1 --model_index=36 --objective='ERM' --datetime='2020-08-10-22-06-19';
