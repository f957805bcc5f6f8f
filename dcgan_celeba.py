"""DCGAN faces on CelebA: the PyTorch "DCGAN Tutorial" (N. Inkawhich), as one runnable script.

Follows https://pytorch.org/tutorials/beginner/dcgan_faces_tutorial.html section by section and
under its names (Inputs, Data, weights_init, Generator, Discriminator, Loss Functions and
Optimizers, Training, Results); what this script adds is marked `# Addition:` after the
tutorial's code in each section. A section of its own adds the advanced topics of
"Comprehensive Introduction to Turing Learning and GANs, Part 2" (Towards Data Science,
https://towardsdatascience.com/comprehensive-introduction-to-turing-learning-and-gans-part-2-fd8e4a70775):
its Keras CelebA model, WGAN (weight clipping), WGAN-GP and hinge losses, its troubleshooting
knobs and failure warnings, and FID / Inception Score.

    python dcgan_celeba.py --dataroot data/celeba --epochs 5      # improved defaults
    python dcgan_celeba.py --dataroot data/celeba --tutorial      # the tutorial's exact settings
    python dcgan_celeba.py --resume outputs/dcgan_celeba/checkpoint.pt --epochs 10
    python dcgan_celeba.py --generate outputs/dcgan_celeba/generator.pt2 --num-samples 64
    torchrun --standalone --nproc_per_node=8 dcgan_celeba.py --dataroot data/celeba   # DDP

CelebA: download img_align_celeba.zip from the tutorial's Google Drive folder
(https://drive.google.com/drive/folders/0B7EVK8r0v71pTUZsaXdaSnZBZzg) or Kaggle
(https://www.kaggle.com/datasets/jessicali9530/celeba-dataset) and unzip it into data/celeba, so
that the images are data/celeba/img_align_celeba/*.jpg. A flat folder of images works too.

Writes to --out (default outputs/dcgan_celeba): training_images.png, losses.png, progress.gif,
real_vs_fake.png, fake_samples.png, metrics.csv, checkpoint.pt (every epoch, every
--checkpoint-every iterations, on Ctrl-C/SIGTERM and at --time-budget) and generator.pt2
(torch.export: (N, nz, 1, 1) noise in, (N, nc, S, S) images in [-1, 1] out; anywhere:
torch.export.load(path).module(), but load only files you trust; --generate here reads only
its weights, never code).

What differs from the tutorial and why:
- D returns logits and the loss is BCEWithLogitsLoss (the tutorial: Sigmoid + BCELoss): the
  same values, numerically stable, and allowed under autocast. D(x), D(G(z)) are still printed
  as probabilities.
- Default speed settings (--tutorial turns them off): decoded images cached once as uint8 in
  memory, channels-last, bf16 autocast where the hardware has it, no host sync per
  iteration (the stats line syncs once). benchmarks/bench_celeba.py times them against the
  tutorial's own code.
- --time-budget SECONDS stops training cleanly (checkpoint, figures, export), for fixed-time
  comparisons; --fid N --fid-every E adds FID and Inception Score rows to metrics.csv.
- Fixed-noise samples, fake_samples.png and generator.pt2 come from an eval-mode copy of G whose
  batch-norm statistics are recomputed from fresh noise: the tutorial samples in train mode
  (batch statistics), which an exported generator cannot do, and the running statistics lag
  far behind the weights in short runs (flat grey samples).
- Image sizes 32-256 (the tutorial's networks at 64), flat folders, corrupt files skipped,
  exact resume (mid-epoch too), Ctrl-C/SIGTERM save, torchrun/DDP in place of DataParallel.
- A last batch of one image is dropped (batch norm needs two).

Copy this file together with common.py.
"""
import argparse
import contextlib
import copy
import functools
import hashlib
import math
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
import torch.utils.data
import torchvision.datasets as dset
import torchvision.transforms as transforms
import torchvision.utils as vutils
from PIL import Image
from torch.nn.parallel import DistributedDataParallel as DDP

from common import (ArgumentParser, MetricsCSV, StopOnCtrlC, atomic_save, command_line,
                    export_generator, fail, format_eta, frechet_distance, gaussian_stats,
                    given_flags, ignore_signals, int_range, load_checkpoint, load_generator,
                    non_negative_int, parse_with_tutorial, pick_device, positive_float,
                    positive_int, prepare_out, resume_args, rng_state, run, seed_int,
                    set_rng_state, set_seed, unit_interval, use_agg_unless)

SCRIPT = "dcgan_celeba"
# What --tutorial sets: the tutorial's own values, and none of the speed additions
TUTORIAL_SETTINGS = dict(batch_size=128, image_size=64, lr=0.0002, beta1=0.5, beta2=0.999,
                         workers=2, amp="off", cache=False, channels_last=False, log_every=50,
                         sample_every=500)
# With --resume only these may differ from the run being resumed (they change no result)
MAY_CHANGE = {"epochs", "time_budget", "log_every", "sample_every", "checkpoint_every",
              "dry_run", "device", "workers", "cache", "cache_dir", "show", "fid", "fid_every",
              "fid_weights", "overwrite"}


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
def build_parser():
    p = ArgumentParser(prog="dcgan_celeba.py", description="DCGAN faces on CelebA: the PyTorch "
                       "DCGAN Tutorial, plus advanced GAN topics, resumable, sizes 32-256.")
    t = p.add_argument_group("the tutorial's inputs")
    t.add_argument("--dataroot", default="data/celeba",
                   help="Root directory for dataset: img_align_celeba/*.jpg in it, or images")
    t.add_argument("--workers", type=int_range(0, 64), default=2,
                   help="Number of workers for dataloader (and for building the cache)")
    t.add_argument("--batch-size", type=int_range(2, 4096), default=None,
                   help="Batch size during training (default 128; 32 with --arch "
                   "encoder-decoder). With torchrun: the global batch, split over processes")
    t.add_argument("--image-size", type=int_range(32, 256), default=64,
                   help="Spatial size of training images: 32, 64, 128 or 256")
    t.add_argument("--nc", type=int_range(1, 3), default=3, help="Number of channels: 3 or 1")
    t.add_argument("--nz", type=int_range(1, 1024), default=100, help="Size of z latent vector")
    t.add_argument("--ngf", type=int_range(1, 128), default=64,
                   help="Size of feature maps in generator")
    t.add_argument("--ndf", type=int_range(1, 128), default=64,
                   help="Size of feature maps in discriminator")
    t.add_argument("--epochs", type=int_range(1, 100000), default=5,
                   help="Number of training epochs")
    t.add_argument("--lr", type=positive_float, default=None,
                   help="Learning rate for optimizers (default 0.0002; 0.0001 with --loss "
                   "wgan-gp, 0.00005 with --loss wgan)")
    t.add_argument("--beta1", type=unit_interval, default=None,
                   help="Beta1 hyperparam for Adam optimizers (default 0.5; 0.9 with --arch "
                   "encoder-decoder; 0.0 with --loss wgan or wgan-gp)")
    t.add_argument("--tutorial", action="store_true",
                   help="the tutorial's exact settings instead of the improved defaults: " +
                   " ".join(("--no-" if v is False else "--") + k.replace("_", "-") +
                            ("" if isinstance(v, bool) else f" {v}")
                            for k, v in TUTORIAL_SETTINGS.items()))
    d = p.add_argument_group("data and speed")
    d.add_argument("--cache", action=argparse.BooleanOptionalAction, default=None,
                   help="decode, resize and crop every image once into a uint8 file "
                   "(--cache-dir) and train from memory (default: on when it takes at most "
                   "half of the free memory)")
    d.add_argument("--cache-dir", metavar="DIR",
                   help="folder for the cache file, created if missing (default: --dataroot)")
    d.add_argument("--amp", choices=["auto", "off", "bf16", "fp16"], default="auto",
                   help="mixed precision: auto is bf16 on CUDA and on CPUs with bf16 "
                   "instructions, else off; fp16 (CUDA) adds a GradScaler")
    d.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="NHWC memory format, which fast convolution kernels prefer")
    d.add_argument("--compile", action="store_true", help="torch.compile G and D")
    d.add_argument("--hflip", action="store_true", help="random horizontal flips")
    d.add_argument("--sync-bn", action="store_true",
                   help="with torchrun on CUDA: batch statistics over all processes")
    a = p.add_argument_group("advanced topics (Turing Learning and GANs, Part 2)")
    a.add_argument("--arch", choices=["dcgan", "encoder-decoder"], default="dcgan",
                   help="dcgan: the tutorial's networks; encoder-decoder: the article's Keras "
                   "CelebA model (64x64)")
    a.add_argument("--net-capacity", type=int_range(1, 256), default=16,
                   help="encoder-decoder: filters of the first block (NET_CAPACITY)")
    a.add_argument("--filter-size", type=int_range(1, 15), default=5,
                   help="encoder-decoder: odd convolution size (FILTER_SIZE)")
    a.add_argument("--num-load", type=positive_int, default=None,
                   help="train on the first N images only (default all; 10000 with --arch "
                   "encoder-decoder, NUM_LOAD)")
    a.add_argument("--loss", choices=list(LOSSES), default="bce",
                   help="bce: the tutorial's; wgan: Wasserstein loss with weight clipping "
                   "(--clip-value); wgan-gp: with a gradient penalty (critic with layer norm); "
                   "hinge: SAGAN/BigGAN's")
    a.add_argument("--clip-value", type=positive_float, default=0.01,
                   help="wgan: D's weights are clipped to [-c, c] after each step")
    a.add_argument("--gp-weight", type=positive_float, default=10.0,
                   help="wgan-gp: weight of the gradient penalty")
    a.add_argument("--beta2", type=unit_interval, default=None,
                   help="Adam beta2 (default 0.999; 0.9 with --loss wgan or wgan-gp)")
    a.add_argument("--d-updates", type=int_range(1, 100), default=None,
                   help="D steps per G step (default 1; 5 with --loss wgan or wgan-gp)")
    a.add_argument("--g-updates", type=int_range(1, 100), default=1,
                   help="G steps per iteration, each after the first on new noise")
    a.add_argument("--lr-d", type=positive_float, help="D's learning rate (default --lr)")
    a.add_argument("--lr-g", type=positive_float, help="G's learning rate (default --lr)")
    a.add_argument("--label-smoothing", type=unit_interval, default=0.0, metavar="X",
                   help="bce: D's targets for real images become 1 - X (one-sided)")
    a.add_argument("--noise", choices=["normal", "uniform"], default="normal",
                   help="latent noise: standard normal or uniform in [-1, 1]")
    a.add_argument("--progress-every", type=non_negative_int, default=None,
                   help="progress figure (8 fakes titled with D's score) every N iterations "
                   "into OUT/visualization/ (default 80 with --arch encoder-decoder, else off)")
    e = p.add_argument_group("evaluation")
    e.add_argument("--fid", type=int_range(0, 100000), default=0, metavar="N",
                   help="FID and Inception Score of N generated images (FID against N real) at "
                   "the end; needs pip install -r requirements-fid.txt (default 0: off)")
    e.add_argument("--fid-every", type=non_negative_int, default=0, metavar="E",
                   help="with --fid: also every E epochs (default 0: only at the end)")
    e.add_argument("--fid-weights", metavar="PATH",
                   help="local Inception weights file for --fid (offline machines)")
    e.add_argument("--generate", metavar="PATH",
                   help="no training: write samples of a generator.pt2 into --out")
    e.add_argument("--num-samples", type=int_range(1, 1024), default=64,
                   help="images for --generate")
    e.add_argument("--save-images", metavar="DIR",
                   help="with --generate: also one PNG per sample into DIR")
    e.add_argument("--interpolate", type=int_range(2, 64), metavar="K",
                   help="with --generate: also a K-step walk between two latent points")
    r = p.add_argument_group("run control")
    r.add_argument("--out", default=f"outputs/{SCRIPT}", help="folder for everything written")
    r.add_argument("--overwrite", action="store_true",
                   help="allow --out to hold an earlier run, which is replaced")
    r.add_argument("--resume", metavar="PATH",
                   help="continue the run of this checkpoint.pt (only --epochs, run control, "
                   "evaluation and loading-speed flags may change)")
    r.add_argument("--time-budget", type=positive_float, metavar="SECONDS",
                   help="stop training after this long; the checkpoint and results are written")
    r.add_argument("--seed", type=seed_int, default=999, help="manualSeed")
    r.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                   help="auto picks cuda, then mps, then cpu")
    r.add_argument("--log-every", type=positive_int, default=50,
                   help="stats line (the loop's one host sync) every N iterations")
    r.add_argument("--sample-every", type=positive_int, default=500,
                   help="fixed_noise grid into img_list every N iterations")
    r.add_argument("--checkpoint-every", type=non_negative_int, default=0,
                   help="also write checkpoint.pt every N iterations (default 0: at epoch ends)")
    r.add_argument("--dry-run", action="store_true",
                   help="one training iteration, then every output file")
    r.add_argument("--show", action="store_true", help="also show the figures in windows")
    return p


