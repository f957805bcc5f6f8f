"""DCGAN faces on CelebA: the official PyTorch DCGAN tutorial, complete, robust and resumable.

Follows seed 004 (../shared/seeds/004_dc7fe011e3c7e4d8.txt, "DCGAN tutorial", pytorch.org
beginner/dcgan_faces_tutorial): same inputs, same ImageFolder data, same weights_init, Generator,
Discriminator, fixed_noise, training loop and figures, with the tutorial's names.

    python dcgan_celeba.py --dataroot data/celeba --epochs 5       # the tutorial's run
    python dcgan_celeba.py --dataroot data/celeba --image-size 128   # any power of two, 32-256
    python dcgan_celeba.py --resume outputs/dcgan_celeba/checkpoint.pt --epochs 10
    python dcgan_celeba.py --generate outputs/dcgan_celeba/generator.pt2 --num-samples 64

    torchrun --standalone --nproc_per_node=8 dcgan_celeba.py --dataroot data/celeba   # DDP
    python dcgan_celeba.py --arch encoder-decoder --loss wgan-gp --fid 10000   # seed 003's ideas

Data: data/celeba/img_align_celeba/*.jpg (the tutorial's layout) or a flat folder of images,
decoded once into a uint8 cache file beside it (--cache) and trained from memory; bf16 autocast
on CUDA (--amp), channels-last, optional torch.compile; torchrun runs DistributedDataParallel.
Seed 003 (../shared/seeds/003_7990ad3b320aa6c4.txt, "advanced topics in GANs") adds its Keras
CelebA model (--arch encoder-decoder), WGAN-GP and hinge losses, its troubleshooting knobs
(label smoothing, noise, D/G rates and update counts, gradient norms, failure warnings) and FID.
Writes to --out: generator.pt2 (torch.export; input (N, nz, 1, 1) standard normal noise, output
(N, nc, S, S) in [-1, 1]), checkpoint.pt (every epoch, every --checkpoint-every iterations and
on Ctrl-C), metrics.csv, training_images.png, losses.png, progress.gif, real_vs_fake.png and
fake_samples.png (the last fixed-noise grid).
"""
import argparse
import hashlib
import math
import os
import signal
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.distributed as dist
import torch.nn.functional as F
import torch.optim as optim
import torch.utils.data
import torchvision.datasets as dset
import torchvision.transforms as transforms
from torch.nn.parallel import DistributedDataParallel as DDP
from PIL import Image

from common import (ArgumentParser, MetricsCSV, StopOnCtrlC, adam_beta, atomic_save,
                    export_generator, fail, format_eta, format_flags, frechet_distance,
                    gaussian_stats, image_grid, load_checkpoint, load_generator, make_out_dir,
                    non_negative_int, pick_device, positive_float, positive_int, rng_state, run,
                    save_image_grid, save_images, save_loss_plot, save_progress_gif,
                    save_real_vs_fake, set_rng_state, set_seed, unit_interval, use_agg_unless)

IMG_EXTENSIONS = dset.folder.IMG_EXTENSIONS
# what a checkpoint must match to resume (--loss changes D's normalisation layers)
ARCH_KEYS = ("arch", "image_size", "nc", "nz", "ngf", "ndf", "net_capacity", "filter_size", "loss")


