"""DCGAN faces on CelebA: the official PyTorch DCGAN tutorial, complete, robust and resumable.

Follows seed 004 (../shared/seeds/004_dc7fe011e3c7e4d8.txt, "DCGAN tutorial", pytorch.org
beginner/dcgan_faces_tutorial): same inputs, same ImageFolder data, same weights_init, Generator,
Discriminator, fixed_noise, training loop and figures, with the tutorial's names.

    python dcgan_celeba.py --dataroot data/celeba --epochs 5       # the tutorial's run
    python dcgan_celeba.py --dataroot data/celeba --image-size 128   # any power of two, 32-256
    python dcgan_celeba.py --resume outputs/dcgan_celeba/checkpoint.pt --epochs 10
    python dcgan_celeba.py --generate outputs/dcgan_celeba/generator.pt2 --num-samples 64

Data: data/celeba/img_align_celeba/*.jpg (the tutorial's layout) or a flat folder of images.
Writes to --out: generator.pt2 (torch.export; input (N, nz, 1, 1) standard normal noise, output
(N, nc, S, S) in [-1, 1]), checkpoint.pt (every epoch, every --checkpoint-every iterations and
on Ctrl-C), metrics.csv, training_images.png, losses.png, progress.gif, real_vs_fake.png and
fake_samples.png (the last fixed-noise grid).
"""
import argparse
import math
import os
import signal
import sys
import threading
import time

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import torch.utils.data
import torchvision.datasets as dset
import torchvision.transforms as transforms
from PIL import Image

from common import (ArgumentParser, MetricsCSV, atomic_save, export_generator, fail, format_eta,
                    image_grid, load_checkpoint, load_generator, make_out_dir, pick_device,
                    positive_float, positive_int, rng_state, run, save_image_grid, save_images,
                    save_loss_plot, save_progress_gif, save_real_vs_fake, set_rng_state, set_seed,
                    use_agg_unless)

IMG_EXTENSIONS = dset.folder.IMG_EXTENSIONS
ARCH_KEYS = ("image_size", "nc", "nz", "ngf", "ndf")  # what a checkpoint must match to resume