def parse_args(argv=None):
    """The flags, checked; with --resume the checkpoint's own settings (see MAY_CHANGE)."""
    parser = build_parser()
    args = parse_with_tutorial(parser, argv, TUTORIAL_SETTINGS)
    checkpoint = None
    if args.resume and not args.generate:  # the run it names: its folder, data and sizes
        checkpoint = load_checkpoint(args.resume, SCRIPT)
        if not isinstance(checkpoint.get("args"), dict):
            fail(f"{args.resume} holds no arguments; pass a checkpoint.pt of {SCRIPT}.py")
        saved = dict(checkpoint["args"], out=os.path.dirname(args.resume) or ".")
        if os.path.abspath(args.out) == os.path.abspath(saved["out"]):
            saved["out"] = args.out  # --out naming the checkpoint's own folder is no change
        args = resume_args(parser, argv, saved, MAY_CHANGE | {"resume"})
        for dest in MAY_CHANGE - given_flags(parser, argv) - {"dry_run", "show", "overwrite"}:
            setattr(args, dest, saved.get(dest, getattr(args, dest)))  # the run's own, unless given
    args.checkpoint = checkpoint
    if args.image_size not in (32, 64, 128, 256):
        fail(f"--image-size must be 32, 64, 128 or 256 (a power of two), got {args.image_size}")
    if args.nc == 2:
        fail("--nc must be 3 (RGB, the tutorial's) or 1 (grayscale)")
    if (args.save_images or args.interpolate) and not args.generate:
        fail("--save-images and --interpolate go with --generate PATH")
    if args.arch == "encoder-decoder" and args.image_size != 64:
        fail("--arch encoder-decoder is the article's 64x64 model: use --image-size 64")
    if args.filter_size % 2 == 0:
        fail(f"--filter-size must be odd (a 'same' padding needs it), got {args.filter_size}")
    if args.label_smoothing and args.loss != "bce":
        fail("--label-smoothing smooths BCE targets: it goes with --loss bce")
    if args.fid_every and not args.fid:
        fail("--fid-every needs --fid N (how many images to compare)")
    args.implied = fill_implied_defaults(args)
    args.command = command_line(parser, args)
    return args


def fill_implied_defaults(args):
    """The flags left unset: the tutorial's values, or those --arch encoder-decoder (the
    article's) and the Wasserstein losses imply. Returns the implied ones, to print."""
    implied, article = {}, args.arch == "encoder-decoder"
    wgan = args.loss in ("wgan", "wgan-gp")
    for name, tutorial, value in [
            ("batch_size", 128, 32 if article else None),
            ("num_load", None, 10000 if article else None),
            ("progress_every", 0, 80 if article else None),
            ("lr", 0.0002, {"wgan": 0.00005, "wgan-gp": 0.0001}.get(args.loss)),
            ("beta1", 0.5, 0.0 if wgan else 0.9 if article else None),
            ("beta2", 0.999, 0.9 if wgan else None),
            ("d_updates", 1, 5 if wgan else None)]:
        if getattr(args, name) is None:
            setattr(args, name, tutorial if value is None else value)
            if value is not None:
                implied[name] = value
    args.lr_d, args.lr_g = args.lr_d or args.lr, args.lr_g or args.lr
    return implied


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
LAYOUT = ("expected {root}/img_align_celeba/*.jpg (unzip img_align_celeba.zip into {root}) "
          "or a flat folder of images {root}/*.jpg")


class ImageFolder(dset.ImageFolder):
    """The tutorial's dset.ImageFolder, plus: a flat folder of images is one class, a corrupt
    file comes back as (blank, False) and is dropped from its batch, and every way of finding
    no images is one clear error. Items are (image, readable) instead of (image, class)."""

    def __init__(self, root, transform, nc=3, num_load=None):
        if os.path.isfile(root) and root.lower().endswith(".zip"):
            folder, name = os.path.split(root)
            fail(f"--dataroot {root} is a zip file; unzip it first (cd {folder or '.'} && unzip "
                 f"{name}) and pass the folder it made")
        if not os.path.isdir(root):
            fail(f"--dataroot {root} does not exist; {LAYOUT.format(root=root)}")
        mode = "RGB" if nc == 3 else "L"
        try:
            super().__init__(root, transform, loader=functools.partial(open_image, mode=mode),
                             allow_empty=True)
        except OSError as e:
            fail(f"cannot read --dataroot {root} ({e.strerror})")
        if not self.samples:
            zips = [n for n in os.listdir(root) if n.lower().endswith(".zip")]
            hint = f"; unzip {zips[0]} there first (cd {root} && unzip {zips[0]})" if zips else ""
            fail(f"no images (.jpg, .png, ...) in --dataroot {root}; "
                 f"{LAYOUT.format(root=root)}{hint}")
        self.samples = self.imgs = self.samples[:num_load]
        self.mode = mode

    def find_classes(self, directory):
        classes = sorted(e.name for e in os.scandir(directory)
                         if e.is_dir() and not e.name.startswith("."))
        has_images = any(f.lower().endswith(dset.folder.IMG_EXTENSIONS)
                         for c in classes for _, _, fs in os.walk(os.path.join(directory, c))
                         for f in fs)
        if not has_images:  # the tutorial's ImageFolder needs subfolders: a flat folder here
            classes = ["."]
        return classes, {c: i for i, c in enumerate(classes)}

    def __getitem__(self, index):
        try:
            return super().__getitem__(index)[0], True
        except Exception:  # truncated, corrupt, or not an image at all
            return self.transform(Image.new(self.mode, (8, 8))), False