# -- 1. Inputs: the tutorial's variables as flags, with its defaults -------------------------
def parse_args(argv=None):
    p = ArgumentParser(description="DCGAN faces on CelebA, the official PyTorch DCGAN tutorial "
                       "(seed 004), resumable, any image size from 32 to 256.")
    p.add_argument("--dataroot", default="data/celeba",
                   help="folder with img_align_celeba/*.jpg (ImageFolder layout) or a flat "
                   "folder of images")
    p.add_argument("--download", action="store_true",
                   help="try torchvision's CelebA download into --dataroot first")
    p.add_argument("--workers", type=non_negative_int, default=2, help="DataLoader processes")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="images per step (default 128; 32 with --arch encoder-decoder, as seed "
                   "003). With torchrun it is the global batch: each of the N "
                   "processes takes batch-size/N of every batch, so the updates are the "
                   "same as one process's (batch norm statistics are per process unless --sync-bn)")
    p.add_argument("--image-size", type=positive_int, default=64,
                   help="training image size: a power of two from 32 to 256 (G and D gain or lose "
                   "stride-2 blocks; 64 is exactly the tutorial's networks)")
    p.add_argument("--nc", type=positive_int, default=3, help="colour channels (3 for RGB)")
    p.add_argument("--nz", type=positive_int, default=100, help="size of the latent vector z")
    p.add_argument("--ngf", type=positive_int, default=64, help="generator feature-map depth")
    p.add_argument("--ndf", type=positive_int, default=64, help="discriminator feature-map depth")
    p.add_argument("--epochs", type=positive_int, default=5, help="num_epochs")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="Adam learning rate of G and D (default 0.0002; 0.0001 with --loss wgan-gp)")
    p.add_argument("--beta1", type=adam_beta, default=None,
                   help="Adam beta1 (default 0.5; 0.9, Keras' default, with --arch encoder-decoder; "
                   "0.0 with --loss wgan-gp)")
    p.add_argument("--beta2", type=adam_beta, default=None,
                   help="Adam beta2 (default 0.999; 0.9 with --loss wgan-gp)")
    p.add_argument("--ngpu", type=int, default=None,
                   help="the tutorial's ngpu (DataParallel) is gone: --device picks one GPU, torchrun runs several")
    # -- seed 003 (issue 7): its CelebA model, losses and troubleshooting knobs
    p.add_argument("--arch", choices=["dcgan", "encoder-decoder"], default="dcgan",
                   help="dcgan: the tutorial's networks. encoder-decoder: seed 003's Keras CelebA "
                   "model (D: 4 encoder blocks of two 5x5 convs and global average pooling; G: "
                   "a dense projection and 4 decoder blocks of 5x5 transposed convs), 64x64 only")
    p.add_argument("--net-capacity", type=positive_int, default=16,
                   help="encoder-decoder: filters of the first block (seed 003's NET_CAPACITY)")
    p.add_argument("--filter-size", type=positive_int, default=5,
                   help="encoder-decoder: odd convolution size (seed 003's FILTER_SIZE)")
    p.add_argument("--num-load", type=positive_int, default=None,
                   help="train on the first N images only (default all; 10000 with --arch "
                   "encoder-decoder, seed 003's NUM_LOAD)")
    p.add_argument("--loss", choices=["bce", "wgan-gp", "hinge"], default="bce",
                   help="bce: the tutorial's. wgan-gp: Wasserstein loss with gradient penalty "
                   "(Gulrajani et al. 2017; D becomes a critic with layer norm instead of batch "
                   "norm, and implies --d-updates 5 --lr 0.0001 --beta1 0.0 --beta2 0.9). hinge: "
                   "the hinge loss of SAGAN/BigGAN")
    p.add_argument("--gp-weight", type=positive_float, default=10.0,
                   help="wgan-gp: weight of the gradient penalty (lambda)")
    p.add_argument("--d-updates", type=positive_int, default=None,
                   help="D steps (each on a new real batch) per G step (default 1; 5 with --loss wgan-gp)")
    p.add_argument("--g-updates", type=positive_int, default=1,
                   help="G steps per iteration (each after the first on new noise; seed 003 tip 8)")
    p.add_argument("--lr-d", type=positive_float, default=None,
                   help="D's learning rate (default --lr; TTUR: a larger D rate than G's)")
    p.add_argument("--lr-g", type=positive_float, default=None, help="G's learning rate (default --lr)")
    p.add_argument("--label-smoothing", type=unit_interval, default=0.0, metavar="X",
                   help="bce: one-sided label smoothing, D's real targets become 1 - X (seed 003 "
                   "tip 6; 0.1 is common). Fake targets and G's targets stay 0 and 1")
    p.add_argument("--noise", choices=["normal", "uniform"], default="normal",
                   help="latent noise: standard normal (seed 003 tip 3) or uniform in [-1, 1]")
    p.add_argument("--progress-every", type=non_negative_int, default=None,
                   help="seed 003's progress figure (8 fakes titled with D's score) every N "
                   "iterations into OUT/visualization/<configuration>/ (default 80 with --arch "
                   "encoder-decoder, else 0: off)")
    p.add_argument("--fid", type=non_negative_int, default=0, metavar="N",
                   help="FID of N generated against N real images at the end (needs "
                   "pip install -r requirements-fid.txt; 10000 is a usual N, 0: off)")
    p.add_argument("--fid-every", type=non_negative_int, default=0, metavar="E",
                   help="with --fid: also every E epochs (0: only at the end)")
    p.add_argument("--fid-weights", metavar="PATH",
                   help="local Inception weights for --fid (torch-fidelity's "
                   "weights-inception-2015-12-05-6726825d.pth), for offline machines")
    # -- speed (issue 5): each is a few marked lines in the section it belongs to
    p.add_argument("--cache", action=argparse.BooleanOptionalAction, default=None,
                   help="decode, resize and crop every image once into a uint8 tensor file "
                   "(--cache-dir), then train from memory (on CUDA: from GPU memory). "
                   "Default: on when it takes at most half of the free memory")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="where the cache file goes (default: --dataroot, beside the images)")
    p.add_argument("--hflip", action="store_true",
                   help="random horizontal flips, on the device (the tutorial has none)")
    p.add_argument("--amp", choices=["off", "bf16", "fp16"], default=None,
                   help="mixed precision: bf16 autocast, or fp16 with a GradScaler per optimizer; "
                   "losses stay fp32. Default: bf16 on CUDA, off elsewhere")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="NHWC memory format for G and D (oneDNN on CPU and tensor cores on GPU "
                   "prefer it; see benchmarks/README.md)")
    p.add_argument("--compile", action="store_true", help="torch.compile G and D (slow first steps)")
    p.add_argument("--sync-bn", action="store_true",
                   help="with torchrun on CUDA: SyncBatchNorm (batch statistics over all ranks)")
    p.add_argument("--log-every", type=positive_int, default=50,
                   help="stats line (and the only host sync of the loop) every N iterations")
    p.add_argument("--sample-every", type=positive_int, default=500,
                   help="fixed_noise grid into img_list every N iterations (and at the end)")
    p.add_argument("--checkpoint-every", type=non_negative_int, default=0,
                   help="also write checkpoint.pt every N iterations (0: only at epoch ends)")
    p.add_argument("--seed", type=int, default=999, help="manualSeed")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                   help="auto picks cuda, then mps, then cpu")
    p.add_argument("--out", default="outputs/dcgan_celeba", help="folder for everything written")
    p.add_argument("--resume", metavar="PATH", help="continue from a checkpoint.pt")
    p.add_argument("--dry-run", action="store_true",
                   help="one training iteration, then write every output file")
    p.add_argument("--show", action="store_true", help="also show the figures in windows")
    p.add_argument("--generate", metavar="PATH", help="no training: sample from a generator.pt2")
    p.add_argument("--num-samples", type=positive_int, default=64, help="images for --generate")
    p.add_argument("--save-images", metavar="DIR",
                   help="with --generate: also write one PNG per sample into DIR")
    p.add_argument("--interpolate", type=positive_int, metavar="K",
                   help="with --generate: also write a K-step latent walk between two random points")
    args = p.parse_args(argv)
    if args.ngpu is not None:  # the tutorial's DataParallel path is gone (PyTorch recommends DDP)
        p.error("--ngpu is not used: one GPU is picked by --device; for several GPUs run "
                "torchrun --standalone --nproc_per_node=N dcgan_celeba.py ...")
    if args.image_size not in (32, 64, 128, 256):
        p.error(f"--image-size must be 32, 64, 128 or 256 (a power of two), got {args.image_size}")
    if args.nc not in (1, 3):
        p.error(f"--nc must be 3 (RGB, the tutorial's) or 1 (grayscale), got {args.nc}")
    if (args.save_images or args.interpolate) and not args.generate:
        p.error("--save-images and --interpolate go with --generate")
    if args.arch == "encoder-decoder" and args.image_size != 64:
        p.error("--arch encoder-decoder is seed 003's 64x64 model: use --image-size 64")
    if args.filter_size % 2 == 0:
        p.error(f"--filter-size must be odd (a 'same' padding needs it), got {args.filter_size}")
    if args.label_smoothing and args.loss != "bce":
        p.error("--label-smoothing smooths BCE targets: it goes with --loss bce")
    if args.fid_every and not args.fid:
        p.error("--fid-every needs --fid N (how many images to compare)")
    args.implied = implied_defaults(args)
    return args


def implied_defaults(args):
    """Fill the flags left unset: the tutorial's values, or those that --arch encoder-decoder
    (seed 003) and --loss wgan-gp (Gulrajani et al.) imply. Returns the implied ones to print."""
    implied = {}
    seed003, wgan = args.arch == "encoder-decoder", args.loss == "wgan-gp"
    for name, tutorial, value in [("batch_size", 128, 32 if seed003 else None),
                                  ("num_load", None, 10000 if seed003 else None),
                                  ("progress_every", 0, 80 if seed003 else None),
                                  ("lr", 0.0002, 0.0001 if wgan else None),
                                  ("beta1", 0.5, 0.0 if wgan else 0.9 if seed003 else None),
                                  ("beta2", 0.999, 0.9 if wgan else None),
                                  ("d_updates", 1, 5 if wgan else None)]:
        if getattr(args, name) is None:
            setattr(args, name, tutorial if value is None else value)
            if value is not None:
                implied[name] = value
    args.lr_d, args.lr_g = args.lr_d or args.lr, args.lr_g or args.lr
    return implied


# -- 2. Data: the tutorial's ImageFolder, plus the layouts and files it chokes on ------------
LAYOUT = ("expected {root}/img_align_celeba/*.jpg (as the tutorial: unzip img_align_celeba.zip "
          "into {root}) or a flat folder of images {root}/*.jpg")


def find_images(root):
    """The image paths ImageFolder(root) would use (class subfolders, searched recursively), or
    a flat folder of images as one class. Every way this goes wrong is one clear error."""
    if root.lower().endswith(".zip") and os.path.isfile(root):
        fail(f"--dataroot {root} is a zip file; unzip it first (cd {os.path.dirname(root) or '.'} "
             f"&& unzip {os.path.basename(root)}) and pass the folder it made")
    if not os.path.isdir(root):
        fail(f"--dataroot {root} does not exist; {LAYOUT.format(root=root)}. Get CelebA with "
             f"--download, or by hand (see --help)")
    is_image = lambda name: name.lower().endswith(IMG_EXTENSIONS)
    paths = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir() and not entry.name.startswith("."):
            for folder, dirs, files in os.walk(entry.path):
                dirs.sort()
                paths += [os.path.join(folder, f) for f in sorted(files) if is_image(f)]
    if not paths:  # no class subfolders with images: the tutorial's ImageFolder fails here
        paths = [e.path for e in sorted(os.scandir(root), key=lambda e: e.name)
                 if e.is_file() and is_image(e.name)]
    if not paths:
        zips = [n for n in os.listdir(root) if n.lower().endswith(".zip")]
        if zips:
            fail(f"{root} holds {zips[0]} but no images; unzip it there first "
                 f"(cd {root} && unzip {zips[0]}), which makes {root}/img_align_celeba/*.jpg")
        fail(f"no images (.jpg, .png, ...) in --dataroot {root}; {LAYOUT.format(root=root)}")
    return paths