# -- 1. Inputs: the tutorial's variables as flags, with its defaults -------------------------
def non_negative_int(text):
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def beta(text):
    """argparse type: an Adam beta in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def parse_args(argv=None):
    p = ArgumentParser(description="DCGAN faces on CelebA, the official PyTorch DCGAN tutorial "
                       "(seed 004), resumable, any image size from 32 to 256.")
    p.add_argument("--dataroot", default="data/celeba",
                   help="folder with img_align_celeba/*.jpg (ImageFolder layout) or a flat "
                   "folder of images")
    p.add_argument("--download", action="store_true",
                   help="try torchvision's CelebA download into --dataroot first")
    p.add_argument("--workers", type=non_negative_int, default=2, help="DataLoader processes")
    p.add_argument("--batch-size", type=positive_int, default=128, help="images per step")
    p.add_argument("--image-size", type=positive_int, default=64,
                   help="training image size: a power of two from 32 to 256 (G and D gain or lose "
                   "stride-2 blocks; 64 is exactly the tutorial's networks)")
    p.add_argument("--nc", type=positive_int, default=3, help="colour channels (3 for RGB)")
    p.add_argument("--nz", type=positive_int, default=100, help="size of the latent vector z")
    p.add_argument("--ngf", type=positive_int, default=64, help="generator feature-map depth")
    p.add_argument("--ndf", type=positive_int, default=64, help="discriminator feature-map depth")
    p.add_argument("--epochs", type=positive_int, default=5, help="num_epochs")
    p.add_argument("--lr", type=positive_float, default=0.0002, help="Adam learning rate (G and D)")
    p.add_argument("--beta1", type=beta, default=0.5, help="Adam beta1")
    p.add_argument("--ngpu", type=int, default=None,
                   help="the tutorial's ngpu (DataParallel) is gone: --device picks one GPU, torchrun runs several")
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
    return args


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
    resumed run sees exactly the same batches, whatever happened before."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 10007 + epoch))


def num_batches(n, batch_size):
    return math.ceil(n / batch_size)  # the tutorial keeps the last, smaller batch


def real_batches(dataset, order, start, args, device):
    """Yields (i, real_cpu) from batch `start` of this epoch's order; unreadable files are
    dropped from their batch and counted in dataset.skipped."""
    indices = order[start * args.batch_size:].tolist()
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, sampler=indices,
                                             num_workers=args.workers, worker_init_fn=ignore_sigint,
                                             pin_memory=device.type == "cuda")
    for i, (data, ok) in enumerate(dataloader, start):
        if not ok.all():
            dataset.skipped += int((~ok).sum())
            data = data[ok]
            if len(data) == 0:
                continue
        yield i, data.to(device, non_blocking=True)


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
    def __init__(self, nc=3, ndf=64, image_size=64):
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
                nn.BatchNorm2d(ndf * mult * 2),
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


def build_models(args, device):
    """Create netG and netD on the device and apply weights_init, as the tutorial does."""
    netG = Generator(args.nz, args.ngf, args.nc, args.image_size).to(device)
    netG.apply(weights_init)
    netD = Discriminator(args.nc, args.ndf, args.image_size).to(device)
    netD.apply(weights_init)
    return netG, netD


# -- 4. Training: the tutorial's loop, plus checkpoints, resume and progress lines -----------
class StopOnCtrlC:
    """First Ctrl-C: finish the current iteration, save a checkpoint, exit 130. Second: now."""

    def __init__(self):
        self.requested, self.old = False, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, self.handler)
        return self

    def handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: saving a checkpoint after this iteration (Ctrl-C again quits now)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)


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
        theirs = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in ckpt["arch"].items())
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


# -- 6. Generate: samples from a saved generator, without training ---------------------------
def quiet_load_generator(path):
    """common.load_generator, minus the traceback torch.export logs (as a warning) for a file
    that is not a .pt2 archive: a user error gets one line."""
    import logging
    import zipfile
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        fail(f"{path} is not an exported generator (not a .pt2 archive); pass the "
             f"generator.pt2 a training run wrote")
    logger = logging.getLogger("torch.export")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return load_generator(path)
    finally:
        logger.setLevel(level)


def generate(args, plt):
    netG = quiet_load_generator(args.generate)
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


def main(argv=None):
    args = parse_args(argv)
    plt = use_agg_unless(args.show)
    if args.generate:
        return generate(args, plt)

    # Set random seed for reproducibility
    manualSeed = args.seed
    print("Random Seed: ", manualSeed)
    set_seed(manualSeed)
    device = pick_device(args.device)
    print(f"device: {device}")
    print("arguments: " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                                   if v not in (None, False)))
    nz, num_epochs = args.nz, args.epochs

    # -- Data ------------------------------------------------------------------------------
    if args.download:
        download_celeba(args.dataroot)
    paths = find_images(args.dataroot)
    # Create the dataset (the tutorial's transform)
    transform = transforms.Compose([
        transforms.Resize(args.image_size),
        transforms.CenterCrop(args.image_size),
        transforms.ToTensor(),
        transforms.Normalize((0.5,) * args.nc, (0.5,) * args.nc),
    ])
    dataset = ImageFiles(paths, transform, (args.nc, args.image_size, args.image_size))
    n = len(dataset)
    batches_per_epoch = num_batches(n, args.batch_size)
    print(f"dataset: {n} images in {args.dataroot}, {batches_per_epoch} batches of "
          f"{args.batch_size} per epoch")
    out = make_out_dir(args.out)

    # -- Networks, loss and optimizers -----------------------------------------------------
    netG, netD = build_models(args, device)
    print(netG)
    print(netD)
    # Initialize the loss function (BCELoss on logits, see Discriminator)
    criterion = nn.BCEWithLogitsLoss()
    # Create batch of latent vectors that we will use to visualize the progression of the generator
    fixed_noise = torch.randn(64, nz, 1, 1, device=device)
    # Establish convention for real and fake labels during training
    real_label = 1.
    fake_label = 0.
    # Setup Adam optimizers for both G and D
    optimizerD = optim.Adam(netD.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    optimizerG = optim.Adam(netG.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    # The training noise has its own generator, saved in checkpoints, so resume is exact.
    noise_rng = torch.Generator(device).manual_seed(manualSeed)

    # Lists to keep track of progress
    img_list = []  # uint8 grids (smaller checkpoints than the tutorial's float grids)
    G_losses = []
    D_losses = []
    iters = 0
    start_epoch, start_batch = 0, 0
    if args.resume:
        ckpt = load_resume(args.resume, netG, netD, optimizerG, optimizerD, noise_rng, args)
        img_list, G_losses, D_losses = ckpt["img_list"], ckpt["G_losses"], ckpt["D_losses"]
        iters, start_epoch, start_batch = ckpt["iters"], ckpt["epoch"], ckpt["batch"]
        print(f"resumed from {args.resume}: epoch {start_epoch}, batch {start_batch}, "
              f"iteration {iters}")
        if start_epoch >= num_epochs:
            print(f"note: the checkpoint already finished {start_epoch} epoch(s); pass a larger "
                  f"--epochs to train more. Writing the results again.")
    metrics = MetricsCSV(os.path.join(out, "metrics.csv"), append=bool(args.resume))

    # Plot some training images (the first readable ones of the first epoch's order)
    real_batch = [x for x, ok in map(dataset.__getitem__, epoch_order(n, manualSeed, 0)[:256].tolist()) if ok][:64]
    if not real_batch:
        fail(f"none of the first {min(n, 256)} image files in {args.dataroot} could be read; "
             f"are they images? ({paths[0]}, ...)")
    real_batch = torch.stack(real_batch)
    save_training_images(real_batch, os.path.join(out, "training_images.png"))

    def save_checkpoint(epoch, batch):
        progress = {"epoch": epoch, "batch": batch, "iters": iters, "G_losses": G_losses,
                    "D_losses": D_losses, "img_list": img_list}
        atomic_save(checkpoint_state(netG, netD, optimizerG, optimizerD, noise_rng, progress, args),
                    os.path.join(out, "checkpoint.pt"))

    def sample_fixed():
        # The tutorial samples in train mode, which normalises with this batch's statistics and
        # updates BN's running stats; eval mode uses them as the exported generator does.
        netG.eval()
        with torch.no_grad():
            fake = netG(fixed_noise).detach().float().cpu()
        netG.train()
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
            for i, real_cpu in real_batches(dataset, order, first, args, device):
                ############################
                # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
                ###########################
                ## Train with all-real batch
                netD.zero_grad(set_to_none=True)
                b_size = real_cpu.size(0)
                # The tutorial's torch.full((b_size,), 1) makes an integer tensor on current
                # PyTorch, which BCELoss refuses: the labels are floats here.
                label = torch.full((b_size,), real_label, dtype=torch.float, device=device)
                # Forward pass real batch through D
                output = netD(real_cpu).view(-1)
                # Calculate loss on all-real batch
                errD_real = criterion(output.float(), label)
                # Calculate gradients for D in backward pass
                errD_real.backward()
                D_x = torch.sigmoid(output.detach().float()).mean()

                ## Train with all-fake batch
                # Generate batch of latent vectors
                noise = torch.randn(b_size, nz, 1, 1, device=device, generator=noise_rng)
                # Generate fake image batch with G
                fake = netG(noise)
                label.fill_(fake_label)
                # Classify all fake batch with D
                output = netD(fake.detach()).view(-1)
                # Calculate D's loss on the all-fake batch
                errD_fake = criterion(output.float(), label)
                # Calculate the gradients for this batch, accumulated (summed) with previous gradients
                errD_fake.backward()
                D_G_z1 = torch.sigmoid(output.detach().float()).mean()
                # Compute error of D as sum over the fake and the real batches
                errD = errD_real.detach() + errD_fake.detach()
                # Update D
                optimizerD.step()

                ############################
                # (2) Update G network: maximize log(D(G(z)))
                ###########################
                netG.zero_grad(set_to_none=True)
                label.fill_(real_label)  # fake labels are real for generator cost
                # Since we just updated D, perform another forward pass of all-fake batch through D
                output = netD(fake).view(-1)
                # Calculate G's loss based on this output
                errG = criterion(output.float(), label)
                # Calculate gradients for G
                errG.backward()
                D_G_z2 = torch.sigmoid(output.detach().float()).mean()
                # Update G
                optimizerG.step()

                # Save Losses for plotting later (as tensors: no host sync per iteration)
                stats.append(torch.stack([errD, errG.detach(), D_x, D_G_z1, D_G_z2]))
                seen += b_size
                last = epoch == num_epochs - 1 and i == batches_per_epoch - 1
                stop = ctrl_c.requested or args.dry_run
                # Output training stats
                if i % args.log_every == 0 or last or stop or i == batches_per_epoch - 1:
                    rows = torch.stack(stats).tolist()  # the one host sync per log interval
                    stats.clear()
                    D_losses.extend(r[0] for r in rows)
                    G_losses.extend(r[1] for r in rows)
                    loss_d, loss_g, d_x, d_g_z1, d_g_z2 = rows[-1]
                    rate = seen / (time.perf_counter() - t_log)
                    left = (num_epochs - epoch - 1) * batches_per_epoch + batches_per_epoch - i - 1
                    print('[%d/%d][%d/%d]\tLoss_D: %.4f\tLoss_G: %.4f\tD(x): %.4f\tD(G(z)): %.4f / %.4f'
                          '\t%.1f img/s\tETA %s'
                          % (epoch, num_epochs, i, batches_per_epoch, loss_d, loss_g, d_x,
                             d_g_z1, d_g_z2, rate, format_eta(left * args.batch_size / rate)),
                          flush=True)
                    metrics.write(epoch=epoch, iteration=iters, loss_d=round(loss_d, 5),
                                  loss_g=round(loss_g, 5), d_x=round(d_x, 4), d_g_z1=round(d_g_z1, 4),
                                  d_g_z2=round(d_g_z2, 4), images_per_sec=round(rate, 1))
                    t_log, seen = time.perf_counter(), 0

                # Check how the generator is doing by saving G's output on fixed_noise
                if (iters % args.sample_every == 0) or last or (stop and not img_list):
                    sample_fixed()

                iters += 1
                if stop:
                    stopped = ctrl_c.requested
                    save_checkpoint(epoch, i + 1)
                    break
                if args.checkpoint_every and iters % args.checkpoint_every == 0:
                    save_checkpoint(epoch, i + 1)
            if iters == 0:
                fail(f"none of the {n} image files in {args.dataroot} could be read")
            if dataset.skipped:
                print(f"warning: skipped {dataset.skipped} unreadable image file(s) so far",
                      file=sys.stderr)
            if stopped or args.dry_run:
                break
            start_batch = 0
            save_checkpoint(epoch + 1, 0)
    if stopped:
        print(f"stopped; checkpoint saved. Continue with: --resume {os.path.join(out, 'checkpoint.pt')}",
              file=sys.stderr)
        return 130

    # -- Results -----------------------------------------------------------------------------
    if not img_list:
        sample_fixed()
    save_loss_plot(os.path.join(out, "losses.png"), {"G": G_losses, "D": D_losses})
    save_progress_gif([g.float() / 255 for g in img_list], os.path.join(out, "progress.gif"))
    save_real_vs_fake(real_batch, img_list[-1].float() / 255, os.path.join(out, "real_vs_fake.png"))
    netG.eval()
    with torch.no_grad():
        save_image_grid(netG(fixed_noise).float().cpu(), os.path.join(out, "fake_samples.png"))
    export_generator(netG, (torch.randn(2, nz, 1, 1, device=device),), os.path.join(out, "generator.pt2"))
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