def open_image(path, mode):
    with open(path, "rb") as f:
        return Image.open(f).convert(mode)


def to_model_range(u8):
    """ToTensor() then Normalize(0.5, 0.5) of a uint8 batch: u / 255 * 2 - 1 = u / 127.5 - 1."""
    return u8.float().div_(127.5).sub_(1.0)


# Addition (--cache): the tutorial's Resize + CenterCrop once per file, kept as uint8 in memory
def cache_file(dataset, args):
    """Where the cache goes, and a key that changes with the files, their sizes or times."""
    h = hashlib.sha256(f"v1 {args.image_size} {args.nc}".encode())
    for path, _ in dataset.samples:
        st = os.stat(path)
        h.update(f"\0{os.path.relpath(path, args.dataroot)}\0{st.st_size}\0"
                 f"{st.st_mtime_ns}".encode())
    first = f"_first{args.num_load}" if args.num_load == len(dataset) else ""
    folder = args.cache_dir or args.dataroot
    return os.path.join(folder, f"{SCRIPT}_cache_{args.image_size}px_nc{args.nc}{first}.pt"), \
        h.hexdigest()


def checksum(images):
    return int(images.reshape(-1).view(torch.int32).sum(dtype=torch.int64))


def load_cache(path, key):
    """(images, skipped) if the file is there, intact and made from these files, else
    (None, why)."""
    if not os.path.isfile(path):
        return None, "none yet"
    try:
        c = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if c.get("key") != key:
            return None, "the folder or --image-size changed"
        if c["images"].shape[0] != c["count"] or checksum(c["images"]) != c["checksum"]:
            return None, "its contents are damaged"
        return c["images"], c["skipped"]
    except Exception as e:  # truncated, or not a cache file at all
        return None, f"unreadable ({type(e).__name__})"


def build_cache(dataset, args, path, key, ctrl_c):
    """Decode every file once (--workers processes) into one uint8 tensor; save it atomically.
    Ctrl-C/SIGTERM stop it cleanly (exit 130): nothing is trained yet."""
    S, n = args.image_size, len(dataset)
    decoded = copy.copy(dataset)
    decoded.transform = transforms.Compose([transforms.Resize(S), transforms.CenterCrop(S),
                                            transforms.PILToTensor()])
    images, ok = torch.empty(n, args.nc, S, S, dtype=torch.uint8), torch.empty(n, dtype=bool)
    loader = torch.utils.data.DataLoader(decoded, batch_size=256, num_workers=args.workers,
                                         worker_init_fn=ignore_signals)
    t0, done = time.perf_counter(), 0
    for x, good in loader:
        if ctrl_c.requested:
            print("stopped while building the cache; nothing was trained or written. Run the "
                  "same command again to start.", file=sys.stderr)
            raise KeyboardInterrupt
        images[done:done + len(x)], ok[done:done + len(x)] = x, good
        done += len(x)
        if done == n or done % (256 * 20) == 0:
            rate = done / (time.perf_counter() - t0)
            print(f"cache: decoded {done}/{n} images, {rate:.0f} img/s, ETA "
                  f"{format_eta((n - done) / rate)}", flush=True)
    images, skipped = images[ok].contiguous(), int((~ok).sum())
    if len(images) == 0:
        fail(f"none of the {n} image files in {args.dataroot} could be read")
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        atomic_save({"key": key, "images": images, "count": len(images),
                     "checksum": checksum(images), "skipped": skipped}, path)
        print(f"cache: wrote {path} ({images.numel() / 1e9:.2f} GB)")
    except Exception as e:  # common.fail's error, or a folder we cannot create
        print(f"warning: cannot write the cache {path} ({e}); training from memory anyway",
              file=sys.stderr)
    return images, skipped


def cached_images(dataset, args, device, rank, world, ctrl_c):
    """--cache: the dataset as one uint8 tensor (rank 0 builds or reuses the file, then the
    other ranks read it); None when the cache is off."""
    need = len(dataset) * args.nc * args.image_size ** 2
    if args.cache is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            free = 8 << 30
        use = [need <= free // 2]
        if world > 1:  # rank 0 decides for all
            dist.broadcast_object_list(use, src=0)
        print(f"cache: {'on' if use[0] else 'off'} ({need / 1e9:.2f} GB of decoded images, "
              f"{free / 1e9:.1f} GB free memory; --cache/--no-cache decide)")
        if not use[0]:
            return None
    elif not args.cache:
        return None
    path, key = cache_file(dataset, args)
    for turn in range(world):  # rank 0 first; the others then find the file
        if turn == rank:
            images, skipped = load_cache(path, key)
            if images is None:
                print(f"cache: building {path} ({skipped})")
                with torch.random.fork_rng(devices=[]):  # must not change the model's init
                    images, skipped = build_cache(dataset, args, path, key, ctrl_c)
            else:
                print(f"cache: reusing {path} ({len(images)} images)")
        if world > 1:
            dist.barrier()
    if skipped and rank == 0:
        print(f"warning: skipped {skipped} unreadable image file(s)", file=sys.stderr)
    if device.type == "cuda" and images.numel() < torch.cuda.mem_get_info(device)[0] // 2:
        return images.to(device)  # CelebA at 64x64 is ~2.5 GB: it fits in GPU memory
    return images.pin_memory() if device.type == "cuda" else images.clone()


class Batches:
    """The tutorial's dataloader (shuffle=True), as batches of one epoch at a time: the same
    order for (seed, epoch) whatever came before, so a resumed run sees the same batches.
    Hides the cache, each torchrun process's share of the global batch, channels-last and
    flips. A last batch of one image is dropped (batch norm needs two)."""

    def __init__(self, dataset, args, device, rank, world, flip_rng):
        self.dataset, self.args, self.device = dataset, args, device
        self.rank, self.world, self.flip_rng = rank, world, flip_rng
        self.share = args.batch_size // world
        n, b = len(dataset), args.batch_size
        # DDP: every process needs its share of every batch, so the last partial one is dropped
        self.batches = n // b if world > 1 or n % b < 2 else n // b + 1
        self.skipped = 0

    def __len__(self):
        return self.batches

    def order(self, epoch):
        seed = (self.args.seed + 1_000_003 * epoch) % 2**63
        return torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(seed))

    def indices(self, order, i):
        start = i * self.args.batch_size + self.rank * self.share
        return order[start:start + self.share]

    def epoch(self, epoch, start=0):
        """Yields (i, real images on the device in [-1, 1]) for batches start.. of `epoch`."""
        order = self.order(epoch)
        for i, data in self.load(order, start):
            if self.args.channels_last:
                data = data.contiguous(memory_format=torch.channels_last)
            if self.args.hflip:  # the same draws on every rank, each takes its share
                flip = torch.rand(self.args.batch_size, device=self.device,
                                  generator=self.flip_rng) < 0.5
                flip = flip[self.rank * self.share:][:len(data)].view(-1, 1, 1, 1)
                data = torch.where(flip, data.flip(3), data)
            yield i, data

    def load(self, order, start):
        if isinstance(self.dataset, torch.Tensor):  # --cache: batches by indexing
            order = order.to(self.dataset.device)
            for i in range(start, self.batches):
                u8 = self.dataset[self.indices(order, i)]
                yield i, to_model_range(u8.to(self.device, non_blocking=True))
            return
        picked = [self.indices(order, i) for i in range(start, self.batches)]
        if not picked:
            return
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.share, sampler=torch.cat(picked).tolist(),
            num_workers=self.args.workers, worker_init_fn=ignore_signals,
            pin_memory=self.device.type == "cuda")
        for i, (data, ok) in enumerate(loader, start):
            if not ok.all():  # unreadable files are dropped from their batch
                self.skipped += int((~ok).sum())
                data = data[ok]
            if len(data) >= 2:
                yield i, data.to(self.device, non_blocking=True)

    def end_epoch(self, iters):
        """After each epoch: no readable image at all is an error, skipped files a warning."""
        if iters == 0:
            fail(f"none of the image files in {self.args.dataroot} could be read")
        if self.skipped and self.rank == 0:
            print(f"warning: skipped {self.skipped} unreadable image file(s) so far",
                  file=sys.stderr)

    def first(self, n=64):
        """The first n readable images of the first epoch (the tutorial's real_batch)."""
        peek = self.order(0)[:4 * n]
        if isinstance(self.dataset, torch.Tensor):
            return to_model_range(self.dataset[peek[:n].to(self.dataset.device)]).cpu()
        images = [x for x, ok in map(self.dataset.__getitem__, peek.tolist()) if ok][:n]
        if not images:
            fail(f"none of the first {len(peek)} image files in {self.args.dataroot} could "
                 f"be read; are they images? ({self.dataset.samples[0][0]}, ...)")
        return torch.stack(images)