def download_celeba(root):
    """torchvision's CelebA download; its Google Drive quota often refuses, so say what to do."""
    parent = os.path.dirname(os.path.normpath(root)) if os.path.basename(os.path.normpath(root)) == "celeba" else root
    print(f"downloading CelebA into {os.path.join(parent, 'celeba')} ...", flush=True)
    try:
        dset.CelebA(parent or ".", split="all", download=True)
    except Exception as e:
        fail(f"the CelebA download failed ({type(e).__name__}: {str(e)[:200]}); download "
             f"img_align_celeba.zip by hand from http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html "
             f"(or its Google Drive folder), then: mkdir -p {root} && unzip img_align_celeba.zip -d {root}")
    return os.path.join(parent, "celeba")


class ImageFiles(torch.utils.data.Dataset):
    """ImageFolder's loading (PIL, RGB) and the tutorial's transform, except that a corrupt or
    unreadable file comes back flagged (ok = False) and is dropped from its batch, instead of
    crashing the epoch."""

    def __init__(self, paths, transform, shape):
        self.paths, self.transform, self.shape = paths, transform, shape
        self.mode = "RGB" if shape[0] == 3 else "L"
        self.skipped = 0

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        try:
            with Image.open(self.paths[i]) as im:
                return self.transform(im.convert(self.mode)), True
        except Exception:  # truncated, corrupt, or not an image at all
            return torch.zeros(self.shape), False


def ignore_sigint(worker_id):
    """DataLoader workers leave Ctrl-C to the main process, which saves a checkpoint first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def epoch_order(n, seed, epoch):
    """The DataLoader's shuffle=True, as a permutation that depends only on (seed, epoch): a
    resumed run sees exactly the same batches, whatever happened before (or however many
    processes train)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 10007 + epoch))


def num_batches(n, batch_size, world):
    if world > 1:  # DDP: every rank needs its share of every batch; the last partial one is dropped
        return n // batch_size
    return math.ceil(n / batch_size)  # the tutorial keeps the last, smaller batch


def rank_indices(order, i, args, rank, world):
    """This rank's share of global batch i: --batch-size is the global batch, split evenly."""
    share = args.batch_size // world
    return order[i * args.batch_size + rank * share:i * args.batch_size + (rank + 1) * share]


def real_batches(dataset, order, start, stop, args, device, rank, world):
    """Yields (i, real_cpu) for batches start..stop-1 of this epoch's order, in [-1, 1] on the
    device; unreadable files are dropped from their batch and counted in dataset.skipped."""
    if isinstance(dataset, torch.Tensor):  # --cache: the decoded uint8 images, batches by indexing
        order = order.to(dataset.device)
        for i in range(start, stop):
            real_u8 = dataset[rank_indices(order, i, args, rank, world)]
            yield i, to_model_range(real_u8.to(device, non_blocking=True))
        return
    indices = torch.cat([rank_indices(order, i, args, rank, world) for i in range(start, stop)])
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size // world,
                                             sampler=indices.tolist(), num_workers=args.workers,
                                             worker_init_fn=ignore_sigint,
                                             pin_memory=device.type == "cuda")
    for i, (data, ok) in enumerate(dataloader, start):
        if not ok.all():
            dataset.skipped += int((~ok).sum())
            data = data[ok]
            if len(data) == 0:
                continue
        yield i, data.to(device, non_blocking=True)


# -- 2b. The decoded-image cache (--cache): decode, resize and crop once, then train from memory
CACHE_VERSION = 1


def to_model_range(u8):
    """ToTensor() then Normalize(0.5, 0.5) of the tutorial, for a uint8 batch on the device:
    u / 255 * 2 - 1 = u / 127.5 - 1."""
    return u8.float().div_(127.5).sub_(1.0)


class DecodedFiles(torch.utils.data.Dataset):
    """One file as the tutorial's Resize + CenterCrop leave it, as uint8 (C, S, S), and ok."""

    def __init__(self, paths, size, nc):
        self.paths, self.size, self.nc = paths, size, nc
        self.crop = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size),
                                        transforms.PILToTensor()])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        try:
            with Image.open(self.paths[i]) as im:
                return self.crop(im.convert("RGB" if self.nc == 3 else "L")), True
        except Exception:
            return torch.zeros(self.nc, self.size, self.size, dtype=torch.uint8), False


def cache_key(paths, args):
    """Changes when a file is added, removed or rewritten, or the image size changes."""
    h = hashlib.sha256(f"v{CACHE_VERSION} {args.image_size} {args.nc}".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"\0{os.path.relpath(p, args.dataroot)}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()


def checksum(images):
    """A cheap content checksum (a sum of int32 words) that catches truncated or damaged data."""
    return int(images.reshape(-1).view(torch.int32).sum(dtype=torch.int64))


def cache_path(args, count):
    first = f"_first{args.num_load}" if args.num_load and count == args.num_load else ""
    return os.path.join(args.cache_dir or args.dataroot,
                        f"dcgan_celeba_cache_{args.image_size}px_nc{args.nc}{first}.pt")


def load_cache(path, key):
    """The cached images if the file is there, intact and made from these files; else None."""
    if not os.path.isfile(path):
        return None, "none yet"
    try:
        c = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if c.get("version") != CACHE_VERSION or c.get("key") != key:
            return None, "the folder or --image-size changed"
        images = c["images"]
        if images.shape[0] != c["count"] or checksum(images) != c["checksum"]:
            return None, "its contents are damaged"
        return images, c["skipped"]
    except Exception as e:  # truncated or not a cache file at all
        return None, f"unreadable ({type(e).__name__})"


def build_cache(paths, args, path):
    """Decode every file once (with --workers processes) into one uint8 tensor; save it atomically."""
    S, n = args.image_size, len(paths)
    images = torch.empty(n, args.nc, S, S, dtype=torch.uint8)
    ok = torch.empty(n, dtype=torch.bool)
    loader = torch.utils.data.DataLoader(DecodedFiles(paths, S, args.nc), batch_size=256,
                                         num_workers=args.workers, worker_init_fn=ignore_sigint)
    t0, done = time.perf_counter(), 0
    for x, good in loader:
        images[done:done + len(x)], ok[done:done + len(x)] = x, good
        done += len(x)
        if done == n or done % (256 * 40) == 0:
            rate = done / (time.perf_counter() - t0)
            print(f"cache: decoded {done}/{n} images, {rate:.0f} img/s, ETA "
                  f"{format_eta((n - done) / rate)}", flush=True)
    images, skipped = images[ok].contiguous(), int((~ok).sum())
    if len(images) == 0:
        fail(f"none of the {n} image files in {args.dataroot} could be read")
    try:
        atomic_save({"version": CACHE_VERSION, "key": cache_key(paths, args), "images": images,
                     "count": len(images), "checksum": checksum(images), "skipped": skipped}, path)
        print(f"cache: wrote {path} ({images.numel() / 1e9:.2f} GB)")
    except OSError as e:
        print(f"warning: cannot write the cache {path} ({e.strerror}); training from memory "
              f"anyway (set --cache-dir to a writable folder)", file=sys.stderr)
    return images, skipped


def use_cache(paths, args, device):
    """--cache auto: on when the uint8 images take at most half of the free memory."""
    need = len(paths) * args.nc * args.image_size ** 2
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        free = 8 << 30
    if args.cache is None:
        args.cache = need <= free // 2
        print(f"cache: {'on' if args.cache else 'off'} ({need / 1e9:.2f} GB of decoded images, "
              f"{free / 1e9:.1f} GB free memory; --cache/--no-cache decide)")
    return args.cache


# -- 3. Networks: weights_init, Generator and Discriminator of the tutorial ------------------
# custom weights initialization called on netG and netD
def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


# The tutorial's classes hard-code 64x64 (its "other sizes need other D and G", pytorch/examples
# #70). Here the middle stride-2 blocks repeat log2(image_size) - 3 times; at 64 the layers,
# their order and the printed model are exactly the tutorial's.
class Generator(nn.Module):
    def __init__(self, nz=100, ngf=64, nc=3, image_size=64):
        super(Generator, self).__init__()
        mult = image_size // 8  # 8 at 64x64
        layers = [
            # input is Z, going into a convolution
            nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * mult),
            nn.ReLU(True),
            # state size. (ngf*8) x 4 x 4
        ]
        size = 4
        while mult > 1:
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * mult // 2),
                nn.ReLU(True),
            ]
            mult, size = mult // 2, size * 2
            # state size. (ngf*4) x 8 x 8, then (ngf*2) x 16 x 16, then (ngf) x 32 x 32
        layers += [
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh()
            # state size. (nc) x 64 x 64
        ]
        self.main = nn.Sequential(*layers)

    def forward(self, input):
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self, nc=3, ndf=64, image_size=64, norm=nn.BatchNorm2d):
        super(Discriminator, self).__init__()
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
            # The tutorial ends with nn.Sigmoid() and trains with BCELoss, which autocast refuses
            # (unsafe in half precision). D returns logits; BCEWithLogitsLoss fuses both stably,
            # and the printed D(x), D(G(z)) are sigmoid(logits): the same probabilities.
        ]
        self.main = nn.Sequential(*layers)

    def forward(self, input):
        return self.main(input)


