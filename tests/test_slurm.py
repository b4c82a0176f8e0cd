"""A plan on a cluster: SCHEDULER=slurm writes job arrays (one per row, a task per seed; second stages after their
first stage, task by task) and a last job that compares; tested against a real single-node Slurm (munged,
slurmctld, slurmd started here), never a mock."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, make_dataset

TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")


def plan(cwd, **variables):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **variables}
    return subprocess.run(["bash", str(ROOT / "3_run.sh")], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_scripts_of_a_plan_have_the_right_arrays_and_dependencies(tmp_path):
    """A dry run (SLURM_DRY_RUN=1): the sbatch commands in order, second stages after their first task by task,
    the collecting job after everything; the scripts name their seeds, resources and the row they run."""
    make_dataset(tmp_path / "a_datasets", name="digits-lt")
    result = plan(tmp_path, PLAN="demo", SEEDS="0 1 2", OBJECTIVES="ERM CRT LA", SCHEDULER="slurm", SLURM_DRY_RUN="1",
                  SLURM_GPUS="2", SLURM_PARTITION="gpu", SLURM_EXTRA="--qos=high", RECORDS="my results",
                  LRSTEP="3 2 1")
    assert result.returncode == 0, result.stderr
    commands = [line for line in result.stderr.splitlines() if line.startswith("sbatch ")]
    assert commands == ["sbatch row-1.sbatch", "sbatch --dependency=aftercorr:1001 row-2.sbatch", "sbatch row-3.sbatch",
                        "sbatch --dependency=afterany:1001:1002:1003 collect.sbatch"]
    (folder,) = (tmp_path / "logs" / "SimpleCNN" / "digits-lt" / "slurm").iterdir()
    row = (folder / "row-2.sbatch").read_text()
    assert "#SBATCH --array=0-2" in row and "seeds=(0 1 2)" in row and "ONLY_ROW=2" in row
    assert "#SBATCH --gres=gpu:2" in row and "#SBATCH --partition=gpu" in row and "#SBATCH --qos=high" in row
    assert "#SBATCH --requeue" in row and "scontrol requeue" in row
    assert "COLLECT=1" in (folder / "collect.sbatch").read_text()
    environment = (folder / "plan.env").read_text()
    assert "PLAN=demo" in environment and "--reinit_head" in environment  # the rows, CRT written out
    # what else makes the plan this plan: a job started from a new shell (a resubmission) sources no more
    assert "export RECORDS=my\\ results" in environment and "export LRSTEP=3\\ 2\\ 1" in environment
    subprocess.run(["bash", "-n", str(folder / "submit.sh")], check=True)


def test_a_dry_run_submits_nothing_and_a_refused_submission_is_one_error_line(tmp_path):
    """DRY_RUN=1 (the plan's own dry run) never calls sbatch; an sbatch that refuses a job (here a stand-in that
    fails as sbatch does without a cluster) stops the submission with one error line and status 2."""
    make_dataset(tmp_path / "a_datasets", name="digits-lt")
    tools = tmp_path / "bin"
    tools.mkdir()
    calls = tmp_path / "calls"
    (tools / "sbatch").write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n"
                                  "echo 'sbatch: fatal: Could not establish a configuration source' >&2\nexit 1\n")
    (tools / "sbatch").chmod(0o755)
    path = f"{tools}:{os.environ['PATH']}"
    result = plan(tmp_path, PLAN="demo", OBJECTIVES="ERM CRT", SCHEDULER="slurm", DRY_RUN="1", PATH=path)
    assert result.returncode == 0, result.stderr
    assert "sbatch --dependency=aftercorr:1001 row-2.sbatch" in result.stderr and not calls.exists()
    result = plan(tmp_path, PLAN="demo", OBJECTIVES="ERM CRT", SCHEDULER="slurm", PATH=path)
    assert result.returncode == 2
    assert calls.read_text().count("row-1.sbatch") == 1 and "row-2" not in calls.read_text()  # stopped at the first
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "sbatch row-1.sbatch failed" in errors[0] and "submit.sh again" in errors[0]


def test_two_runs_started_in_the_same_second_get_two_folders(tmp_path):
    import datetime

    import runs
    now = datetime.datetime(2030, 1, 1, 12, 0, 0)
    first = runs.create_run_dir(tmp_path, "SimpleCNN", "tiny", "ERM", now=now)
    second = runs.create_run_dir(tmp_path, "SimpleCNN", "tiny", "ERM", now=now)
    assert first != second and first.is_dir() and second.is_dir()


# ---------------------------------------------------------------- a real Slurm

def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A single-node Slurm for this host and its cores (munged, slurmctld, slurmd), its SLURM_CONF in the
    environment of every command; stopped afterwards."""
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if missing or os.geteuid() != 0:
        reason = f"no single-node Slurm here ({', '.join(missing) or 'not root'}): apt-get install slurm-wlm munge"
        if os.environ.get("CCE_REQUIRE_TOOLS"):
            pytest.fail(f"CCE_REQUIRE_TOOLS is set: {reason}")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("slurm")
    for name in ("state", "spool", "log"):
        (folder / name).mkdir()
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(f"""ClusterName=cce-test
SlurmctldHost={host}
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmdSpoolDir={folder}/spool
StateSaveLocation={folder}/state
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={host} CPUs={os.cpu_count()} RealMemory=4000 State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
    started_munge = False
    if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode != 0:
        Path("/run/munge").mkdir(exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", shutil.which("munged")], check=True)
        started_munge = True
    environment = {**os.environ, "SLURM_CONF": str(conf)}
    subprocess.run(["slurmctld", "-f", str(conf)], check=True, env=environment)
    subprocess.run(["slurmd", "-f", str(conf)], check=True, env=environment)
    deadline = time.time() + 60
    while "idle" not in subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                                       env=environment).stdout:
        assert time.time() < deadline, (folder / "log" / "slurmctld.log").read_text()[-2000:]
        time.sleep(1)
    os.environ["SLURM_CONF"] = str(conf)
    yield environment
    subprocess.run(["scontrol", "shutdown"], env=environment, capture_output=True)
    del os.environ["SLURM_CONF"]
    if started_munge:
        subprocess.run(["pkill", "-x", "munged"])


def wait_for_queue(environment, timeout=400):
    deadline = time.time() + timeout
    while subprocess.run(["squeue", "-h"], capture_output=True, text=True, env=environment).stdout.strip():
        assert time.time() < deadline, subprocess.run(["squeue"], capture_output=True, text=True, env=environment).stdout
        for line in subprocess.run(["squeue", "-h", "-o", "%i %r"], capture_output=True, text=True,
                                   env=environment).stdout.splitlines():
            job, reason = line.split(maxsplit=1)
            if reason == "BeginTime":  # a requeued task waits a while before it may start: now, in a test
                subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], env=environment)
        time.sleep(1)


def table_of(text):
    """The rows of compare.py's printed table: label -> the numbers."""
    lines = text[text.index("objective "):].splitlines()[1:]
    rows = lines[:next(i for i, line in enumerate(lines) if line.startswith("mean "))]
    return {line.split("  ")[0].strip(): re.findall(r"\d+\.\d+", line.split("logs/")[0]) for line in rows}


@pytest.mark.cluster
def test_the_demo_plan_on_slurm_is_the_local_plan_seed_by_seed(slurm, tmp_path):
    variables = dict(PLAN="demo", SEEDS="0 1", OBJECTIVES="ERM CRT", EPOCHS="2", SLURM_CPUS="1", SLURM_MEM="1G")
    for name in ("cluster", "local"):
        make_dataset(tmp_path / name / "a_datasets", name="digits-lt")
    submitted = plan(tmp_path / "cluster", SCHEDULER="slurm", **variables)
    assert submitted.returncode == 0, submitted.stderr
    wait_for_queue(slurm)
    logs = tmp_path / "cluster" / "logs" / "SimpleCNN" / "digits-lt"
    (folder,) = (logs / "slurm").iterdir()
    (collected,) = folder.glob("collect-*.out")
    cluster_table = table_of(collected.read_text())
    assert (logs / "report.html").is_file() and "valid/ chooses" in (logs / "report.html").read_text()
    for config in logs.glob("ERM/*/config.json"):  # every second stage started from its own seed's first stage
        args = json.loads(config.read_text())["args"]
        if args.get("init_from"):
            first = json.loads((Path(args["init_from"]).parent / "config.json").read_text())["args"]
            assert first["seed"] == args["seed"] and not first.get("init_from")
    assert len(list(logs.glob("ERM/*/config.json"))) == 4
    local = plan(tmp_path / "local", **variables)
    assert local.returncode == 0, local.stderr[-2000:]
    assert cluster_table == table_of(local.stdout) and len(cluster_table) == 2


@pytest.mark.cluster
def test_a_cancelled_task_resumes_when_requeued(slurm, tmp_path):
    make_dataset(tmp_path / "a_datasets", name="digits-lt")
    submitted = plan(tmp_path, PLAN="demo", SEEDS="0", OBJECTIVES="ERM", EPOCHS="60", SCHEDULER="slurm",
                     SLURM_CPUS="1", SLURM_MEM="1G")
    assert submitted.returncode == 0, submitted.stderr
    job = re.search(r"submitted: rows (\d+)", submitted.stdout).group(1)
    runs = tmp_path / "logs" / "SimpleCNN" / "digits-lt" / "ERM"
    deadline = time.time() + 300
    while not list(runs.glob("*/last.pth")):
        assert time.time() < deadline
        time.sleep(0.5)
    subprocess.run(["scancel", f"{job}_0"], env=slurm, check=True)
    while "CANCELLED" not in subprocess.run(["scontrol", "show", "job", f"{job}_0"], capture_output=True, text=True,
                                            env=slurm).stdout:
        assert time.time() < deadline
        time.sleep(0.5)
    (run,) = runs.iterdir()
    stopped_at = len((run / "valid.csv").read_text().splitlines()) - 1
    assert 1 <= stopped_at < 60
    subprocess.run(["scontrol", "requeue", f"{job}_0"], env=slurm, check=True)
    wait_for_queue(slurm)
    assert [path.name for path in runs.iterdir()] == [run.name]  # the same run, continued
    config = json.loads((run / "config.json").read_text())
    assert config.get("resumed_with") and config["finished"]["epochs"] == 60
    assert (run / "test_metrics.json").is_file()