def load_data(args, device, rank, world, ctrl_c, noise_rng):
    """The tutorial's Data step: its ImageFolder and transform, and the dataloader."""
    image_size, nc = args.image_size, args.nc
    # We can use an image folder dataset the way we have it setup.
    # Create the dataset
    dataset = ImageFolder(root=args.dataroot,
                          transform=transforms.Compose([
                              transforms.Resize(image_size),
                              transforms.CenterCrop(image_size),
                              transforms.ToTensor(),
                              transforms.Normalize((0.5,) * nc, (0.5,) * nc),
                          ]), nc=nc, num_load=args.num_load)
    # Addition (--cache): the decoded images once, as uint8 in memory
    cached = cached_images(dataset, args, device, rank, world, ctrl_c)
    # Create the dataloader (Addition: one epoch at a time, see Batches)
    dataloader = Batches(dataset if cached is None else cached, args, device, rank, world,
                         noise_rng)
    if len(dataloader) == 0:
        fail(f"{len(dataset)} images are fewer than one --batch-size {args.batch_size}")
    print(f"dataset: {len(dataset)} images in {args.dataroot}, {len(dataloader)} batches of "
          f"{args.batch_size} per epoch")
    return dataset, dataloader


# ---------------------------------------------------------------------------------------------
# Implementation: Weight Initialization
# ---------------------------------------------------------------------------------------------
# custom weights initialization called on netG and netD
def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------
# Addition: the tutorial's classes are for 64x64 only. Here the middle stride-2 blocks repeat
# log2(image_size) - 3 times; at 64 the layers and the printed model are exactly the tutorial's.
class Generator(nn.Module):
    def __init__(self, ngpu=1, nz=100, ngf=64, nc=3, image_size=64):
        super(Generator, self).__init__()
        self.ngpu = ngpu
        mult = image_size // 8  # 8 at 64x64
        layers = [
            # input is Z, going into a convolution
            nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * mult),
            nn.ReLU(True),
            # state size. (ngf*8) x 4 x 4
        ]
        while mult > 1:
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * mult // 2),
                nn.ReLU(True),
            ]
            mult //= 2
            # state size. (ngf*4) x 8 x 8, then (ngf*2) x 16 x 16, then (ngf) x 32 x 32
        layers += [
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh()
            # state size. (nc) x 64 x 64
        ]
        self.main = nn.Sequential(*layers)

    def forward(self, input):
        return self.main(input)


# ---------------------------------------------------------------------------------------------
# Discriminator
# ---------------------------------------------------------------------------------------------
class Discriminator(nn.Module):
    def __init__(self, ngpu=1, nc=3, ndf=64, image_size=64, norm=nn.BatchNorm2d):
        super(Discriminator, self).__init__()
        self.ngpu = ngpu
        layers = [
            # input is (nc) x 64 x 64
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf) x 32 x 32
        ]
        mult, size = 1, image_size // 2
        while size > 4:
            layers += [
                nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False),
                norm(ndf * mult * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            mult, size = mult * 2, size // 2
            # state size. (ndf*2) x 16 x 16, then (ndf*4) x 8 x 8, then (ndf*8) x 4 x 4
        layers += [
            nn.Conv2d(ndf * mult, 1, 4, 1, 0, bias=False),
            # Addition: no nn.Sigmoid() here: D returns logits for BCEWithLogitsLoss (stable,
            # and allowed under autocast); the printed D(x), D(G(z)) are sigmoid(logits)
        ]
        self.main = nn.Sequential(*layers)

    def forward(self, input):
        return self.main(input)


# ---------------------------------------------------------------------------------------------
# Advanced topics (Turing Learning and GANs, Part 2): its Keras CelebA model, more losses,
# failure signs. Keras' Conv2D(padding='same') is padding filter_size // 2 here.
# ---------------------------------------------------------------------------------------------
def keras_init(m):
    """Keras' default initialisation: glorot_uniform weights, zero biases, BN scale 1."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.modules.batchnorm._BatchNorm):
        m.reset_parameters()


def add_encoder_block(in_filters, filters, filter_size, norm=nn.BatchNorm2d):
    same = filter_size // 2
    return [nn.Conv2d(in_filters, filters, filter_size, padding=same),
            norm(filters),
            nn.Conv2d(filters, filters, filter_size, stride=2, padding=same),
            norm(filters),
            nn.LeakyReLU(0.3)]


class EncoderDiscriminator(nn.Module):
    """The article's build_discriminator(start_filters, spatial_dim, filter_size)."""

    def __init__(self, start_filters=16, filter_size=5, nc=3, norm=nn.BatchNorm2d):
        super().__init__()
        f = start_filters
        self.main = nn.Sequential(
            # input is (nc) x 64 x 64; encoding blocks downsample the image
            *add_encoder_block(nc, f, filter_size, norm),          # (f) x 32 x 32
            *add_encoder_block(f, f * 2, filter_size, norm),       # (f*2) x 16 x 16
            *add_encoder_block(f * 2, f * 4, filter_size, norm),   # (f*4) x 8 x 8
            *add_encoder_block(f * 4, f * 8, filter_size, norm),   # (f*8) x 4 x 4
            nn.AdaptiveAvgPool2d(1),                                # GlobalAveragePooling2D
            nn.Flatten(),
            nn.Linear(f * 8, 1),  # Dense(1, activation='sigmoid'): logits, as Discriminator
        )

    def forward(self, input):
        return self.main(input)


def add_decoder_block(in_filters, filters, filter_size):
    return [nn.ConvTranspose2d(in_filters, filters, filter_size, stride=2,
                               padding=filter_size // 2, output_padding=1),
            nn.BatchNorm2d(filters),
            nn.LeakyReLU(0.3)]


class DecoderGenerator(nn.Module):
    """The article's build_generator(start_filters, filter_size, latent_dim); takes the
    tutorial's (N, nz, 1, 1) noise, so both --arch values train and export alike."""

    def __init__(self, start_filters=16, filter_size=5, latent_dim=100, nc=3):
        super().__init__()
        f = start_filters
        # Dense(4 * 4 * (start_filters * 8)) + BatchNormalization, then Reshape
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(latent_dim, 4 * 4 * f * 8),
                                     nn.BatchNorm1d(4 * 4 * f * 8))
        self.main = nn.Sequential(
            # state size. (f*8) x 4 x 4; decoding blocks upsample the image
            *add_decoder_block(f * 8, f * 4, filter_size),   # (f*4) x 8 x 8
            *add_decoder_block(f * 4, f * 2, filter_size),   # (f*2) x 16 x 16
            *add_decoder_block(f * 2, f, filter_size),       # (f) x 32 x 32
            *add_decoder_block(f, f, filter_size),           # (f) x 64 x 64
            nn.Conv2d(f, nc, 5, padding=2),                  # Conv2D(3, 5, padding='same')
            nn.Tanh(),                                       # (nc) x 64 x 64
        )
        self.start_filters = f

    def forward(self, input):
        x = self.project(input).view(-1, self.start_filters * 8, 4, 4)
        return self.main(x)


# The losses as criterion(output, label), label 1 for real and 0 for fake, on D's logits in
# fp32. D uses the first, G the second (with real labels: "fake labels are real").
def wasserstein(output, label):
    """-E[D(x)] for real labels, E[D(G(z))] for fake ones (the critic's loss, and G's)."""
    return -((2 * label - 1) * output.float()).mean()


def hinge(output, label):
    return F.relu(1 - (2 * label - 1) * output.float()).mean()


def bce(output, label):
    return F.binary_cross_entropy_with_logits(output.float(), label)


LOSSES = {"bce": (bce, bce), "wgan": (wasserstein, wasserstein),
          "wgan-gp": (wasserstein, wasserstein), "hinge": (hinge, wasserstein)}


def gradient_penalty(netD, real, fake, weight, generator=None):
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): weight * E[(||grad D(x_hat)||_2 - 1)^2] at
    random points between real and fake samples; fp32 (its double backward needs it)."""
    eps = torch.rand(real.size(0), 1, 1, 1, device=real.device, generator=generator)
    x_hat = (eps * real.float() + (1 - eps) * fake.float()).requires_grad_(True)
    with torch.autocast(real.device.type, enabled=False):
        out = netD(x_hat)
    grad, = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def small_init(clip_value):
    """WGAN tip: initialise with small weights, so that clipping does not bite from the start
    (normal with std clip_value / 2: 95% of the weights start inside [-c, c])."""
    def init(m):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, clip_value / 2)
    return init


def grad_norm(model, scaler, optimizer):
    """The total L2 norm of a model's gradients, unscaled first under fp16 (tip: watch it)."""
    scaler.unscale_(optimizer)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