# -- 3b. Seed 003's Keras CelebA model (--arch encoder-decoder), in PyTorch -----------------
# Keras' Conv2D(padding='same') keeps the size (stride 1) or halves it (stride 2); for an odd
# filter size that is padding filter_size // 2 here, and Deconvolution2D(strides=2, 'same')
# doubles it with output_padding=1. BatchNorm keeps PyTorch's momentum (Keras' 0.99 would make
# the running statistics, used by the exported generator, lag far behind the weights).
def keras_init(m):
    """Keras' default initialisation: glorot_uniform weights, zero biases."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)


def add_encoder_block(in_filters, filters, filter_size, norm=nn.BatchNorm2d):
    same = filter_size // 2
    return [nn.Conv2d(in_filters, filters, filter_size, padding=same),
            norm(filters),
            nn.Conv2d(filters, filters, filter_size, stride=2, padding=same),
            norm(filters),
            nn.LeakyReLU(0.3)]


class EncoderDiscriminator(nn.Module):
    """build_discriminator(start_filters, spatial_dim, filter_size) of seed 003."""

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
            nn.Flatten(),                                           # (f*8)
            nn.Linear(f * 8, 1),  # Dense(1, activation='sigmoid'): logits here, as Discriminator
        )

    def forward(self, input):
        return self.main(input)


def add_decoder_block(in_filters, filters, filter_size):
    return [nn.ConvTranspose2d(in_filters, filters, filter_size, stride=2,
                               padding=filter_size // 2, output_padding=1),
            nn.BatchNorm2d(filters),
            nn.LeakyReLU(0.3)]


class DecoderGenerator(nn.Module):
    """build_generator(start_filters, filter_size, latent_dim) of seed 003. Takes the tutorial's
    (N, nz, 1, 1) noise (or (N, nz)), so both --arch values train and export alike."""

    def __init__(self, start_filters=16, filter_size=5, latent_dim=100, nc=3):
        super().__init__()
        f = start_filters
        # Projection: Dense(4 * 4 * (start_filters * 8)) + BatchNormalization, then Reshape
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(latent_dim, 4 * 4 * f * 8),
                                     nn.BatchNorm1d(4 * 4 * f * 8))
        self.main = nn.Sequential(
            # state size. (f*8) x 4 x 4; decoding blocks upsample the image
            *add_decoder_block(f * 8, f * 4, filter_size),   # (f*4) x 8 x 8
            *add_decoder_block(f * 4, f * 2, filter_size),   # (f*2) x 16 x 16
            *add_decoder_block(f * 2, f, filter_size),       # (f) x 32 x 32
            *add_decoder_block(f, f, filter_size),           # (f) x 64 x 64
            nn.Conv2d(f, nc, 5, padding=2),                  # Conv2D(3, kernel_size=5, 'same')
            nn.Tanh(),                                       # (nc) x 64 x 64
        )
        self.start_filters = f

    def forward(self, input):
        x = self.project(input).view(-1, self.start_filters * 8, 4, 4)
        return self.main(x)


def make_generator(args):
    if args.arch == "encoder-decoder":
        return DecoderGenerator(args.net_capacity, args.filter_size, args.nz, args.nc)
    return Generator(args.nz, args.ngf, args.nc, args.image_size)


def build_models(args, device):
    """Create netG and netD on the device and apply weights_init, as the tutorial does (seed
    003's model gets Keras' initialisation). A WGAN-GP critic normalises each sample on its own:
    the gradient penalty is per sample, which batch norm would mix (Gulrajani et al., sec. 4)."""
    # layer norm over (C, H, W) with a scale and shift per channel
    norm = (lambda c: nn.GroupNorm(1, c)) if args.loss == "wgan-gp" else nn.BatchNorm2d
    netG = make_generator(args).to(device)
    if args.arch == "encoder-decoder":
        netD = EncoderDiscriminator(args.net_capacity, args.filter_size, args.nc, norm).to(device)
        netG.apply(keras_init)
        netD.apply(keras_init)
    else:
        netD = Discriminator(args.nc, args.ndf, args.image_size, norm).to(device)
        netG.apply(weights_init)
        netD.apply(weights_init)
    return netG, netD


# -- 3c. Losses (--loss) and seed 003's failure signs ------------------------------------------
def loss_D(output, label, criterion, loss, real):
    """D's loss on one batch of its outputs (logits): the tutorial's criterion(output, label),
    or the WGAN critic's -E[D(x)] / E[D(G(z))], or the hinge loss. Always in fp32."""
    output = output.float()
    if loss == "bce":
        return criterion(output, label)
    if loss == "hinge":
        return F.relu(1.0 - output).mean() if real else F.relu(1.0 + output).mean()
    return -output.mean() if real else output.mean()  # wgan-gp


def loss_G(output, label, criterion, loss):
    """G's loss: BCE with real labels (the tutorial), or -E[D(G(z))] (WGAN and hinge)."""
    output = output.float()
    return criterion(output, label) if loss == "bce" else -output.mean()


def gradient_penalty(netD, real, fake, weight, generator=None):
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): weight * E[(||grad D(x_hat)||_2 - 1)^2] at random
    points x_hat on the straight lines between real and fake samples. Runs in fp32 (no autocast):
    its double backward is the part of WGAN-GP that low precision hurts."""
    eps = torch.rand(real.size(0), 1, 1, 1, device=real.device, generator=generator)
    x_hat = (eps * real.float() + (1 - eps) * fake.float()).requires_grad_(True)
    with torch.autocast(real.device.type, enabled=False):
        out = netD(x_hat)
    grad, = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def make_noise(n, args, device, generator=None):
    """n latent vectors (n, nz, 1, 1): standard normal, the tutorial's torch.randn, or uniform
    in [-1, 1] (--noise uniform)."""
    if args.noise == "uniform":
        return torch.rand(n, args.nz, 1, 1, device=device, generator=generator) * 2 - 1
    return torch.randn(n, args.nz, 1, 1, device=device, generator=generator)


def grad_norm(module):
    """The total L2 norm of a module's gradients (seed 003 tip 7: monitor gradient sizes)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


