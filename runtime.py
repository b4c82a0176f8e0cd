"""Where a script runs its network: device, processes (DDP under torchrun), mixed precision, and a record of
the software and hardware."""
import os
import platform
import re
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist


class Runtime:
    """This process's device, rank and mixed-precision settings; with ``WORLD_SIZE > 1`` it joins the group.

    Mixed precision (bf16, or fp16 without bf16 support) is for training on CUDA; evaluation runs in float32
    unless ``amp_eval``: reduced-precision logits, scaled by LDAM's ``s``, flip predictions, and published
    numbers are float32.
    """

    def __init__(self, no_amp=False, amp_eval=False):
        self.world_size = int(os.environ.get("WORLD_SIZE", 1))
        self.distributed = self.world_size > 1
        self.rank = int(os.environ.get("RANK", 0))
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if torch.cuda.is_available():
            self.device = torch.device("cuda", local_rank)
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        else:
            self.device = torch.device("cpu")
        if self.distributed:
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        cuda = self.device.type == "cuda"
        self.amp_dtype = None if no_amp or not cuda else (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
        self.amp_eval = amp_eval
        self.channels_last = cuda

    @property
    def is_main(self):
        return self.rank == 0

    def autocast(self, evaluation=False):
        """Mixed precision for a training step, or for evaluation only with ``amp_eval``; else float32."""
        if self.amp_dtype is None or (evaluation and not self.amp_eval):
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def prepare(self, model):
        """``model`` on this device, in the memory format its convolutions run fastest in."""
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value):
        """List of every rank's ``value``."""
        if not self.distributed:
            return [value]
        values = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def all_sum(self, tensor):
        if self.distributed:
            dist.all_reduce(tensor)
        return tensor

    def average_gradients(self, parameters):
        """Average the gradients of parameters that live outside the DDP-wrapped network (a method's heads)."""
        if self.distributed:
            for parameter in parameters:
                if parameter.grad is not None:
                    dist.all_reduce(parameter.grad)
                    parameter.grad /= self.world_size

    def all_max(self, tensor):
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor

    def barrier(self):
        if self.distributed:
            dist.barrier()

    def close(self):
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def exit_process(status):
    """Exit; under torchrun skip interpreter finalisation, where gloo's worker threads can abort the
    process after the process group was destroyed (an intermittent "terminate called" at exit)."""
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


# ---------------------------------------------------------------- the environment record

def environment_record(device=None):
    """Versions and hardware a run used, for its checkpoint and ``config.json``."""
    import numpy as np
    import torchvision

    device = torch.device(device or "cpu")
    record = {"python": platform.python_version(), "torch": str(torch.__version__), "torchvision": str(torchvision.__version__),
              "numpy": str(np.__version__), "platform": platform.platform(), "device": device.type,
              "processor": _processor_name(), "git_commit": _git_commit()}
    if device.type == "cuda":
        record.update(cuda=str(torch.version.cuda), cudnn=torch.backends.cudnn.version(),
                      gpu=torch.cuda.get_device_name(device))
    return record


def _processor_name():
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit():
    """The project's commit (with ``-dirty`` when files differ from it), or None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def torch_minor(version):
    """``'2.14.1+cu130'`` -> ``(2, 14)``."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:2])