class FailureWatch:
    """The article's two failure signs, each warned about once with the knob that helps: D's
    loss near its minimum for many iterations (D wins, G's gradients vanish), and generated
    samples that no longer vary (mode collapse: the batch's pixel std far below the real)."""

    def __init__(self, args, patience=200):
        self.loss, self.patience, self.warned = args.loss, patience, set()
        x = args.label_smoothing  # the least BCE D can reach: its real target's entropy
        self.d_floor = -(1 - x) * math.log(1 - x) - (x * math.log(x) if x else 0.0)
        self.low_d = self.low_std = 0

    def update(self, d_losses, fake_std, real_std):
        out = []
        if self.loss in ("bce", "hinge"):  # a critic's loss has no minimum to sit at
            for d in d_losses:
                self.low_d = self.low_d + 1 if d < self.d_floor + 0.01 else 0
            if self.low_d >= self.patience and "d" not in self.warned:
                self.warned.add("d")
                out.append(f"Loss_D has stayed near its minimum for {self.low_d} iterations: "
                           f"D wins and G's gradients vanish. Try a lower D learning rate "
                           f"(--lr-d), more G steps (--g-updates 2), --label-smoothing 0.1, "
                           f"or --loss wgan-gp")
        self.low_std = self.low_std + len(d_losses) if fake_std < 0.1 * real_std else 0
        if self.low_std >= self.patience and "std" not in self.warned:
            self.warned.add("std")
            out.append(f"generated samples are collapsing (pixel std over the batch "
                       f"{fake_std:.3f} against {real_std:.3f} for real images): mode "
                       f"collapse. Try --loss wgan-gp, a lower G learning rate (--lr-g), or "
                       f"more D steps (--d-updates 2)")
        return out


def save_progress_figure(modelG, modelD, args, iters, out, device):
    """The article's progress figure: 8 new fakes titled with D's score, into
    OUT/visualization/<its configuration's name>/<iteration>.jpg."""
    import matplotlib.pyplot as plt
    folder = os.path.join(out, "visualization", config_name(args))
    os.makedirs(folder, exist_ok=True)
    sampleG = sampling_copy(modelG, args, device)
    gen = torch.Generator(device).manual_seed((args.seed + iters) % 2**63)
    modelD.eval()  # Keras' predict(): inference mode
    with torch.no_grad():
        imgs_fake = sampleG(latent(8, args, device, gen))
        disc_score = modelD(imgs_fake).view(-1).float()
    modelD.train()
    if args.loss == "bce":
        disc_score = torch.sigmoid(disc_score)
    fig = plt.figure(figsize=(8 * 3, 3))
    for b in range(8):
        plt.subplot(1, 8, b + 1)
        plt.title(str(round(float(disc_score[b]), 3)))
        plt.imshow(np.transpose((imgs_fake[b].cpu().numpy() * 0.5 + 0.5).clip(0, 1),
                                (1, 2, 0)).squeeze(), cmap="gray" if args.nc == 1 else None)
        plt.axis("off")
    fig.savefig(os.path.join(folder, str(iters).zfill(10) + '.jpg'), bbox_inches='tight')
    plt.close(fig)


def config_name(args):
    """The article's folder name for a configuration (plus the loss when not BCE)."""
    if args.arch == "encoder-decoder":
        name = f"gan_cap{args.net_capacity}_batch{args.batch_size}_filt{args.filter_size}"
    else:
        name = f"gan_dcgan_ngf{args.ngf}_ndf{args.ndf}_batch{args.batch_size}"
    name += f"_disc{args.d_updates}_gen{args.g_updates}"
    return name if args.loss == "bce" else f"{name}_{args.loss}"


# ---------------------------------------------------------------------------------------------
# Evaluation (--fid): FID and Inception Score from one pass of torch-fidelity's InceptionV3
# ---------------------------------------------------------------------------------------------
def fid_extractor(args, device):
    """torch-fidelity's InceptionV3: uint8 images in, (2048 pool features, logits) out."""
    if args.fid_weights is not None and not os.path.isfile(args.fid_weights):
        fail(f"--fid-weights {args.fid_weights} does not exist; pass torch-fidelity's "
             f"weights-inception-2015-12-05-6726825d.pth")
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import (URL_INCEPTION_V3,
                                                                   FeatureExtractorInceptionV3)
    except ImportError:
        fail("--fid needs torch-fidelity: pip install -r requirements-fid.txt")
    path = args.fid_weights or os.path.join(torch.hub.get_dir(), "checkpoints",
                                            os.path.basename(URL_INCEPTION_V3))
    if not os.path.isfile(path):
        print(f"fid: downloading {URL_INCEPTION_V3}", flush=True)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            torch.hub.download_url_to_file(URL_INCEPTION_V3, path, progress=False)
        except Exception as e:
            fail(f"cannot download the FID Inception weights ({type(e).__name__}); on an "
                 f"offline machine fetch {URL_INCEPTION_V3} elsewhere and pass --fid-weights")
    try:
        model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                            feature_extractor_weights_path=path)
    except Exception as e:
        fail(f"{path} is not torch-fidelity's Inception weights file ({type(e).__name__})")
    return model.to(device).eval()


def to_uint8(images):
    """[-1, 1] floats to the 0..255 three-channel images the Inception network takes."""
    u8 = ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return u8.expand(-1, 3, -1, -1) if u8.shape[1] == 1 else u8


def inception_features(extractor, batches, device):
    """(pool features, logits) of the extractor over uint8 batches, as float64 on the CPU."""
    with torch.no_grad():
        outs = [[f.double().cpu() for f in extractor(b.to(device))] for b in batches]
    return [torch.cat(parts) for parts in zip(*outs)]


def inception_score(logits, splits=10):
    """exp(E_x KL(p(y|x) || p(y))), the mean over `splits` parts (torch-fidelity's way)."""
    logits = logits[torch.from_numpy(np.random.RandomState(2020).permutation(len(logits)))]
    scores = []
    for part in logits.double().tensor_split(splits):
        log_p = part.log_softmax(1)
        kl = (log_p.exp() * (log_p - log_p.exp().mean(0, keepdim=True).log())).sum(1)
        scores.append(kl.mean().exp().item())
    return float(np.mean(scores))


def report_fid(extractor, modelG, real_stats, data, args, device, metrics, epoch, iters):
    """--fid N: FID of N generated against N real images, and their Inception Score, printed
    and written as a metrics.csv row. real_stats: filled with the real images' on first use."""
    t0, sampleG = time.perf_counter(), sampling_copy(modelG, args, device)
    count = min(args.fid, len(data.dataset))
    if not real_stats:  # the real images' statistics, once per run
        pick = torch.randperm(len(data.dataset), generator=torch.Generator().manual_seed(
            args.seed))[:count]
        real_stats.extend(gaussian_stats(inception_features(
            extractor, real_uint8(data.dataset, pick), device)[0]))
    gen = torch.Generator(device).manual_seed((args.seed + 1) % 2**63)
    with torch.no_grad():
        fakes = [to_uint8(sampleG(latent(len(c), args, device, gen)).cpu())
                 for c in torch.arange(count).split(100)]
    features, logits = inception_features(extractor, fakes, device)
    fid, score = frechet_distance(*gaussian_stats(features), *real_stats), inception_score(logits)
    print(f"FID: {fid:.2f}, Inception Score: {score:.2f} ({count} generated vs {count} real "
          f"images, InceptionV3, {time.perf_counter() - t0:.0f} s)", flush=True)
    metrics.write(epoch=epoch, iteration=iters, fid=round(fid, 3),
                  inception_score=round(score, 3))


def real_uint8(dataset, pick):
    for chunk in pick.split(100):
        if isinstance(dataset, torch.Tensor):  # the cache: uint8 already
            u8 = dataset[chunk.to(dataset.device)].cpu()
            yield u8.expand(-1, 3, -1, -1) if u8.shape[1] == 1 else u8
        else:
            images = [x for x, ok in map(dataset.__getitem__, chunk.tolist()) if ok]
            if images:
                yield to_uint8(torch.stack(images))


# ---------------------------------------------------------------------------------------------
# Loss Functions and Optimizers, Training: what the loop uses, set up once
# ---------------------------------------------------------------------------------------------
def latent(n, args, device, generator=None):
    """n latent vectors (n, nz, 1, 1): the tutorial's torch.randn, or uniform in [-1, 1]."""
    if args.noise == "uniform":
        return torch.rand(n, args.nz, 1, 1, device=device, generator=generator) * 2 - 1
    return torch.randn(n, args.nz, 1, 1, device=device, generator=generator)


def sampling_copy(modelG, args, device, batches=2):
    """An eval-mode copy of G with batch-norm statistics recomputed from fresh noise (the
    cumulative average of a few train-mode passes): a short run's running statistics lag
    far behind the weights and give flat grey samples. Training's own G is untouched."""
    g = copy.deepcopy(modelG).float()
    norms = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    gen = torch.Generator(device).manual_seed(args.seed % 2**63)
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average
    with torch.no_grad():
        for _ in range(batches if norms else 0):
            g(latent(64, args, device, gen))
    for m in norms:
        m.momentum = 0.1
    return g.eval()


def mixed_precision(args, device):
    """--amp: (autocast context, scalerD, scalerG); the scalers act only under fp16. auto is
    bf16 on CUDA and on CPUs with bf16 instructions (whole runs measured faster than fp32 on
    two 2-core CPUs: benchmarks/bench_celeba.py), else off."""
    amp = args.amp
    if amp == "auto":
        cpu_bf16 = device.type == "cpu" and torch.cpu._is_avx512_bf16_supported()
        amp = "bf16" if device.type == "cuda" or cpu_bf16 else "off"
    if amp == "fp16" and device.type != "cuda":
        fail("--amp fp16 needs a CUDA GPU (its GradScaler); use --amp bf16 on this device")
    dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    ctx = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    return (ctx, *(torch.amp.GradScaler("cuda", enabled=amp == "fp16") for _ in "DG"))