class FailureWatch:
    """Seed 003's two failure signs, each warned about once, with the knob that usually helps:
    D's loss near its minimum for many iterations (D wins, G's gradients vanish: tip 8), and
    generated samples that no longer vary (mode collapse: the batch's pixel-wise std far below
    the real images')."""

    def __init__(self, args, patience=200):
        self.loss, self.patience, self.warned = args.loss, patience, set()
        # the least BCE D can reach: with smoothing, the entropy of its real target
        x = args.label_smoothing
        self.d_floor = -(1 - x) * math.log(1 - x) - (x * math.log(x) if x else 0.0)
        self.low_d = self.low_std = 0

    def update(self, d_losses, fake_std, real_std):
        """d_losses: D's losses since the last call; fake_std/real_std: pixel-wise std over the
        batch (mean over pixels). Returns warnings to print (each kind once)."""
        out = []
        if self.loss != "wgan-gp":  # a critic's loss has no minimum to sit at
            for d in d_losses:
                self.low_d = self.low_d + 1 if d < self.d_floor + 0.01 else 0
            if self.low_d >= self.patience and "d" not in self.warned:
                self.warned.add("d")
                out.append(f"Loss_D has stayed near its minimum for {self.low_d} iterations: D "
                           f"wins and G's gradients vanish (seed 003 tip 8). Try a lower D "
                           f"learning rate (--lr-d), more G steps (--g-updates 2), "
                           f"--label-smoothing 0.1, or --loss wgan-gp")
        self.low_std = self.low_std + len(d_losses) if fake_std < 0.1 * real_std else 0
        if self.low_std >= self.patience and "std" not in self.warned:
            self.warned.add("std")
            out.append(f"generated samples are collapsing (pixel-wise std over the batch "
                       f"{fake_std:.3f} against {real_std:.3f} for real images): mode collapse. "
                       f"Try --loss wgan-gp, a lower G learning rate (--lr-g), or more D steps "
                       f"(--d-updates 2)")
        return out


# -- 4. Training: the tutorial's loop, plus checkpoints, resume and progress lines -----------
def checkpoint_state(netG, netD, optimizerG, optimizerD, noise_rng, progress, args):
    return {"netG": netG.state_dict(), "netD": netD.state_dict(),
            "optimizerG": optimizerG.state_dict(), "optimizerD": optimizerD.state_dict(),
            "noise_rng": noise_rng.get_state(), "rng": rng_state(),
            "arch": {k: getattr(args, k) for k in ARCH_KEYS}, "args": vars(args).copy(),
            **progress}


def load_resume(path, netG, netD, optimizerG, optimizerD, noise_rng, args):
    """Restore everything from --resume; a checkpoint of another model is a clear error."""
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict) or "netG" not in ckpt or "arch" not in ckpt:
        fail(f"{path} is not a checkpoint written by dcgan_celeba.py")
    arch = {k: getattr(args, k) for k in ARCH_KEYS}
    if ckpt["arch"] != arch:
        theirs = format_flags(ckpt["arch"])
        fail(f"{path} was trained with {theirs}; pass the same flags to resume it")
    try:
        netG.load_state_dict(ckpt["netG"])
        netD.load_state_dict(ckpt["netD"])
        optimizerG.load_state_dict(ckpt["optimizerG"])
        optimizerD.load_state_dict(ckpt["optimizerD"])
    except (RuntimeError, ValueError, KeyError) as e:
        fail(f"{path} does not fit these networks ({str(e).splitlines()[0][:120]})")
    noise_rng.set_state(ckpt["noise_rng"])
    set_rng_state(ckpt["rng"])
    return ckpt


# -- 5. Results: the tutorial's figures, as files --------------------------------------------
def save_training_images(real_batch, path):
    """The tutorial's "Training Images" figure."""
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(8, 8))
    plt.axis("off")
    plt.title("Training Images")
    plt.imshow(np.transpose(image_grid(real_batch[:64]).numpy(), (1, 2, 0)))
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def config_name(args):
    """Seed 003's folder name for a configuration (plus the loss when it is not BCE)."""
    if args.arch == "encoder-decoder":
        name = f"gan_cap{args.net_capacity}_batch{args.batch_size}_filt{args.filter_size}"
    else:
        name = f"gan_dcgan_ngf{args.ngf}_ndf{args.ndf}_batch{args.batch_size}"
    name += f"_disc{args.d_updates}_gen{args.g_updates}"
    return name if args.loss == "bce" else f"{name}_{args.loss}"


def save_progress_figure(modelG, modelD, args, total_it, folder, device):
    """Seed 003's progress visualisation: 8 new fakes, each titled with D's score, saved as
    <iteration>.jpg. Its own noise stream: the training's random numbers stay untouched."""
    import matplotlib.pyplot as plt
    num_vis = min(args.batch_size, 8)
    noise = make_noise(num_vis, args, device, torch.Generator(device).manual_seed(args.seed + total_it))
    modelG.eval(), modelD.eval()  # Keras' predict(): inference mode
    with torch.no_grad():
        imgs_fake = modelG(noise)
        disc_score = modelD(imgs_fake).view(-1).float()
    modelG.train(), modelD.train()
    if args.loss == "bce":
        disc_score = torch.sigmoid(disc_score)  # the seed's sigmoid output (for other losses: the score)
    fig = plt.figure(figsize=(num_vis * 3, 3))
    for b in range(num_vis):
        plt.subplot(1, num_vis, b + 1)
        plt.title(str(round(float(disc_score[b]), 3)))
        plt.imshow(np.transpose((imgs_fake[b].float().cpu().numpy() * 0.5 + 0.5).clip(0, 1), (1, 2, 0)).squeeze(),
                   cmap="gray" if args.nc == 1 else None)
        plt.axis("off")
    fig.savefig(os.path.join(folder, str(total_it).zfill(10) + '.jpg'), format='jpg', bbox_inches='tight')
    plt.close(fig)


# -- 6. Generate: samples from a saved generator, without training ---------------------------
def generate(args, plt):
    netG = load_generator(args.generate)
    nz = args.nz
    for node in netG.graph.nodes:  # the latent size the generator was exported with
        if node.op == "placeholder" and hasattr(node.meta.get("val"), "shape"):
            nz = int(node.meta["val"].shape[1])
    device = pick_device(args.device)
    netG = netG.to(device)
    set_seed(args.seed)
    print(f"Random Seed:  {args.seed}\ndevice: {device}")
    out = make_out_dir(args.out)
    with torch.no_grad():
        noise = torch.randn(args.num_samples, nz, 1, 1, device=device)
        fake = netG(noise).float().cpu()
        path = save_image_grid(fake, os.path.join(out, "generated.png"),
                               nrow=max(1, int(math.sqrt(args.num_samples))))
        print(f"wrote {path} ({args.num_samples} samples, {tuple(fake.shape[1:])}, "
              f"range [{fake.min():.2f}, {fake.max():.2f}])")
        if args.save_images:
            save_images(fake, args.save_images)
            print(f"wrote {args.num_samples} PNGs into {args.save_images}")
        if args.interpolate:  # a straight walk between two random points of the latent space
            a, b = torch.randn(2, nz, 1, 1, device=device)
            t = torch.linspace(0, 1, args.interpolate, device=device).view(-1, 1, 1, 1)
            walk = netG((1 - t) * a + t * b).float().cpu()
            path = save_image_grid(walk, os.path.join(out, "interpolation.png"), nrow=args.interpolate)
            print(f"wrote {path} ({args.interpolate} steps)")
    return 0


# -- 7. Evaluation: FID (--fid), with torch-fidelity's Inception network --------------------
def fid_extractor(args, device):
    """torch-fidelity's InceptionV3 (the TensorFlow FID network, 2048 pool features): uint8
    images in, features out. Every way of not having it is one clear error."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import (URL_INCEPTION_V3,
                                                                   FeatureExtractorInceptionV3)
    except ImportError:
        fail("--fid needs torch-fidelity: pip install -r requirements-fid.txt")
    path = args.fid_weights
    if path is None:  # torch.hub's cache, where torch-fidelity itself would keep it
        path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(URL_INCEPTION_V3))
        if not os.path.isfile(path):
            print(f"fid: downloading {URL_INCEPTION_V3}", flush=True)
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                torch.hub.download_url_to_file(URL_INCEPTION_V3, path, progress=False)
            except Exception as e:
                fail(f"cannot download the FID Inception weights ({type(e).__name__}: "
                     f"{str(e)[:120]}); on an offline machine, fetch {URL_INCEPTION_V3} "
                     f"elsewhere and pass --fid-weights PATH (or put it at {path})")
    elif not os.path.isfile(path):
        fail(f"--fid-weights {path} does not exist; it is {URL_INCEPTION_V3}, downloaded")
    try:
        model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                            feature_extractor_weights_path=path)
    except Exception as e:
        fail(f"{path} is not torch-fidelity's Inception weights file ({type(e).__name__}: "
             f"{str(e).splitlines()[0][:120]})")
    return model.to(device)


def to_uint8(images):
    """[-1, 1] floats to the 0..255 images an FID network expects (3 channels)."""
    u8 = ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return u8.expand(-1, 3, -1, -1) if u8.shape[1] == 1 else u8


def fid_stats(extractor, batches, device):
    """Mean and covariance of the extractor's features over uint8 batches."""
    with torch.no_grad():
        features = [extractor(b.to(device))[0].double().cpu() for b in batches]
    return gaussian_stats(torch.cat(features))


