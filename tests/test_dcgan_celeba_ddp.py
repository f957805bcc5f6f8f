"""dcgan_celeba.py under torchrun: two gloo processes on the CPU write one set of outputs, stop
together on Ctrl-C, refuse a one-process resume, and the gradient penalty through DDP gives the
single-process gradients."""
import os
import signal
import subprocess
import sys

import torch

from helpers import ENV, ROOT, celeba, ckpt, make_image_folder

SCRIPT = os.path.join(ROOT, "dcgan_celeba.py")
OUTPUTS = ["training_images.png", "losses.png", "progress.gif", "real_vs_fake.png",
           "nearest.png",
           "metrics.csv", "checkpoint.pt", "generator.pt2", "generator_weights.pt"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
DDP_ENV = {**ENV, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}



def test_torchrun_two_processes_write_one_set_of_outputs_and_resume_with_two(tmp_path, capsys):
    data = make_image_folder(tmp_path / "celeba", n=16, size=40, corrupt=True)
    out = tmp_path / "ddp"
    flags = ["--dataroot", data, "--image-size", 32, "--batch-size", 8, "--workers", 0,
             "--ngf", 8, "--ndf", 8, "--log-every", 1]
    r = subprocess.run([*TORCHRUN, SCRIPT, *map(str, flags), "--out", str(out), "--epochs", "1"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT, env=DDP_ENV)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("Starting Training Loop") == 1  # only rank 0 prints
    assert r.stdout.count("arguments: ") == 1
    assert "x 2 processes" in r.stdout and "[0/1][1/2]" in r.stdout
    assert r.stderr.count("skipped 1 unreadable") == 1, r.stderr[-3000:]  # said once
    assert "Traceback" not in r.stderr
    assert sorted(p for p in os.listdir(out) if not p.startswith(".")) == sorted(OUTPUTS)
    c = ckpt(out / "checkpoint.pt")
    assert c["epoch"] == 1 and c["iters"] == 2 and len(c["G_losses"]) == 2 and c["world"] == 2
    assert len(c["rng"]) == 2  # each process's random state, for an exact resume
    assert not any(k.startswith("module.") for k in c["netG"])  # loads without DDP
    # one process cannot continue a two-process run exactly: refused, saying how
    assert celeba("--resume", out / "checkpoint.pt", "--epochs", 2) == 2
    assert "torchrun --nproc_per_node=2" in capsys.readouterr().err
    # two can: the resumed run ends where one two-epoch run ends, bit for bit
    for argv in (["--resume", str(out / "checkpoint.pt"), "--epochs", "2"],
                 [*map(str, flags), "--out", str(tmp_path / "ref"), "--epochs", "2"]):
        r = subprocess.run([*TORCHRUN, SCRIPT, *argv], capture_output=True, text=True,
                           timeout=300, cwd=ROOT, env=DDP_ENV)
        assert r.returncode == 0, r.stderr[-3000:]
    a, b = ckpt(out / "checkpoint.pt"), ckpt(tmp_path / "ref" / "checkpoint.pt")
    assert a["iters"] == b["iters"] == 4 and a["D_losses"] == b["D_losses"]
    assert all(torch.equal(a["netD"][k], b["netD"][k]) for k in a["netD"])


def test_torchrun_ctrl_c_on_one_rank_stops_every_rank_with_a_loadable_checkpoint(tmp_path):
    """SIGINT to rank 1 only (rank 0 writes checkpoints, so it must learn of the stop from the
    other rank); the hint printed then resumes with torchrun."""
    data = make_image_folder(tmp_path / "celeba", n=32, size=40)
    out = tmp_path / "ddp"
    p = subprocess.Popen([*TORCHRUN, SCRIPT, "--dataroot", data, "--image-size", "32",
                          "--batch-size", "8", "--workers", "0", "--ngf", "8", "--ndf", "8",
                          "--log-every", "3", "--epochs", "500", "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                         env=DDP_ENV)
    try:
        for line in p.stdout:  # training under way in its second epoch
            if line.startswith("[1/500]"):
                break
        workers = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                 text=True).stdout.split()
        rank1 = [w for w in workers if b"RANK=1\0" in open(f"/proc/{w}/environ", "rb").read()]
        assert len(rank1) == 1, workers
        os.kill(int(rank1[0]), signal.SIGINT)
        rest, _ = p.communicate(timeout=120)
    finally:
        p.kill()
    assert "interrupted after" in rest, rest[-3000:]
    hint = rest.split("continue with: ")[1].splitlines()[0].split()
    assert hint[0] == "torchrun" and hint[1] == "--nproc_per_node=2", hint
    assert hint[-2:] == ["--resume", f"{out}/checkpoint.pt"], hint
    assert "exitcode: 130" in rest or "exitcode  : 130" in rest, rest[-3000:]
    c = ckpt(out / "checkpoint.pt")
    assert c["epoch"] >= 1 and c["iters"] > 4 and len(c["G_losses"]) == c["iters"]
    assert c["iters"] == 4 * c["epoch"] + c["batch"]  # where --resume goes on


def test_world_size_without_torchruns_other_variables_is_one_error_line(tmp_path, capsys,
                                                                          monkeypatch):
    data = make_image_folder(tmp_path / "celeba", n=4, size=40)
    for env in ({"WORLD_SIZE": "2"}, {"WORLD_SIZE": "2", "RANK": "0"}, {"WORLD_SIZE": "two"},
                {"RANK": "5"}, {"LOCAL_RANK": "0"}, {"WORLD_SIZE": "1", "RANK": "1"},
                {"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "localhost",
                 "MASTER_PORT": "29500"}):
        with monkeypatch.context() as m:
            for name in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
                m.delenv(name, raising=False)
            for name, value in env.items():
                m.setenv(name, value)
            assert celeba("--dataroot", data, "--out", tmp_path / "o", "--dry-run") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and "torchrun" in err[0], err
        assert not (tmp_path / "o").exists()


DDP_GP_WORKER = """
import argparse, sys, torch, torch.distributed as dist
sys.path.insert(0, {root!r})
import dcgan_celeba as d
from torch.nn.parallel import DistributedDataParallel as DDP
dist.init_process_group("gloo")
rank = dist.get_rank()
args = argparse.Namespace(loss="wgan-gp", clip_value=0.01)
norm = d.critic_norm(args)  # the critic's layer norm
torch.manual_seed(0)
netD, ref = d.Discriminator(1, 3, 8, 32, norm), d.Discriminator(1, 3, 8, 32, norm)
ref.load_state_dict(netD.state_dict())
g = torch.Generator().manual_seed(1)
real, fake = torch.randn(8, 3, 32, 32, generator=g), torch.randn(8, 3, 32, 32, generator=g)
ddp, half = DDP(netD), slice(4 * rank, 4 * rank + 4)
penalty = d.critic_rules(args, netD, torch.optim.Adam(netD.parameters()))
(-ddp(real[half]).mean()).backward()  # the loop's order: real, then fake with the penalty
torch.manual_seed(100 + rank)  # each rank's draws for its half
gp = penalty(real[half], fake[half])
(ddp(fake[half]).mean() + gp).backward()
# one process, the whole batch, the same interpolation points
e = torch.cat([torch.rand(4, 1, 1, 1, generator=torch.Generator().manual_seed(100 + r))
               for r in (0, 1)])
(-ref(real).mean()).backward()
ref(fake).mean().backward()
x_hat = (e * real + (1 - e) * fake).requires_grad_(True)
grad, = torch.autograd.grad(ref(x_hat).sum(), x_hat, create_graph=True)
(10.0 * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()).backward()
diff = max((a.grad - b.grad).abs().max().item()
           for a, b in zip(netD.parameters(), ref.parameters()))
sys.stdout.write(f"maxdiff {{diff}} gp {{gp.item()}}\\n")  # one write: the ranks share the pipe
dist.destroy_process_group()
"""


def test_wgan_gp_under_ddp_gives_the_critic_the_single_process_gradients(tmp_path):
    """The gradient penalty's double backward through DistributedDataParallel: 2 gloo ranks on
    half a batch each must give D the gradients of one process on the whole batch."""
    worker = tmp_path / "worker.py"
    worker.write_text(DDP_GP_WORKER.format(root=ROOT))
    r = subprocess.run([*TORCHRUN, str(worker)], capture_output=True, text=True, timeout=400,
                       env=DDP_ENV)
    found = [line.split() for line in r.stdout.splitlines() if line.startswith("maxdiff")]
    assert r.returncode == 0 and len(found) == 2, r.stderr[-2000:]
    assert max(float(f[1]) for f in found) < 1e-4
    assert min(float(f[3]) for f in found) > 0  # a penalty was computed and backpropagated