class TrainingStats:
    """The losses and scores of each iteration as device tensors; log() does the one host
    sync per stats line: it extends G_losses and D_losses, writes metrics.csv, measures the
    speed and watches for the article's failure signs."""

    def __init__(self, args, G_losses, D_losses, metrics, total):
        self.args, self.G_losses, self.D_losses, self.metrics = args, G_losses, D_losses, metrics
        self.watch, self.total, self.rows = FailureWatch(args), total, []
        self.grad_norms = [torch.zeros(()), torch.zeros(())]
        self.t0, self.seen = time.perf_counter(), 0

    def add(self, errD, errG, D_x, D_G_z1, D_G_z2, images):
        self.rows.append(torch.stack([errD.detach(), errG.detach(), D_x, D_G_z1, D_G_z2]))
        self.seen += images

    def log(self, epoch, iters, fake, real):
        """Returns (Loss_D, Loss_G, D(x), D(G(z)) before / after, images/s, ETA) of the last."""
        rows = torch.stack(self.rows).tolist()  # the one host sync per stats line
        self.rows.clear()
        self.D_losses.extend(r[0] for r in rows)
        self.G_losses.extend(r[1] for r in rows)
        fake_std, real_std = (x.detach().float().std(0).mean().item() for x in (fake, real))
        gnorm_d, gnorm_g = (float(g) for g in self.grad_norms)
        rate = self.seen / (time.perf_counter() - self.t0)
        self.t0, self.seen = time.perf_counter(), 0
        eta = format_eta((self.total - iters - 1) * self.args.batch_size / rate)
        if self.metrics:
            r = [round(v, 5) for v in rows[-1]]
            self.metrics.write(epoch=epoch, iteration=iters, loss_d=r[0], loss_g=r[1],
                               d_x=r[2], d_g_z1=r[3], d_g_z2=r[4], grad_norm_d=round(gnorm_d, 5),
                               grad_norm_g=round(gnorm_g, 5), fake_std=round(fake_std, 4),
                               images_per_sec=round(rate, 1))
            for warning in self.watch.update([r[0] for r in rows], fake_std, real_std):
                print(f"warning: {warning}", file=sys.stderr, flush=True)
        return (*rows[-1], rate, eta)


def scores_text(loss, D_x, D_G_z1, D_G_z2):
    """The tutorial's D(x) and D(G(z)) (probabilities), a critic's estimate of the Wasserstein
    distance E[D(x)] - E[D(G(z))], or hinge D's raw scores."""
    if loss == "bce":
        return 'D(x): %.4f\tD(G(z)): %.4f / %.4f' % (D_x, D_G_z1, D_G_z2)
    if loss == "hinge":
        return 'D(x): %+.3f\tD(G(z)): %+.3f / %+.3f' % (D_x, D_G_z1, D_G_z2)
    return 'W: %.4f' % (D_x - D_G_z1)


def save_checkpoint(out, parts, args, rank, world, noise_rng, **progress):
    """OUT/checkpoint.pt (rank 0 writes it): every part's state_dict, the RNG states, the
    arguments (what --resume restores, --dataroot made absolute) and the progress."""
    if rank == 0:
        skip = ("checkpoint", "implied", "command", "resume", "generate")
        saved = dict({k: v for k, v in vars(args).items() if k not in skip},
                     dataroot=os.path.abspath(args.dataroot))
        atomic_save({"script": SCRIPT, **{k: v.state_dict() for k, v in parts.items()},
                     "rng": rng_state(), "args": saved, "world": world, **progress,
                     "noise_rng": noise_rng.get_state()}, os.path.join(out, "checkpoint.pt"))


def restore(ckpt, parts, noise_rng, world, path):
    """Everything from a checkpoint into the parts; another world size is refused. Returns
    (img_list, G_losses, D_losses, iters, epoch, batch)."""
    if ckpt.get("world", 1) != world:
        fail(f"{path} was trained by {ckpt.get('world', 1)} process(es) and this is {world}; "
             f"resume it with as many (torchrun --nproc_per_node={ckpt.get('world', 1)})")
    try:
        for name, part in parts.items():
            part.load_state_dict(ckpt[name])
    except (RuntimeError, ValueError, KeyError) as e:
        fail(f"{path} does not fit these networks ({str(e).splitlines()[0][:120]})")
    noise_rng.set_state(ckpt["noise_rng"])
    set_rng_state(ckpt["rng"])
    print(f"resumed from {path}: epoch {ckpt['epoch']}, batch {ckpt['batch']}, "
          f"iteration {ckpt['iters']}")
    return [ckpt[k] for k in ("img_list", "G_losses", "D_losses", "iters", "epoch", "batch")]


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def train(args, device, rank, world, ctrl_c):
    master = rank == 0
    plt = use_agg_unless(args.show)
    print("arguments: " + args.command)
    if args.implied:
        print(f"defaults implied by --arch {args.arch} --loss {args.loss}: " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in args.implied.items()))
    # Set random seed for reproducibility
    manualSeed = args.seed
    print("Random Seed: ", manualSeed)
    set_seed(manualSeed)
    print(f"device: {device}" + (f" x {world} processes (torchrun, DDP)" if world > 1 else ""))
    if args.sync_bn and not (world > 1 and device.type == "cuda"):
        fail("--sync-bn needs torchrun with several CUDA GPUs (SyncBatchNorm has no CPU version)")
    if args.batch_size % world or args.batch_size // world < 2:
        fail(f"--batch-size {args.batch_size} is the global batch: with {world} processes it "
             f"must be a multiple of {world}, at least 2 per process")
    extractor = fid_extractor(args, device) if args.fid and master else None  # fail early

    # Addition: --out checked (and held) before the data, which may take long to decode
    out = prepare_out(args.out, new_run=not args.resume, overwrite=args.overwrite) \
        if master else args.out
    # Data (see load_data), and the training noise's own generator (saved: exact resume)
    noise_rng = torch.Generator(device).manual_seed(manualSeed)
    dataset, dataloader = load_data(args, device, rank, world, ctrl_c, noise_rng)
    # Plot some training images
    real_batch = dataloader.first(64)
    if master:
        plt.figure(figsize=(8, 8))
        plt.axis("off")
        plt.title("Training Images")
        plt.imshow(np.transpose(vutils.make_grid(real_batch[:64], padding=2, normalize=True),
                                (1, 2, 0)))
        plt.savefig(os.path.join(out, "training_images.png"), dpi=80, bbox_inches="tight")
        if not args.show:
            plt.close()

    ngpu = world  # torchrun's processes (DistributedDataParallel) replace DataParallel's GPUs
    # Create the generator
    netG = Generator(ngpu, args.nz, args.ngf, args.nc, args.image_size).to(device)
    # Apply the weights_init function to randomly initialize all weights
    #  to mean=0, stdev=0.02.
    netG.apply(weights_init)
    # Addition (--arch encoder-decoder): the article's Keras model, with Keras' initialisation
    if args.arch == "encoder-decoder":
        netG = DecoderGenerator(args.net_capacity, args.filter_size, args.nz, args.nc)
        netG = netG.to(device).apply(keras_init)
    # Print the model
    print(netG)

    # Addition: a WGAN-GP critic normalises each sample on its own (layer norm): the gradient
    # penalty is per sample, which batch norm would mix (Gulrajani et al., sec. 4)
    norm = (lambda c: nn.GroupNorm(1, c)) if args.loss == "wgan-gp" else nn.BatchNorm2d
    # Create the Discriminator
    netD = Discriminator(ngpu, args.nc, args.ndf, args.image_size, norm).to(device)
    # Apply the weights_init function to randomly initialize all weights
    #  to mean=0, stdev=0.2.
    netD.apply(weights_init)
    # Addition (--arch encoder-decoder): the article's Keras model, with Keras' initialisation
    if args.arch == "encoder-decoder":
        netD = EncoderDiscriminator(args.net_capacity, args.filter_size, args.nc, norm)
        netD = netD.to(device).apply(keras_init)
    # Addition (--loss wgan): small initial weights, so that clipping does not bite at once
    if args.loss == "wgan":
        netD.apply(small_init(args.clip_value))
    # Print the model
    print(netD)

    # Handle multi-gpu if desired (Addition: channels-last, torchrun's DDP, torch.compile)
    modelG, modelD = netG, netD  # the plain modules: checkpoints, samples, export
    if args.channels_last:
        netG, netD = (m.to(memory_format=torch.channels_last) for m in (netG, netD))
    if world > 1:
        if args.sync_bn:
            netG, netD = map(nn.SyncBatchNorm.convert_sync_batchnorm, (netG, netD))
        ids = [device.index] if device.type == "cuda" else None
        netG, netD = DDP(netG, device_ids=ids), DDP(netD, device_ids=ids)
    critic = netD  # the gradient penalty's double backward cannot run compiled
    if args.compile:
        netG, netD = torch.compile(netG), torch.compile(netD)

    return training(args, device, rank, world, ctrl_c, out, dataloader, real_batch, noise_rng,
                    extractor, netG, netD, modelG, modelD, critic)