def real_fid_batches(dataset, n, seed, batch=100):
    """n real images (a fixed random choice) as uint8 batches."""
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n]
    for chunk in pick.split(batch):
        if isinstance(dataset, torch.Tensor):  # the cache: uint8 already
            u8 = dataset[chunk.to(dataset.device)].cpu()
            yield u8.expand(-1, 3, -1, -1) if u8.shape[1] == 1 else u8
        else:
            images = [x for x, ok in map(dataset.__getitem__, chunk.tolist()) if ok]
            if images:
                yield to_uint8(torch.stack(images))


def fake_fid_batches(modelG, n, args, device, batch=100):
    """n generated images (eval mode, a noise stream of their own) as uint8 batches."""
    gen = torch.Generator(device).manual_seed(args.seed + 1)
    modelG.eval()
    with torch.no_grad():
        for start in range(0, n, batch):
            yield to_uint8(modelG(make_noise(min(batch, n - start), args, device, gen)).cpu())
    modelG.train()


def main(argv=None):
    args = parse_args(argv)
    plt = use_agg_unless(args.show)
    if args.generate:
        return generate(args, plt)
    # -- torchrun: one process per GPU (or per CPU worker), DistributedDataParallel --------------
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return train(args, plt, pick_device(args.device), 0, 1)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if args.device in ("auto", "cuda") and torch.cuda.is_available():
        device, backend = torch.device("cuda", local_rank), "nccl"
        torch.cuda.set_device(device)
    else:
        device, backend = pick_device("cpu" if args.device == "auto" else args.device), "gloo"
    if args.batch_size % world:
        fail(f"--batch-size {args.batch_size} is the global batch; with {world} processes it "
             f"must be a multiple of {world}")
    dist.init_process_group(backend)
    try:
        if rank != 0:  # only rank 0 prints; errors still reach stderr
            sys.stdout = open(os.devnull, "w")
        return train(args, plt, device, rank, world)
    finally:
        dist.destroy_process_group()