def training(args, device, rank, world, ctrl_c, out, dataloader, real_batch, noise_rng,
             extractor, netG, netD, modelG, modelD, critic):
    """The tutorial's Loss Functions and Optimizers and its Training loop. Each addition is set
    up once before the loop and costs about one line in it."""
    master, num_epochs = rank == 0, args.epochs
    # -- Loss Functions and Optimizers --------------------------------------------------------
    # Initialize the loss functions (BCE on logits, see Discriminator; --loss: see LOSSES)
    criterion, criterionG = LOSSES[args.loss]
    # Create batch of latent vectors that we will use to visualize
    #  the progression of the generator
    fixed_noise = latent(64, args, device)
    # Establish convention for real and fake labels during training
    real_label = 1.
    fake_label = 0.
    # Setup Adam optimizers for both G and D (Addition: --lr-d/--lr-g, --beta2, fused on CUDA)
    fused = device.type == "cuda"
    optimizerD = optim.Adam(modelD.parameters(), lr=args.lr_d, betas=(args.beta1, args.beta2),
                            fused=fused)
    optimizerG = optim.Adam(modelG.parameters(), lr=args.lr_g, betas=(args.beta1, args.beta2),
                            fused=fused)

    # -- Training: each addition set up once, about one line in the loop ---------------------
    ctx, scalerD, scalerG = mixed_precision(args, device)  # --amp: forward passes (losses fp32)
    # D(x), D(G(z)): probabilities for BCE (D returns logits), a critic's raw scores otherwise
    prob = (lambda out: torch.sigmoid(out.float())) if args.loss == "bce" else \
        (lambda out: out.float())
    real_target = real_label - args.label_smoothing  # --label-smoothing: one-sided
    share = args.batch_size // world

    def draw_noise(b_size):  # every process draws the global batch and takes its share
        return latent(args.batch_size, args, device, noise_rng)[rank * share:][:b_size]

    parts = {"netG": modelG, "netD": modelD, "optimizerG": optimizerG,
             "optimizerD": optimizerD, "scalerG": scalerG, "scalerD": scalerD}
    # Lists to keep track of progress
    img_list = []  # Addition: uint8 grids (4x smaller checkpoints than float grids)
    G_losses = []
    D_losses = []
    iters = 0
    start_epoch = start_batch = 0
    if args.checkpoint:  # Addition (--resume): continue where the checkpoint left off
        img_list, G_losses, D_losses, iters, start_epoch, start_batch = restore(
            args.checkpoint, parts, noise_rng, world, args.resume)
    metrics = MetricsCSV(os.path.join(out, "metrics.csv"), METRICS, append=bool(args.resume)) \
        if master else None
    stats = TrainingStats(args, G_losses, D_losses, metrics, num_epochs * len(dataloader))
    stop_now = Stopper(args, ctrl_c, world, device)  # Ctrl-C, SIGTERM, --time-budget
    # Addition (--fid): fid(epoch, iters) writes FID and Inception Score rows
    fid = functools.partial(report_fid, extractor, modelG, [], dataloader, args, device,
                            metrics) if extractor else None
    errG = D_G_z2 = torch.zeros((), device=device)  # until G's first step (--d-updates)
    stop = None
    # Addition: checkpoint(epoch=, batch=, iters=) writes checkpoint.pt (the lists grow in place)
    checkpoint = functools.partial(save_checkpoint, out, parts, args, rank, world, noise_rng,
                                   G_losses=G_losses, D_losses=D_losses, img_list=img_list)

    # Training Loop
    print("Starting Training Loop...")
    # For each epoch
    for epoch in range(start_epoch, num_epochs):
        # For each batch in the dataloader (Addition: from mid-epoch after --resume)
        for i, real_cpu in dataloader.epoch(epoch, start_batch if epoch == start_epoch else 0):
            log_now = i % args.log_every == 0 or i == len(dataloader) - 1
            ############################
            # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
            ###########################
            ## Train with all-real batch
            netD.zero_grad(set_to_none=True)
            # Format batch (real_cpu is on the device already: see Batches)
            b_size = real_cpu.size(0)
            label = torch.full((b_size,), real_target, dtype=torch.float, device=device)
            # Forward pass real batch through D
            with ctx:
                output = netD(real_cpu).view(-1)
            # Calculate loss on all-real batch
            errD_real = criterion(output, label)
            # Calculate gradients for D in backward pass
            scalerD.scale(errD_real).backward()
            D_x = prob(output.detach()).mean()

            ## Train with all-fake batch
            # Generate batch of latent vectors
            noise = draw_noise(b_size)
            # Generate fake image batch with G
            with ctx:
                fake = netG(noise)
            label.fill_(fake_label)
            # Classify all fake batch with D
            with ctx:
                output = netD(fake.detach()).view(-1)
            # Calculate D's loss on the all-fake batch
            errD_fake = criterion(output, label)
            # Calculate the gradients for this batch, accumulated (summed) with previous gradients
            scalerD.scale(errD_fake).backward()
            D_G_z1 = prob(output.detach()).mean()
            # Compute error of D as sum over the fake and the real batches
            errD = errD_real + errD_fake
            if args.loss == "wgan-gp":  # Addition: the gradient penalty joins D's loss
                gp = gradient_penalty(critic, real_cpu, fake.detach(), args.gp_weight, noise_rng)
                scalerD.scale(gp).backward()
                errD = errD + gp
            if log_now:  # Addition: the size of D's gradients, on stats lines
                stats.grad_norms[0] = grad_norm(modelD, scalerD, optimizerD)
            # Update D
            scalerD.step(optimizerD)
            scalerD.update()
            if args.loss == "wgan":  # Addition: WGAN keeps D's weights in [-c, c]
                for p in modelD.parameters():
                    p.data.clamp_(-args.clip_value, args.clip_value)

            ############################
            # (2) Update G network: maximize log(D(G(z)))
            ###########################
            # Addition: G steps after every --d-updates D steps, --g-updates times
            g_steps = args.g_updates if (i + 1) % args.d_updates == 0 or \
                i == len(dataloader) - 1 else 0
            for g_step in range(g_steps):
                netG.zero_grad(set_to_none=True)
                label.fill_(real_label)  # fake labels are real for generator cost
                if g_step > 0:  # Addition: further G steps on new noise
                    with ctx:
                        fake = netG(draw_noise(b_size))
                # Since we just updated D, perform another forward pass of all-fake batch through D
                with ctx:
                    output = netD(fake).view(-1)
                # Calculate G's loss based on this output
                errG = criterionG(output, label)
                # Calculate gradients for G
                scalerG.scale(errG).backward()
                D_G_z2 = prob(output.detach()).mean()
                if log_now:  # Addition: the size of G's gradients, on stats lines
                    stats.grad_norms[1] = grad_norm(modelG, scalerG, optimizerG)
                # Update G
                scalerG.step(optimizerG)
                scalerG.update()

            # Save Losses for plotting later (Addition: as tensors, no host sync here)
            stats.add(errD, errG, D_x, D_G_z1, D_G_z2, b_size * world)
            stop = stop_now(log_now)
            # Output training stats (Addition: every --log-every, with images/s and ETA)
            if log_now or stop:
                errD_, errG_, D_x_, D_G_z1_, D_G_z2_, rate, eta = stats.log(epoch, iters, fake,
                                                                            real_cpu)
                print('[%d/%d][%d/%d]\tLoss_D: %.4f\tLoss_G: %.4f\t%s\t%.1f img/s\tETA %s'
                      % (epoch, num_epochs, i, len(dataloader), errD_, errG_,
                         scores_text(args.loss, D_x_, D_G_z1_, D_G_z2_), rate, eta), flush=True)

            # Check how the generator is doing by saving G's output on fixed_noise
            if master and ((iters % args.sample_every == 0) or (
                    (epoch == num_epochs - 1) and (i == len(dataloader) - 1)) or stop):
                with torch.no_grad():
                    fake = sampling_copy(modelG, args, device)(fixed_noise).detach().cpu()
                img_list.append(vutils.make_grid(fake, padding=2, normalize=True)
                                .mul(255).round().to(torch.uint8))
            if master and args.progress_every and iters % args.progress_every == 0:
                save_progress_figure(modelG, modelD, args, iters, out, device)

            iters += 1
            # Addition: checkpoints (every --checkpoint-every; on a stop, then leave the loop)
            if stop or (args.checkpoint_every and iters % args.checkpoint_every == 0):
                checkpoint(epoch=epoch, batch=i + 1, iters=iters)
            if stop:
                break
        dataloader.end_epoch(iters)  # Addition: no image readable is an error; skipped ones warn
        if stop:
            break
        checkpoint(epoch=epoch + 1, batch=0, iters=iters)
        if fid and args.fid_every and (epoch + 1) % args.fid_every == 0 \
                and epoch < num_epochs - 1:
            fid(epoch, iters)
    if stop and stop_now.report(stop, out, master, epoch, i + 1):
        return 130  # Addition: Ctrl-C or SIGTERM, the checkpoint saved
    if master:
        results(args, out, modelG, real_batch, img_list, G_losses, D_losses, fixed_noise,
                device)
        if fid:
            fid(num_epochs - 1, iters)
    return 0


class Stopper:
    """stop_now(log_now): why training stops after this iteration ("interrupted" by Ctrl-C or
    SIGTERM, "time budget", "dry run"), or None. torchrun's processes agree at stats lines."""

    def __init__(self, args, ctrl_c, world, device):
        self.args, self.ctrl_c, self.world, self.device = args, ctrl_c, world, device
        self.deadline = time.monotonic() + (args.time_budget or math.inf)

    def __call__(self, log_now):
        flags = [self.ctrl_c.requested, time.monotonic() > self.deadline]
        if self.world > 1 and not log_now:  # all processes must stop at the same iteration,
            flags = [False, False]  # so they agree at stats lines only
        elif self.world > 1:
            t = torch.tensor(flags, dtype=torch.float, device=self.device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flags = t.bool().tolist()
        if flags[0]:
            return "interrupted"
        return "time budget" if flags[1] else "dry run" if self.args.dry_run else None

    def report(self, stop, out, master, epoch, batch):
        """Says why training stopped early; True when interrupted (exit 130, no results)."""
        if stop == "interrupted" and master:
            again = "python" if self.world == 1 else f"torchrun --nproc_per_node={self.world}"
            print(f"stopped; checkpoint saved. Continue with: {again} {sys.argv[0]} --resume "
                  f"{os.path.join(out, 'checkpoint.pt')}", file=sys.stderr)
        elif stop == "time budget":
            print(f"--time-budget {self.args.time_budget:g} s spent: stopped at epoch {epoch}, "
                  f"batch {batch} (continue with --resume and a new --time-budget)")
        return stop == "interrupted"


METRICS = ["epoch", "iteration", "loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2", "grad_norm_d",
           "grad_norm_g", "fake_std", "images_per_sec", "fid", "inception_score"]


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
def results(args, out, modelG, real_batch, img_list, G_losses, D_losses, fixed_noise, device):
    """The tutorial's Results (loss plot, animation, real vs fake), as files; the export."""
    import matplotlib.animation as animation
    import matplotlib.pyplot as plt
    if not img_list:  # e.g. --resume of a finished run with --sample-every beyond its end
        with torch.no_grad():
            fake = sampling_copy(modelG, args, device)(fixed_noise).cpu()
        img_list.append(vutils.make_grid(fake, padding=2, normalize=True).mul(255).byte())
    # Loss versus training iteration
    plt.figure(figsize=(10, 5))
    plt.title("Generator and Discriminator Loss During Training")
    plt.plot(G_losses, label="G")
    plt.plot(D_losses, label="D")
    plt.xlabel("iterations")
    plt.ylabel("Loss")
    plt.legend()
    plt.savefig(os.path.join(out, "losses.png"), dpi=80)
    # Visualization of G's progression (the tutorial's HTML animation, as progress.gif)
    fig = plt.figure(figsize=(8, 8))
    plt.axis("off")
    ims = [[plt.imshow(np.transpose(i, (1, 2, 0)), animated=True)] for i in img_list]
    ani = animation.ArtistAnimation(fig, ims, interval=1000, repeat_delay=1000, blit=True)
    ani.save(os.path.join(out, "progress.gif"), writer=animation.PillowWriter(fps=1), dpi=64)
    # Real Images vs. Fake Images
    # Plot the real images
    plt.figure(figsize=(15, 15))
    plt.subplot(1, 2, 1)
    plt.axis("off")
    plt.title("Real Images")
    plt.imshow(np.transpose(vutils.make_grid(real_batch[:64], padding=5, normalize=True),
                            (1, 2, 0)))
    # Plot the fake images from the last epoch
    plt.subplot(1, 2, 2)
    plt.axis("off")
    plt.title("Fake Images")
    plt.imshow(np.transpose(img_list[-1], (1, 2, 0)))
    plt.savefig(os.path.join(out, "real_vs_fake.png"), dpi=60, bbox_inches="tight")
    # Addition: the last fixed-noise grid and the generator, from the sampling copy of G
    sampleG = sampling_copy(modelG, args, device)
    with torch.no_grad():
        vutils.save_image(sampleG(fixed_noise).cpu(), os.path.join(out, "fake_samples.png"),
                          padding=2, normalize=True, value_range=(-1, 1))
    sampleG = sampleG.to(memory_format=torch.contiguous_format)  # a plain layout in the file
    export_generator(sampleG, (latent(2, args, device),), os.path.join(out, "generator.pt2"),
                     SCRIPT, {k: getattr(args, k) for k in GENERATOR_SETTINGS})
    if args.show:
        plt.show()
    plt.close("all")
    print(f"wrote {out}/: generator.pt2, checkpoint.pt, metrics.csv, training_images.png, "
          f"losses.png, progress.gif, real_vs_fake.png, fake_samples.png")
    if G_losses:
        print(f"final Loss_D {D_losses[-1]:.4f}, Loss_G {G_losses[-1]:.4f} (losses are no "
              f"measure of sample quality: look at real_vs_fake.png)")


# ---------------------------------------------------------------------------------------------
# Generate: samples of a saved generator, without training (its weights only: no code runs)
# ---------------------------------------------------------------------------------------------
GENERATOR_SETTINGS = ("arch", "nz", "ngf", "nc", "image_size", "net_capacity", "filter_size",
                      "noise")


def generate(args):
    state, settings = load_generator(args.generate, SCRIPT)
    try:  # the flags' own limits: a tampered file cannot ask for absurd sizes
        s = {k: settings[k] for k in GENERATOR_SETTINGS}
        ok = s["arch"] in ("dcgan", "encoder-decoder") and s["noise"] in ("normal", "uniform") \
            and s["image_size"] in (32, 64, 128, 256) and s["nc"] in (1, 3) and all(
                isinstance(s[k], int) and 1 <= s[k] <= high for k, high in
                (("nz", 1024), ("ngf", 128), ("net_capacity", 256), ("filter_size", 15)))
        if not ok:
            raise ValueError
        netG = DecoderGenerator(s["net_capacity"], s["filter_size"], s["nz"], s["nc"]) \
            if s["arch"] == "encoder-decoder" else \
            Generator(1, s["nz"], s["ngf"], s["nc"], s["image_size"])
        netG.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError):
        fail(f"{args.generate} holds settings or weights this script cannot build; pass a "
             f"generator.pt2 written by {SCRIPT}.py")
    checked = argparse.Namespace(**s)
    device = pick_device(args.device)
    netG = netG.to(device).eval()
    set_seed(args.seed)
    print(f"Random Seed:  {args.seed}\ndevice: {device}")
    out = prepare_out(args.out, new_run=False)
    if args.save_images and os.path.exists(args.save_images) \
            and not os.path.isdir(args.save_images):
        fail(f"--save-images {args.save_images} is an existing file; pass a folder name")
    with torch.no_grad():
        fake = netG(latent(args.num_samples, checked, device)).cpu()
        nrow = max(1, int(math.sqrt(args.num_samples)))
        vutils.save_image(fake, os.path.join(out, "generated.png"), nrow=nrow, padding=2,
                          normalize=True, value_range=(-1, 1))
        print(f"wrote {out}/generated.png ({args.num_samples} samples, "
              f"{tuple(fake.shape[1:])}, range [{fake.min():.2f}, {fake.max():.2f}])")
        if args.save_images:
            os.makedirs(args.save_images, exist_ok=True)
            for k, image in enumerate(fake):
                vutils.save_image(image, os.path.join(args.save_images, f"sample_{k:05d}.png"),
                                  normalize=True, value_range=(-1, 1))
            print(f"wrote {args.num_samples} PNGs into {args.save_images}")
        if args.interpolate:  # a straight walk between two random points of the latent space
            a, b = latent(2, checked, device)
            t = torch.linspace(0, 1, args.interpolate, device=device).view(-1, 1, 1, 1)
            walk = netG((1 - t) * a + t * b).cpu()
            vutils.save_image(walk, os.path.join(out, "interpolation.png"),
                              nrow=args.interpolate, padding=2, normalize=True,
                              value_range=(-1, 1))
            print(f"wrote {out}/interpolation.png ({args.interpolate} steps)")
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.generate:
        return generate(args)
    # torchrun: one process per GPU (or per CPU worker), DistributedDataParallel
    world = os.environ.get("WORLD_SIZE", "1")
    if not world.isdigit() or int(world) < 1:
        fail(f"WORLD_SIZE={world} is not a number of processes; start several with torchrun")
    world = int(world)
    with StopOnCtrlC() as ctrl_c:
        if world == 1:
            return train(args, pick_device(args.device), 0, 1, ctrl_c)
        if not os.environ.get("RANK", "").isdigit() or "MASTER_ADDR" not in os.environ:
            fail("WORLD_SIZE is set but RANK or MASTER_ADDR is not: start several processes "
                 "with torchrun --standalone --nproc_per_node=N dcgan_celeba.py ...")
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if args.device in ("auto", "cuda") and torch.cuda.is_available():
            device, backend = torch.device("cuda", local_rank), "nccl"
            torch.cuda.set_device(device)
        else:
            device, backend = pick_device("cpu" if args.device == "auto" else args.device), "gloo"
        dist.init_process_group(backend)
        try:
            if rank != 0:  # only rank 0 prints; errors still reach stderr
                sys.stdout = open(os.devnull, "w")
            return train(args, device, rank, world, ctrl_c)
        finally:
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(run(main))