def any_rank(flag, device):
    """True on every rank when `flag` is True on any (one small all_reduce)."""
    t = torch.tensor(float(flag), device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def train(args, plt, device, rank, world):
    master = rank == 0
    # Set random seed for reproducibility
    manualSeed = args.seed
    print("Random Seed: ", manualSeed)
    set_seed(manualSeed)
    print(f"device: {device}" + (f" x {world} processes (torchrun, DDP)" if world > 1 else ""))
    print("arguments: " + format_flags({k: v for k, v in vars(args).items()
                                        if v is not None and v is not False and k != "implied"}))
    if args.implied:
        print(f"defaults implied by --arch {args.arch} --loss {args.loss}: "
              + format_flags(args.implied))
    nz, num_epochs = args.nz, args.epochs
    # --amp: bf16 autocast by default on CUDA; fp16 with one GradScaler per optimizer
    amp = args.amp or ("bf16" if device.type == "cuda" else "off")
    if amp == "fp16" and device.type != "cuda":
        fail("--amp fp16 needs a CUDA GPU (its GradScaler); use --amp bf16 on this device")
    if args.sync_bn and not (world > 1 and device.type == "cuda"):
        fail("--sync-bn needs torchrun with several CUDA GPUs (SyncBatchNorm has no CPU version)")

    # --fid: the Inception network first, so a missing package or file stops the run at once
    extractor = fid_extractor(args, device) if args.fid and master else None

    # -- Data ------------------------------------------------------------------------------
    if args.download and master:
        download_celeba(args.dataroot)
    if args.download and world > 1:
        dist.barrier()
    paths = find_images(args.dataroot)[:args.num_load]  # --num-load: the first N (seed 003)
    use = use_cache(paths, args, device) if master else None
    if world > 1:  # rank 0 decides for all (free memory differs from moment to moment)
        decision = [use]
        dist.broadcast_object_list(decision, src=0)
        use = decision[0]
    if use:  # --cache: decoded uint8 images, normalised on the device
        path, key = cache_path(args, len(paths)), cache_key(paths, args)
        images, skipped = load_cache(path, key) if master else (None, None)
        if master and images is None:
            print(f"cache: building {path} ({skipped})")
            with torch.random.fork_rng(devices=[]):  # building must not change the model's init
                images, skipped = build_cache(paths, args, path)
        elif master:
            print(f"cache: reusing {path} ({len(images)} images)")
        if world > 1:
            dist.barrier()
        if not master:
            images, skipped = load_cache(path, key)
            if images is None:  # rank 0 could not write it: decode here too
                with torch.random.fork_rng(devices=[]):
                    images, skipped = build_cache(paths, args, path)
        if skipped and master:
            print(f"warning: skipped {skipped} unreadable image file(s)", file=sys.stderr)
        if device.type == "cuda" and images.numel() < torch.cuda.mem_get_info(device)[0] // 2:
            dataset = images.to(device)  # CelebA at 64x64 is ~2.5 GB: it fits in GPU memory
        else:
            dataset = images.pin_memory() if device.type == "cuda" else images.clone()
    else:
        # Create the dataset (the tutorial's transform)
        transform = transforms.Compose([
            transforms.Resize(args.image_size),
            transforms.CenterCrop(args.image_size),
            transforms.ToTensor(),
            transforms.Normalize((0.5,) * args.nc, (0.5,) * args.nc),
        ])
        dataset = ImageFiles(paths, transform, (args.nc, args.image_size, args.image_size))
    n = len(dataset)
    batches_per_epoch = num_batches(n, args.batch_size, world)
    if batches_per_epoch == 0:
        fail(f"{n} images are fewer than one --batch-size {args.batch_size}")
    print(f"dataset: {n} images in {args.dataroot}, {batches_per_epoch} batches of "
          f"{args.batch_size} per epoch")
    out = make_out_dir(args.out) if master else args.out

    # -- Networks, loss and optimizers -----------------------------------------------------
    # Create the generator and the discriminator, and apply weights_init
    netG, netD = build_models(args, device)
    print(netG)
    print(netD)
    modelG, modelD = netG, netD  # the plain modules: checkpoints, fixed-noise samples, export
    if args.channels_last:  # --channels-last: NHWC, the layout fast convolution kernels prefer
        netG, netD = netG.to(memory_format=torch.channels_last), netD.to(memory_format=torch.channels_last)
    # Handle multi-gpu if desired: the tutorial's nn.DataParallel is torchrun + DDP here
    if world > 1:
        if args.sync_bn:
            netG = nn.SyncBatchNorm.convert_sync_batchnorm(netG)
            netD = nn.SyncBatchNorm.convert_sync_batchnorm(netD)
        ids = [device.index] if device.type == "cuda" else None
        netG, netD = DDP(netG, device_ids=ids), DDP(netD, device_ids=ids)
    netD_eager = netD  # the gradient penalty's double backward cannot run compiled
    if args.compile:  # --compile: fused kernels after a slow first iteration or two
        netG, netD = torch.compile(netG), torch.compile(netD)
    # Initialize the loss function (BCELoss on logits, see Discriminator; --loss: see loss_D)
    criterion = nn.BCEWithLogitsLoss()
    # Create batch of latent vectors that we will use to visualize the progression of the generator
    fixed_noise = make_noise(64, args, device)
    # Establish convention for real and fake labels during training
    real_label = 1.
    fake_label = 0.
    # --label-smoothing: one-sided, only D's targets for real images (seed 003 tip 6)
    real_target = real_label - args.label_smoothing
    # Setup Adam optimizers for both G and D (--lr-d/--lr-g: separate rates, TTUR)
    fused = device.type == "cuda"  # one kernel per step; with fp16 no host sync in GradScaler.step
    betas = (args.beta1, args.beta2)
    optimizerD = optim.Adam(modelD.parameters(), lr=args.lr_d, betas=betas, fused=fused)
    optimizerG = optim.Adam(modelG.parameters(), lr=args.lr_g, betas=betas, fused=fused)
    # --amp: autocast for the forward passes; with fp16 a GradScaler per optimizer
    autocast = lambda: torch.autocast(device.type, dtype=torch.float16 if amp == "fp16" else torch.bfloat16,
                                      enabled=amp != "off")
    scalerD = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
    scalerG = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
    # The training noise has its own generator, saved in checkpoints, so resume is exact. Every
    # rank draws the whole global batch of noise (and takes its share): the same stream everywhere.
    noise_rng = torch.Generator(device).manual_seed(manualSeed)
    share = args.batch_size // world
    # D's outputs are logits: the printed D(x), D(G(z)) are the tutorial's probabilities; a
    # critic's (wgan-gp, hinge) are its raw scores
    score = lambda out: (torch.sigmoid(out.detach().float()) if args.loss == "bce" else out.detach().float()).mean()
    watch = FailureWatch(args)  # seed 003's failure signs, warned about once each
    # before the first iteration: with --d-updates N, G steps only every N-th iteration
    errG = D_G_z2 = gnorm_D = gnorm_G = torch.zeros((), device=device)
    real_stats = []  # --fid: the real images' feature statistics, computed once

    # Lists to keep track of progress
    img_list = []  # uint8 grids (smaller checkpoints than the tutorial's float grids)
    G_losses = []
    D_losses = []
    iters = 0
    start_epoch, start_batch = 0, 0
    if args.resume:
        ckpt = load_resume(args.resume, modelG, modelD, optimizerG, optimizerD, noise_rng, args)
        img_list, G_losses, D_losses = ckpt["img_list"], ckpt["G_losses"], ckpt["D_losses"]
        iters, start_epoch, start_batch = ckpt["iters"], ckpt["epoch"], ckpt["batch"]
        if "scalerG" in ckpt and amp == "fp16":
            scalerD.load_state_dict(ckpt["scalerD"])
            scalerG.load_state_dict(ckpt["scalerG"])
        print(f"resumed from {args.resume}: epoch {start_epoch}, batch {start_batch}, "
              f"iteration {iters}")
        if start_batch >= batches_per_epoch:  # e.g. a checkpoint of a run with more processes
            start_epoch, start_batch = start_epoch + 1, 0
        if start_epoch >= num_epochs:
            print(f"note: the checkpoint already finished {start_epoch} epoch(s); pass a larger "
                  f"--epochs to train more. Writing the results again.")
    if master:
        metrics = MetricsCSV(os.path.join(out, "metrics.csv"), append=bool(args.resume))
        progress_dir = os.path.join(out, "visualization", config_name(args))  # seed 003's ROOT_DIR
        if args.progress_every:
            os.makedirs(progress_dir, exist_ok=True)

    # Plot some training images (the first readable ones of the first epoch's order)
    peek = epoch_order(n, manualSeed, 0)[:256]
    if isinstance(dataset, torch.Tensor):
        real_batch = to_model_range(dataset[peek[:64].to(dataset.device)]).cpu()
    else:
        real_batch = [x for x, ok in map(dataset.__getitem__, peek.tolist()) if ok][:64]
        if not real_batch:
            fail(f"none of the first {len(peek)} image files in {args.dataroot} could be read; "
                 f"are they images? ({paths[0]}, ...)")
        real_batch = torch.stack(real_batch)
    if master:
        save_training_images(real_batch, os.path.join(out, "training_images.png"))

    def save_checkpoint(epoch, batch):
        if not master:  # only rank 0 writes; every rank can --resume from it
            return
        progress = {"epoch": epoch, "batch": batch, "iters": iters, "G_losses": G_losses,
                    "D_losses": D_losses, "img_list": img_list,
                    "scalerD": scalerD.state_dict(), "scalerG": scalerG.state_dict()}
        atomic_save(checkpoint_state(modelG, modelD, optimizerG, optimizerD, noise_rng, progress, args),
                    os.path.join(out, "checkpoint.pt"))

    def evaluate_fid(epoch):
        """--fid N: FID of N generated against N real images, printed and into metrics.csv."""
        count = min(args.fid, n)
        t0 = time.perf_counter()
        if not real_stats:  # the real images' statistics, once per run
            real_stats.extend(fid_stats(extractor, real_fid_batches(dataset, count, manualSeed), device))
        mu, sigma = fid_stats(extractor, fake_fid_batches(modelG, count, args, device), device)
        fid = frechet_distance(mu, sigma, *real_stats)
        print(f"FID: {fid:.2f} ({count} generated vs {count} real images, torch-fidelity's "
              f"InceptionV3, {time.perf_counter() - t0:.0f} s)", flush=True)
        metrics.write(epoch=epoch, iteration=iters, fid=round(fid, 3))
        return fid

    def sample_fixed():
        # The tutorial samples in train mode, which normalises with this batch's statistics and
        # updates BN's running stats; eval mode uses them as the exported generator does.
        modelG.eval()
        with torch.no_grad(), autocast():
            fake = modelG(fixed_noise).detach().float().cpu()
        modelG.train()
        img_list.append((image_grid(fake) * 255).round().to(torch.uint8))

    # Training Loop
    print("Starting Training Loop...")
    stopped = False
    with StopOnCtrlC() as ctrl_c:
        for epoch in range(start_epoch, num_epochs):
            order = epoch_order(n, manualSeed, epoch)
            stats = []  # per-iteration tensors; .item() happens only at log steps (no host syncs)
            t_log, seen = time.perf_counter(), 0
            first = start_batch if epoch == start_epoch else 0
            for i, real_cpu in real_batches(dataset, order, first, batches_per_epoch, args, device, rank, world):
                if args.channels_last:
                    real_cpu = real_cpu.contiguous(memory_format=torch.channels_last)
                if args.hflip:  # --hflip: the same draws on every rank, each takes its share
                    flip = torch.rand(args.batch_size, device=device, generator=noise_rng)
                    flip = flip[rank * share:rank * share + len(real_cpu)] < 0.5
                    real_cpu = torch.where(flip.view(-1, 1, 1, 1), real_cpu.flip(3), real_cpu)
                log_now = i % args.log_every == 0 or i == batches_per_epoch - 1
                ############################
                # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
                ###########################
                ## Train with all-real batch
                netD.zero_grad(set_to_none=True)
                b_size = real_cpu.size(0)
                # The tutorial's torch.full((b_size,), 1) makes an integer tensor on current
                # PyTorch, which BCELoss refuses: the labels are floats here.
                label = torch.full((b_size,), real_target, dtype=torch.float, device=device)
                # Forward pass real batch through D
                with autocast():
                    output = netD(real_cpu).view(-1)
                # Calculate loss on all-real batch (in fp32)
                errD_real = loss_D(output, label, criterion, args.loss, real=True)
                # Calculate gradients for D in backward pass
                scalerD.scale(errD_real).backward()
                D_x = score(output)

                ## Train with all-fake batch
                # Generate batch of latent vectors (every rank draws the global batch, takes its share)
                noise = make_noise(args.batch_size, args, device, noise_rng)
                noise = noise[rank * share:rank * share + b_size]
                # Generate fake image batch with G
                with autocast():
                    fake = netG(noise)
                label.fill_(fake_label)
                # Classify all fake batch with D
                with autocast():
                    output = netD(fake.detach()).view(-1)
                # Calculate D's loss on the all-fake batch
                errD_fake = loss_D(output, label, criterion, args.loss, real=False)
                # Calculate the gradients for this batch, accumulated (summed) with previous gradients
                scalerD.scale(errD_fake).backward()
                D_G_z1 = score(output)
                # Compute error of D as sum over the fake and the real batches
                errD = errD_real.detach() + errD_fake.detach()
                if args.loss == "wgan-gp":  # --loss wgan-gp: the gradient penalty joins D's loss
                    gp = gradient_penalty(netD_eager, real_cpu, fake.detach(), args.gp_weight, noise_rng)
                    scalerD.scale(gp).backward()
                    errD = errD + gp.detach()
                if log_now:  # seed 003 tip 7: gradient sizes (unscaled first under fp16)
                    scalerD.unscale_(optimizerD)
                    gnorm_D = grad_norm(modelD)
                # Update D
                scalerD.step(optimizerD)
                scalerD.update()

                ############################
                # (2) Update G network: maximize log(D(G(z)))
                ###########################
                # --d-updates N: G steps after every N-th D step, --g-updates M: M steps each
                if (i + 1) % args.d_updates == 0 or i == batches_per_epoch - 1:
                    for g_step in range(args.g_updates):
                        netG.zero_grad(set_to_none=True)
                        label.fill_(real_label)  # fake labels are real for generator cost
                        if g_step > 0:  # further G steps on new noise (seed 003's GEN_UPDATES)
                            noise = make_noise(args.batch_size, args, device, noise_rng)
                            with autocast():
                                fake = netG(noise[rank * share:rank * share + b_size])
                        # Since we just updated D, perform another forward pass of all-fake batch through D
                        with autocast():
                            output = netD(fake).view(-1)
                        # Calculate G's loss based on this output
                        errG = loss_G(output, label, criterion, args.loss)
                        # Calculate gradients for G
                        scalerG.scale(errG).backward()
                        D_G_z2 = score(output)
                        if log_now:
                            scalerG.unscale_(optimizerG)
                            gnorm_G = grad_norm(modelG)
                        # Update G
                        scalerG.step(optimizerG)
                        scalerG.update()
                    errG = errG.detach()

                # Save Losses for plotting later (as tensors: no host sync per iteration)
                stats.append(torch.stack([errD, errG, D_x, D_G_z1, D_G_z2]))
                seen += b_size * world
                last = epoch == num_epochs - 1 and i == batches_per_epoch - 1
                if world == 1:
                    stop = ctrl_c.requested or args.dry_run
                else:  # all ranks must stop at the same iteration: they agree at log steps
                    stop = args.dry_run or (log_now and any_rank(ctrl_c.requested, device))
                # Output training stats
                if log_now or stop:
                    rows = torch.stack(stats).tolist()  # the one host sync per log interval
                    stats.clear()
                    D_losses.extend(r[0] for r in rows)
                    G_losses.extend(r[1] for r in rows)
                    loss_d, loss_g, d_x, d_g_z1, d_g_z2 = rows[-1]
                    fake_std, real_std = (x.detach().float().std(0).mean().item() for x in (fake, real_cpu))
                    gnorm_d, gnorm_g = gnorm_D.item(), gnorm_G.item()
                    rate = seen / (time.perf_counter() - t_log)
                    left = (num_epochs - epoch - 1) * batches_per_epoch + batches_per_epoch - i - 1
                    if args.loss == "bce":
                        line = 'D(x): %.4f\tD(G(z)): %.4f / %.4f' % (d_x, d_g_z1, d_g_z2)
                    elif args.loss == "wgan-gp":  # E[D(x)] - E[D(G(z))]: the critic's estimate
                        line = 'W: %.4f' % (d_x - d_g_z1)  # of the Wasserstein distance
                    else:  # hinge: D's raw scores (no probabilities), signed
                        line = 'D(x): %+.3f\tD(G(z)): %+.3f / %+.3f' % (d_x, d_g_z1, d_g_z2)
                    print('[%d/%d][%d/%d]\tLoss_D: %.4f\tLoss_G: %.4f\t%s\t%.1f img/s\tETA %s'
                          % (epoch, num_epochs, i, batches_per_epoch, loss_d, loss_g, line,
                             rate, format_eta(left * args.batch_size / rate)), flush=True)
                    if master:
                        metrics.write(epoch=epoch, iteration=iters, loss_d=round(loss_d, 5),
                                      loss_g=round(loss_g, 5), d_x=round(d_x, 4),
                                      d_g_z1=round(d_g_z1, 4), d_g_z2=round(d_g_z2, 4),
                                      grad_norm_d=round(gnorm_d, 5), grad_norm_g=round(gnorm_g, 5),
                                      fake_std=round(fake_std, 4), images_per_sec=round(rate, 1), fid="")
                        for warning in watch.update([r[0] for r in rows], fake_std, real_std):
                            print(f"warning: {warning}", file=sys.stderr, flush=True)
                    t_log, seen = time.perf_counter(), 0

                # Check how the generator is doing by saving G's output on fixed_noise
                if master and ((iters % args.sample_every == 0) or last or (stop and not img_list)):
                    sample_fixed()
                if master and args.progress_every and iters % args.progress_every == 0:
                    save_progress_figure(modelG, modelD, args, iters, progress_dir, device)

                iters += 1
                if stop:
                    stopped = not args.dry_run
                    save_checkpoint(epoch, i + 1)
                    break
                if args.checkpoint_every and iters % args.checkpoint_every == 0:
                    save_checkpoint(epoch, i + 1)
            if iters == 0:
                fail(f"none of the {n} image files in {args.dataroot} could be read")
            if getattr(dataset, "skipped", 0) and master:
                print(f"warning: skipped {dataset.skipped} unreadable image file(s) so far",
                      file=sys.stderr)
            if stopped or args.dry_run:
                break
            start_batch = 0
            save_checkpoint(epoch + 1, 0)
            if extractor is not None and args.fid_every and (epoch + 1) % args.fid_every == 0 \
                    and epoch < num_epochs - 1:
                evaluate_fid(epoch)
    if stopped:
        if master:
            print(f"stopped; checkpoint saved. Continue with: --resume "
                  f"{os.path.join(out, 'checkpoint.pt')}", file=sys.stderr)
        return 130
    if not master:
        return 0

    # -- Results -----------------------------------------------------------------------------
    if not img_list:
        sample_fixed()
    save_loss_plot(os.path.join(out, "losses.png"), {"G": G_losses, "D": D_losses})
    save_progress_gif([g.float() / 255 for g in img_list], os.path.join(out, "progress.gif"))
    save_real_vs_fake(real_batch, img_list[-1].float() / 255, os.path.join(out, "real_vs_fake.png"))
    # A plain Generator with the trained weights: no DDP, SyncBN, compile or NHWC in the .pt2
    exportG = make_generator(args).to(device).eval()
    exportG.load_state_dict(modelG.state_dict())
    with torch.no_grad():
        save_image_grid(exportG(fixed_noise).float().cpu(), os.path.join(out, "fake_samples.png"))
    export_generator(exportG, (torch.randn(2, nz, 1, 1, device=device),), os.path.join(out, "generator.pt2"))
    if extractor is not None:
        evaluate_fid(num_epochs - 1)
    if args.show:
        plt.show()
    print(f"wrote {out}/: generator.pt2, checkpoint.pt, metrics.csv, training_images.png, "
          f"losses.png, progress.gif, real_vs_fake.png, fake_samples.png")
    if G_losses:
        print(f"final Loss_D {D_losses[-1]:.4f}, Loss_G {G_losses[-1]:.4f} (losses are no measure "
              f"of sample quality: look at fake_samples.png and real_vs_fake.png)")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
