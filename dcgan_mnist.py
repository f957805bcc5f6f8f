"""DCGAN on MNIST digits: the cookbook chapter "Exploring Generative Adversarial Networks" in its
order and under its names; then "How to build a DCGAN with PyTorch" (--arch dropout, --dataset
folder; towardsdatascience.com/how-to-build-a-dcgan-with-pytorch-31bfbf2ad96a); then appendices
A-G, each reached by one call. Usage and the files in --out: README.md. Copy it with common.py."""
import contextlib
import copy
import csv
import datetime
import functools
import hashlib
import io
import itertools
import math
import os
import signal
import sys
import threading
import time
from argparse import BooleanOptionalAction as on_off

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import torchvision
import torchvision.transforms as transforms
import torchvision.utils as vutils
from torch.utils.data import DataLoader, Subset
from torchsummary import summary
from torchvision.datasets.folder import IMG_EXTENSIONS, default_loader

from common import (ArgumentParser, UserError, as_flags, atomic_save, atomic_write, command_line,
                    fail, generate_out, ignore_signals, int_range, load_checkpoint, number,
                    parse, pick_device, pick_precision, positive_float, positive_int, prepare_out,
                    run, save_generator, seed_int, stop_on_ctrl_c, unit_interval)

SCRIPT = "dcgan_mnist"
ARCH_Z_DIM = {"cookbook": 100, "dropout": 16}  # the cookbook's z_dim; the PNG tutorial's 16
# --tutorial: the cookbook's settings (Adam's defaults, batch 128, labels 1 and 0, G, float32)
TUTORIAL_SETTINGS = dict(batch_size=128, lr=1e-3, beta1=0.9, real_label=1.0, ema=0.0,
                         decode_once=False, amp="off", channels_last=False)
MAY_CHANGE = ("epochs", "workers", "device", "log_every", "sample_every", "eval", "time_budget",
              "eval_samples", "download")  # what --resume may change; the rest is the run's
FIELDS = ["epoch", "iteration", "g_loss", "d_loss", "d_x", "d_g_z", "images_per_sec",
          "classes_covered", "class_ratio", "confidence", "frechet", "label_accuracy"]
OUT = "outputs/dcgan_mnist"


def parse_args(argv):
    """(parser, args, checkpoint): the flags, with the defaults that depend on other flags."""
    p = ArgumentParser(description="DCGAN on MNIST-like digits: two tutorials' recipes.")
    add = p.add_argument_group("the tutorial's inputs").add_argument
    add("--tutorial", action="store_true", help="the cookbook's settings: " +
        as_flags(TUTORIAL_SETTINGS))
    add("--epochs", type=int_range(1, 10000), default=50, help="passes over the data")
    # Better than the cookbook (10 epochs x 5,000 real digits, 4 seeds; benchmarks/README.md):
    # batch 64 (twice the updates per epoch), beta1 0.5, real label 0.9 and the --ema average.
    add("--batch-size", type=int_range(2, 4096), default=64, help="images per step (cookbook: 128)")
    add("--lr", type=positive_float, default=1e-3, help="the generator's learning rate (Adam's)")
    add("--lr-d", type=positive_float, help="the discriminator's learning rate (default: --lr)")
    add("--beta1", type=unit_interval, default=0.5, help="Adam's beta1 (cookbook: 0.9)")
    add("--real-label", type=number(lambda v: 0 < v <= 1, "in (0, 1]"), default=0.9,
        help="the target for real images; below 1: one-sided label smoothing (cookbook: 1)")
    add("--z-dim", type=int_range(1, 1024), help="noise size (default: 100; --arch dropout: 16)")
    add("--g-updates", type=int_range(1, 5), default=1,
        help="generator steps per discriminator step (the cookbook suggests trying 2)")
    add("--arch", choices=sorted(ARCH_Z_DIM), default="cookbook",
        help="the networks: the cookbook's, or the PNG tutorial's (dropout in D)")
    add("--batchnorm", action=on_off, default=True, help="batch norm in --arch dropout's G")
    add = p.add_argument_group("data and speed").add_argument
    add("--dataset", choices=["mnist", "fashion-mnist", "folder"], default="mnist",
        help="folder: images in one subfolder per class (as mnist_png/training), or directly "
        "in --dataroot for an unconditional run")
    add("--dataroot", default="data", help="where the data are (--download writes MNIST there)")
    add("--download", action=on_off, default=True,
        help="download MNIST/Fashion-MNIST into --dataroot when missing")
    add("--subset", type=positive_int, help="train on a fixed random subset of N images")
    add("--decode-once", action=on_off, default=True,
        help="decode the images once and keep them on the device, not every epoch")
    add("--workers", type=int_range(0, 64), default=2, help="processes that decode images")
    add("--amp", choices=["auto", "off", "bf16", "fp16"], default="auto",
        help="mixed precision; auto: bf16 where it is fast (CPUs with AVX512-BF16, CUDA GPUs "
        "from compute capability 8.0), fp16 with a GradScaler on older CUDA GPUs, else off")
    add("--channels-last", action=on_off, default=True,
        help="the generator's weights in NHWC order (faster)")
    add("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
        help="auto: cuda, then mps, then cpu")
    add = p.add_argument_group("additions").add_argument
    add("--conditional", action="store_true", help="the networks are given each image's class")
    add("--ema", type=unit_interval, default=0.995,
        help="samples and saved generator from a moving average of the generator's weights "
        "with this decay (0: the generator itself)")
    add = p.add_argument_group("evaluation").add_argument
    add("--eval", action=on_off, help="judge the samples each epoch with a small classifier "
        "(default: on; off with --dry-run)")
    add("--eval-samples", type=int_range(100, 20000), default=5000,
        help="how many samples are judged each epoch")
    add("--generate", metavar="PATH", help="no training: draw samples from a run's "
        "generator_weights.pt")
    add("--num-samples", type=int_range(1, 10000), default=64, help="how many, for --generate")
    add("--label", type=int_range(0, 9999), help="the class drawn, for --generate of a "
        "--conditional run")
    add("--interpolate", type=int_range(2, 100), metavar="K", help="with --generate: rows of K "
        "images along a spherical path between two random noise points (interpolation.png, .pt)")
    add = p.add_argument_group("run control").add_argument
    add("--seed", type=seed_int, default=999,
        help="random seed, printed at the start (PyTorch's DCGAN tutorial's: 999)")
    add("--out", help=f"folder for everything written (default: {OUT}; for --generate: a new "
        "folder beside the weights file)")
    add("--overwrite", action="store_true", help="replace the run already in --out")
    add("--resume", metavar="PATH", help="continue the run of this checkpoint.pt")
    add("--time-budget", type=positive_float, metavar="SECONDS",
        help="the whole run (figures, export, checkpoint included) ends within this time")
    add("--log-every", type=positive_int, default=50, help="a progress line every N steps")
    add("--sample-every", type=positive_int, default=500, help="a sample grid every N steps")
    add("--dry-run", action="store_true", help="one step, then every file")
    add("--show", action="store_true", help="also show the figures in windows")
    args, checkpoint = parse(p, argv, TUTORIAL_SETTINGS, SCRIPT, MAY_CHANGE, paths=("dataroot",))
    if (args.label is not None or args.interpolate) and not args.generate or \
            args.conditional and args.arch != "cookbook":
        p.error("--label and --interpolate go with --generate, --conditional with --arch cookbook")
    args.z_dim = args.z_dim or ARCH_Z_DIM[args.arch]
    args.eval = not args.dry_run if args.eval is None else args.eval
    args.out = args.out or (None if args.generate else OUT)
    args.dataroot = os.path.abspath(args.dataroot)  # saved absolute: --resume from anywhere
    if not args.show:
        plt.switch_backend("Agg")  # figures as files only
    return p, args, checkpoint


# == The cookbook, "Creating a DCGAN generator" ==============================================
def load_data(args):
    """Its transform and device, and the data: MNIST, or the PNG tutorial's folder below."""
    transform = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize((0.5, ), (0.5, )),
    ])
    device = torch.device(pick_device(args.device))  # the cookbook's cuda or cpu, also mps
    dataset = png_folder(args) if args.dataset == "folder" else torchvision_dataset(args, transform)
    return dataset, device  # png_folder: the PNG tutorial's, below; torchvision_dataset: A


class Generator_model(nn.Module):
    def __init__(self, z_dim, n_classes=0):
        super().__init__()
        self.fc = nn.Linear(z_dim, 256 * 7 * 7)
        self.gen = nn.Sequential(
            nn.ConvTranspose2d(256, 128, 4, 2, 1),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.01),
            nn.ConvTranspose2d(128, 64, 3, 1, 1),
            nn.BatchNorm2d(64),
            nn.LeakyReLU(0.01),
            nn.ConvTranspose2d(64, 1, 4, 2, 1),
            nn.Tanh()
        )
        self.n_classes = n_classes  # Addition (--conditional): a learned vector per class added
        if n_classes:  # to fc's output, the same as one-hot labels concatenated to the noise
            self.label_emb = nn.Embedding(n_classes, 256 * 7 * 7)
            nn.init.zeros_(self.label_emb.weight)  # it starts as the unconditional model

    def forward(self, input, labels=None):
        x = self.fc(input)
        if self.n_classes:
            x = x + self.label_emb(labels)
        x = x.view(-1, 256, 7, 7)
        return self.gen(x)


# == The cookbook, "Creating a DCGAN discriminator" ==========================================
class Discriminator_model(nn.Module):
    def __init__(self, n_classes=0):
        super().__init__()
        self.disc = nn.Sequential(
            nn.Conv2d(1, 32, 3, 2, 1),
            nn.LeakyReLU(0.01),
            nn.Conv2d(32, 64, 3, 2, 1),
            nn.BatchNorm2d(64),
            nn.LeakyReLU(0.01),
            nn.Conv2d(64, 128, 3, 2, 1),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.01)
        )
        self.fc = nn.Linear(2048, 1)
        self.n_classes = n_classes  # Addition (--conditional): a projection discriminator
        if n_classes:  # (Miyato & Koyama 2018) adds <a learned vector of the class, features>
            self.label_emb = nn.Embedding(n_classes, 2048)
            nn.init.zeros_(self.label_emb.weight)

    def forward(self, input, labels=None):
        x = self.disc(input)
        x = x.view(-1, 2048)
        logit = self.fc(x)  # Better: a logit for BCEWithLogitsLoss (the cookbook: F.sigmoid)
        if self.n_classes:
            logit = logit + (self.label_emb(labels) * x).sum(1, keepdim=True)
        return logit


# == The cookbook, "Training the DCGAN model" ================================================
def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


def main(argv=None):
    """The cookbook's steps in its order; each addition is set up once, by one call. (Appendix
    G wraps it: a SIGTERM stops any phase as Ctrl-C does, exit 130.)"""
    started = time.monotonic()  # --time-budget counts from here, decoding included
    parser, args, checkpoint = parse_args(argv)
    if args.generate:
        return generate(args)  # appendix F
    prepare_out(args.out, not args.resume, args.overwrite, hold=False, data=args.dataroot)
    torch.manual_seed(args.seed)
    dataset, device = load_data(args)
    precision = pick_precision(device, args.amp)  # B: "bf16", "fp16" (with a GradScaler), "off"
    idle = dict(download=args.dataset == "folder", num_samples=True,
                batchnorm=args.arch == "cookbook", eval_samples=not args.eval)  # no effect here
    print("arguments: " + command_line(parser, args, [k for k, v in idle.items() if v]))
    loader_gen = torch.Generator().manual_seed(args.seed)  # the shuffles; --resume restores it
    train_loader, images, labels = training_batches(args, dataset, loader_gen, device)  # A
    z_dim, n_classes = args.z_dim, len(dataset.classes)
    n_cond = n_classes if args.conditional else 0
    if args.arch == "cookbook":
        generator = Generator_model(z_dim, n_cond).to(device)
        discriminator = Discriminator_model(n_cond).to(device)
        generator.apply(weights_init)
        discriminator.apply(weights_init)
    else:  # the PNG-folder tutorial's networks, with PyTorch's own initialisation
        generator = Generator(z_dim, args.batchnorm).to(device)
        discriminator = Discriminator().to(device)
    if not n_cond and device.type != "mps":  # torchsummary feeds float CPU/CUDA inputs only
        summary(generator, (z_dim, ), device=device.type)
        summary(discriminator, (1, 28, 28), device=device.type)
    criterion = nn.BCEWithLogitsLoss()  # the cookbook: nn.BCELoss() after D's sigmoid
    fixed_noise = torch.randn(64, z_dim, device=device)
    fused = device.type == "cuda"  # one kernel per step; fp16: no host sync for the GradScaler
    doptimizer = optim.Adam(discriminator.parameters(), lr=args.lr_d or args.lr,
                            betas=(args.beta1, 0.999), fused=fused)
    goptimizer = optim.Adam(generator.parameters(), lr=args.lr, betas=(args.beta1, 0.999),
                            fused=fused)
    real_label, fake_label = args.real_label, 0
    image_list = []
    g_losses = []
    d_losses = []
    iterations = 0
    num_epochs = args.epochs

    # Additions, each set up once here and about one line in the loop
    if args.channels_last:  # G's transposed convolutions ~15% faster on a CPU
        generator.to(memory_format=torch.channels_last)
    ctx, scaler = mixed_precision(device, precision)  # B: autocast (--amp), GradScaler (fp16)
    ema = ema_of(generator, goptimizer, args.ema) if args.ema else None  # B: G's moving average
    sampler = functools.partial(sampling_copy, copy.deepcopy(generator), ema or generator,
                                z_dim, n_cond)  # B: ... with batch norm of its own
    fixed_cond = [(torch.arange(64) % n_cond).to(device)] if n_cond else []  # C: class/column
    loss_iterations, best, start_epoch, start_batch = [], [], 0, 0  # best: E's [epoch, figure]
    parts = {"generator": generator, "discriminator": discriminator, "ema": ema,
             "goptimizer": goptimizer, "doptimizer": doptimizer, "scaler": scaler, "best": best,
             "g_losses": g_losses, "d_losses": d_losses, "loss_iterations": loss_iterations}
    clf, reference = quality_classifier(args, images, labels, n_classes, device)  # E
    if checkpoint:  # D: --resume, every part as it was saved
        start_epoch, start_batch, iterations = restore(checkpoint, parts, loader_gen, device)
    out, out_lock = args.out, prepare_out(args.out, not args.resume, args.overwrite)
    metrics = csv.DictWriter(open(os.path.join(out, "metrics.csv"), "a" if args.resume else "w",
                                  newline="", buffering=1), FIELDS)
    if not args.resume:
        metrics.writeheader()
    ckpt_path, total = os.path.join(out, "checkpoint.pt"), num_epochs * len(train_loader)
    clock = Clock(started, args.time_budget)  # G: progress, ETA and --time-budget

    start, stopping = time.time(), False
    with stop_on_ctrl_c() as stop:
        for epoch in range(start_epoch, num_epochs):
            if args.arch == "cookbook":
                print(f'Epoch : | {epoch+1:03} / {num_epochs:03} |')
            else:  # the PNG tutorial's header
                print(f"Epoch {epoch+1}; Elapsed time = {int(time.time() - start)}s")
            epoch_rng, stopping = loader_gen.get_state(), False
            i = start_batch - 1  # (the last batch done, if the epoch has none left)
            for i, data in itertools.islice(enumerate(train_loader), start_batch, None):
                discriminator.zero_grad()
                real_images = data[0].to(device)
                size = real_images.size(0)
                cond = [data[1].to(device)] if n_cond else []  # C: the batch's classes
                label = torch.full((size,), real_label, device=device)
                with ctx:  # B: autocast (--amp), else nothing
                    d_output = discriminator(real_images, *cond).view(-1)
                    derror_real = criterion(d_output, label)
                scaler.scale(derror_real).backward()  # B: scaled under fp16, else as is
                d_x = d_output.detach()  # D(x)'s logits, for metrics.csv
                noise = torch.randn(size, z_dim, device=device)
                with ctx:
                    fake_images = generator(noise, *cond)
                    label.fill_(0)
                    d_output = discriminator(fake_images.detach(), *cond).view(-1)
                    derror_fake = criterion(d_output, label)
                scaler.scale(derror_fake).backward()
                derror_total = derror_real + derror_fake
                scaler.step(doptimizer)  # doptimizer.step(), skipped on fp16 overflow
                for g_step in range(args.g_updates):  # --g-updates: the cookbook suggests 2
                    if g_step:  # a second or third G step draws fresh fakes
                        with ctx:
                            fake_images = generator(torch.randn_like(noise), *cond)
                    generator.zero_grad()
                    label.fill_(1)
                    with ctx:
                        d_output = discriminator(fake_images, *cond).view(-1)
                        gerror = criterion(d_output, label)
                    scaler.scale(gerror).backward()
                    scaler.step(goptimizer)  # goptimizer.step()
                    scaler.update()  # once both stepped
                stopping = clock.tick(size) or stop.requested or args.dry_run
                last = stopping or (epoch == num_epochs-1) and (i == len(train_loader)-1)
                if i % args.log_every == 0 or last:
                    rate, eta = clock.report(size, total - iterations - 1)
                    print(f'| {i:03} / {len(train_loader):03} | G Loss: {gerror.item():.3f} '
                          f'| D Loss: {derror_total.item():.3f} | {rate:.0f} img/s | ETA {eta} |')
                    g_losses.append(gerror.item())
                    d_losses.append(derror_total.item())
                    loss_iterations.append(iterations)
                    metrics.writerow({"epoch": epoch + 1, "iteration": iterations, "g_loss":
                        g_losses[-1], "d_loss": d_losses[-1], "images_per_sec": round(rate), "d_x":
                        f"{d_x.float().sigmoid().mean():.4f}", "d_g_z":
                        f"{d_output.detach().float().sigmoid().mean():.4f}"})
                    finite(g_losses[-1], d_losses[-1], args)  # G: NaN/inf stops the run
                if (iterations % args.sample_every == 0) or last:
                    with torch.no_grad():
                        fake_images = sampler()(fixed_noise, *fixed_cond).detach().cpu()
                        image_list.append(vutils.make_grid(fake_images, padding=2, normalize=True,
                                                           nrow=n_cond or 8))
                    save_png(image_list[-1], f"{out}/fake_iter_{iterations:06d}.png")
                iterations += 1
                if stopping:
                    break
            start_batch, finished = 0, i + 1 == len(train_loader)
            with clock.epoch_end():  # its cost is kept free at the end of --time-budget
                if clf is not None and finished:  # E: this epoch's quality; the best G kept
                    quality = evaluate(sampler(), clf, reference, args, n_classes, device)
                    metrics.writerow({"epoch": epoch + 1, "iteration": iterations - 1, **quality})
                    keep_best(best, epoch, quality["frechet"], args, n_cond, sampler())
                if i >= 0:  # G: a NaN/inf since the last progress line: the last finite is kept
                    finite(gerror.item(), derror_total.item(), args)
                save_checkpoint(ckpt_path, args, parts, device, epoch=epoch + finished,
                                iterations=iterations, batch=0 if finished else i + 1,
                                loader_rng=loader_gen.get_state() if finished else epoch_rng)
            if stopping:
                break

        results(args, g_losses, d_losses, loss_iterations, image_list, out)  # also after a stop
        if not stop.requested:
            write_extras(args, out, n_cond, sampler(), best)  # appendix F
            copying(args, out, sampler(), images, n_cond)  # H: nearest.png, the copying ratio
    return finish(args, ckpt_path, stop.requested, stopping and iterations < total)  # G


# == The cookbook, "Visualizing DCGAN results" ===============================================
def results(args, g_losses, d_losses, loss_iterations, image_list, out):
    """The loss plot and the last fixed-noise grid, as files (and windows with --show)."""
    marker = "o" if len(g_losses) <= 50 else None  # a short run's few points, visible
    plt.figure(figsize=(10,5))
    plt.title("Generator and Discriminator Loss During Training")
    plt.plot(loss_iterations, g_losses, label="Generator", marker=marker)
    plt.plot(loss_iterations, d_losses, label="Discriminator", marker=marker)
    plt.xlabel("iterations")
    plt.ylabel("Loss")
    plt.legend()
    save_png(plt.gcf(), os.path.join(out, "losses.png"))
    for image in image_list[-1:]:  # the cookbook shows each grid; the last is the result
        plt.figure(figsize=(8, 8))
        plt.axis("off")
        plt.imshow(np.transpose(image.numpy(), (1, 2, 0)))
        save_png(plt.gcf(), os.path.join(out, "fake_samples.png"), bbox_inches="tight")
    if args.show:
        plt.show()


# == "How to build a DCGAN with PyTorch": its networks and its data ==========================
class Generator(nn.Module):
    def __init__(self, latent_dim=16, batchnorm=True):
        super().__init__()
        self.latent_dim = latent_dim
        self.batchnorm = batchnorm
        self._init_modules()

    def _init_modules(self):
        self.linear1 = nn.Linear(self.latent_dim, 256 * 7 * 7, bias=False)
        self.bn1d1 = nn.BatchNorm1d(256 * 7 * 7) if self.batchnorm else None
        self.leaky_relu = nn.LeakyReLU()
        self.conv1 = nn.Conv2d(256, 128, 5, 1, 2, bias=False)
        self.bn2d1 = nn.BatchNorm2d(128) if self.batchnorm else None
        self.conv2 = nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False)
        self.bn2d2 = nn.BatchNorm2d(64) if self.batchnorm else None
        self.conv3 = nn.ConvTranspose2d(64, 1, 4, 2, 1, bias=False)
        self.tanh = nn.Tanh()

    def forward(self, input_tensor):
        intermediate = self.linear1(input_tensor)
        if self.batchnorm:
            intermediate = self.bn1d1(intermediate)
        intermediate = self.leaky_relu(intermediate)
        intermediate = intermediate.view((-1, 256, 7, 7))
        intermediate = self.conv1(intermediate)
        if self.batchnorm:
            intermediate = self.bn2d1(intermediate)
        intermediate = self.leaky_relu(intermediate)
        intermediate = self.conv2(intermediate)
        if self.batchnorm:
            intermediate = self.bn2d2(intermediate)
        intermediate = self.leaky_relu(intermediate)
        intermediate = self.conv3(intermediate)
        return self.tanh(intermediate)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self._init_modules()

    def _init_modules(self):
        self.conv1 = nn.Conv2d(1, 64, 5, 2, 2)
        self.leaky_relu = nn.LeakyReLU()
        self.dropout_2d = nn.Dropout2d(0.3)
        self.conv2 = nn.Conv2d(64, 128, 5, 2, 2)
        self.linear1 = nn.Linear(128 * 7 * 7, 1)

    def forward(self, input_tensor):
        intermediate = self.dropout_2d(self.leaky_relu(self.conv1(input_tensor)))
        intermediate = self.dropout_2d(self.leaky_relu(self.conv2(intermediate)))
        intermediate = intermediate.view((-1, 128 * 7 * 7))
        return self.linear1(intermediate)  # the tutorial: then nn.Sigmoid()


def png_folder(args):
    """Its transform and ImageFolder: one subfolder per class, as mnist_png/training/0/...
    (or, for an unconditional run, the images directly in --dataroot)."""
    transform = transforms.Compose([
        transforms.Grayscale(num_output_channels=1),
        transforms.Resize(28), transforms.CenterCrop(28),  # Addition: any size, as 28x28
        transforms.ToTensor(),
        transforms.Normalize((0.5,), (0.5,))
    ])
    try:
        dataset = SafeImageFolder(root=args.dataroot, transform=transform)  # appendix A
    except (FileNotFoundError, NotADirectoryError) as e:
        fail(f"--dataroot {args.dataroot} holds no images: pass a folder of images, or of class "
             f"subfolders with images, as mnist_png/training/0/*.png ({str(e).split('. ')[0]})")
    if args.conditional and len(dataset.classes) < 2:
        fail(f"--conditional needs two or more class subfolders in {args.dataroot}")
    return dataset


# == Appendix A: the images decoded once; MNIST; folders scanned safely ======================
class SafeImageFolder(torchvision.datasets.ImageFolder):
    """torchvision's ImageFolder, but: a flat folder of images is one class; only regular files
    are read (a FIFO would block), each once (by its real path), and no directory link is
    followed (a link to a parent folder loops); files that do not decode are counted and left
    out (the tutorial's DataLoader would stop at the first)."""
    def find_classes(self, directory):
        classes = sorted(e.name for e in os.scandir(directory) if e.is_dir(follow_symlinks=False))
        return (classes or ["."]), {c: k for k, c in enumerate(classes or ["."])}

    def make_dataset(self, directory, class_to_idx, extensions=None, is_valid_file=None,
                     allow_empty=False):
        seen, found, bad = set(), [], []
        for name, k in class_to_idx.items():
            top = os.path.join(directory, name)
            for root, dirs, files in os.walk(top) if name != "." else [(top, [], os.listdir(top))]:
                dirs.sort()  # os.walk: no directory links followed
                for path in (os.path.join(root, f) for f in sorted(files)):
                    real = os.path.realpath(path)
                    if not path.lower().endswith(IMG_EXTENSIONS) or real in seen:
                        continue
                    seen.add(real)
                    with contextlib.suppress(Exception):  # not a file, truncated, corrupt
                        if os.path.isfile(real) and default_loader(real) is not None:
                            found.append((path, k))
                            continue
                    bad.append(path)
        if bad:
            print(f"warning: skipped {len(bad)} unreadable file(s), e.g. {bad[0]}",
                  file=sys.stderr)
        if not found:
            raise FileNotFoundError(f"Found no readable image in {directory}. ")
        return found


def training_batches(args, dataset, generator, device):
    """(train_loader, images, labels): every image through its dataset's transform once (for
    the batches, and --eval), then batches of those; --no-decode-once: the tutorials' DataLoader."""
    decode = DataLoader(dataset, 500, num_workers=args.workers, worker_init_fn=ignore_signals)
    images, labels = map(torch.cat, zip(*decode)) if args.decode_once or args.eval else [None] * 2
    keep = kept(len(dataset), args)
    drop_last = len(keep) % args.batch_size == 1  # batch norm needs 2 images in a batch
    print(f"data: {len(keep)} images of {len(dataset.classes)} class(es) from {args.dataroot}")
    if len(keep) < 2:
        fail(f"{len(keep)} image: training needs at least 2 (a batch for batch norm); pass "
             f"a --dataroot with more images" + (" or a larger --subset" if args.subset else ""))
    if not args.decode_once:
        return DataLoader(Subset(dataset, keep.tolist()), batch_size=args.batch_size,
                          shuffle=True, num_workers=args.workers, generator=generator,
                          drop_last=drop_last, worker_init_fn=ignore_signals), images, labels
    return DeviceBatches(images[keep].to(device), labels[keep].to(device), args.batch_size,
                         drop_last, generator), images, labels


def kept(n, args):
    """The indices trained on: all, or --subset's random choice (the same for every --seed)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))[:args.subset].sort()[0]


class DeviceBatches:
    """Batches of images kept on the device: each epoch one permutation (drawn on the CPU by
    `generator`, moved once), each batch one index_select: no DataLoader, no host copy."""
    def __init__(self, images, labels, batch_size, drop_last, generator):
        self.images, self.labels, self.generator = images, labels, generator
        self.batch_size, self.drop_last = batch_size, drop_last

    def __len__(self):
        return (len(self.images) - self.drop_last) // self.batch_size + (
            not self.drop_last and len(self.images) % self.batch_size > 0)

    def __iter__(self):
        order = torch.randperm(len(self.images), generator=self.generator)
        order = order[:len(self) * self.batch_size].to(self.images.device)
        for index in order.split(self.batch_size):
            yield self.images.index_select(0, index), self.labels.index_select(0, index)


def torchvision_dataset(args, transform):
    """MNIST/FashionMNIST in --dataroot (or downloaded); a failed download leaves no folders."""
    cls = getattr(torchvision.datasets, {"mnist": "MNIST"}.get(args.dataset, "FashionMNIST"))
    raw = os.path.join(args.dataroot, cls.__name__, "raw")
    made = [d for d in (raw, os.path.dirname(raw), args.dataroot) if not os.path.isdir(d)]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return cls(args.dataroot, train=True, transform=transform, download=args.download)
    except BaseException as e:  # offline, files that are not MNIST's, or Ctrl-C/SIGTERM
        with contextlib.suppress(OSError):  # the empty folders of a failed download
            list(map(os.rmdir, made))  # (innermost first)
        if not isinstance(e, Exception):
            raise
        why = "could not be downloaded (offline?)" if args.download else "is missing or broken"
        fail(f"{cls.__name__} {why} ({type(e).__name__}); put " + ", ".join(
            os.path.basename(u)[:-3] for u, _ in cls.resources) + f" (gunzipped) in {raw}/, "
            "or train on a folder of images: --dataset folder --dataroot DIR")


# == Appendix B: samples from G's moving average (batch norm of their own); mixed precision ==
def ema_of(generator, goptimizer, decay):
    """A copy of G that follows G's weights after each G step (a hook on goptimizer), bias-
    corrected as Adam's moments: weight (1 - decay) / (1 - decay ** steps). The step count is a
    Python int and the weight a Python float: no host sync (a tensor weight would be one)."""
    ema = copy.deepcopy(generator).requires_grad_(False)
    averaged, current, ema.steps = list(ema.parameters()), list(generator.parameters()), 0

    def update(*_):
        ema.steps += 1
        torch._foreach_lerp_(averaged, current, (1 - decay) / (1 - decay ** ema.steps))
    goptimizer.register_step_post_hook(update)
    return ema


def mixed_precision(device, precision):
    """--amp: (autocast context, GradScaler); the scaler acts under fp16 only. Prints the device
    line, naming the precision that runs."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    print(f"device: {device}, " + {"bf16": "bf16 autocast", "off": "float32",
                                   "fp16": "fp16 autocast with a GradScaler"}[precision])
    ctx = torch.autocast(device.type, dtype) if dtype else contextlib.nullcontext()
    return ctx, torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def sampling_copy(copy_g, source, z_dim, n_cond, size=512):
    """copy_g with source's weights in eval mode, its batch-norm statistics those of one pass."""
    copy_g.load_state_dict(source.state_dict())
    for m in copy_g.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 1.0  # the running statistics become the pass's own
    g, device = torch.Generator().manual_seed(0), next(copy_g.parameters()).device
    labels = torch.randint(n_cond, (size,), generator=g) if n_cond else None
    draw(copy_g.train(), torch.randn(size, z_dim, generator=g).to(device), labels)  # the pass
    return copy_g.eval()


@torch.no_grad()
def draw(model, noise, labels=None):
    """Samples, float32 on the CPU, 1,000 at a time (labels: the classes asked for, or None)."""
    parts = [noise] if labels is None else [noise, labels.to(noise.device)]
    return torch.cat([model(*b).float().cpu() for b in zip(*[x.split(1000) for x in parts])])


# == Appendix C, conditional labels: in the networks above, and `cond` in the loop ===========
# == Appendix D: checkpoint.pt, and --resume that ends where one run would ===================
def save_checkpoint(path, args, parts, device, **position):
    """Every part of the run, the random streams and where the next step starts, atomically.
    Of the device's random stream only this run's device (resumable with fewer GPUs)."""
    state = {k: v.state_dict() if hasattr(v, "state_dict") else v for k, v in parts.items()}
    rng = {"cuda": lambda: torch.cuda.get_rng_state(device), "mps": torch.mps.get_rng_state}
    atomic_save({"script": SCRIPT, "args": vars(args), **position, **state,
                 "ema_steps": getattr(parts["ema"], "steps", 0), "rng": torch.get_rng_state(),
                 "device_rng": [device.type, rng.get(device.type, lambda: None)()]}, path)


def restore(checkpoint, parts, loader_gen, device):
    """The saved parts into the live objects; returns (epoch, batch, iterations)."""
    try:
        for name, part in parts.items():
            if isinstance(part, list):
                part[:] = checkpoint[name]
            elif part is not None and checkpoint[name] != {}:  # ({}: a GradScaler that was off)
                part.load_state_dict(checkpoint[name])
        if parts["ema"] is not None:
            parts["ema"].steps = checkpoint["ema_steps"]
        loader_gen.set_state(checkpoint["loader_rng"])
        torch.set_rng_state(checkpoint["rng"])
        kind, state = checkpoint["device_rng"]
        if kind == device.type == "cuda":
            torch.cuda.set_rng_state(state, device)
        elif kind == device.type == "mps":
            torch.mps.set_rng_state(state)
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:
        fail(f"the checkpoint does not fit this model ({type(e).__name__}); start a new run")
    print(f"resumed: epoch {checkpoint['epoch'] + 1}, batch {checkpoint['batch']}")
    return checkpoint["epoch"], checkpoint["batch"], checkpoint["iterations"]


# == Appendix E: sample quality, judged by a small classifier (--eval) ========================
def quality_classifier(args, images, labels, n_classes, device):
    """(classifier, reference): a small CNN (FID's Inception, in small) trained on one half of
    the real images and cached; the other half is the reference. Its own random stream."""
    if not args.eval or n_classes < 2:
        if args.eval:
            print("note: no quality figures: they need labels (class subfolders)")
        return None, None
    key = hashlib.sha256(images[::7].numpy().tobytes() + labels.numpy().tobytes() +
                         f"v4 {args.eval_samples}".encode()).hexdigest()[:16]
    path = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                        "gan-examples", f"dcgan_mnist_classifier_{key}.pt")
    fit, held_out = stratified_halves(labels)
    if min(len(fit), len(held_out)) < 10 or min(torch.bincount(labels[h], minlength=n_classes)
                                                 .min() for h in (fit, held_out)) < 2:
        print(f"note: no quality figures: they need at least 20 images, 4 of each class "
              f"(here {len(labels)} of {n_classes} classes)")
        return None, None
    n, reference, done = min(args.eval_samples, len(fit), len(held_out)), None, "trained"
    with torch.random.fork_rng(devices=[]):  # the CPU's stream only: the device's is the run's
        torch.default_generator.manual_seed(0)  # (torch.manual_seed would reseed CUDA too)
        clf = nn.Sequential(nn.Sequential(
            nn.Conv2d(1, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 14 x 14
            nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),  # 64 x 7 x 7
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU()), nn.Linear(128, n_classes))
        with contextlib.suppress(Exception):  # none yet, or unreadable: trained below
            saved = torch.load(path, map_location="cpu", weights_only=True)
            clf.load_state_dict(saved.pop("state_dict"))
            reference, done = saved, f"reused {path}"
        if reference is None:
            opt = optim.Adam(clf.to(device).parameters(), lr=2e-3)
            for step in range(min(300, max(50, len(fit) // 64))):
                idx = fit[torch.randint(len(fit), (64,))]
                loss = nn.functional.cross_entropy(clf(images[idx].to(device)),
                                                   labels[idx].to(device))
                opt.zero_grad()
                loss.backward()
                opt.step()
            # the held-out half's figures, and real vs real: n of one half against n of the other
            reference = figures(clf, images[held_out[:n]], device, want=labels[held_out[:n]])
            reference["frechet"] = figures(clf, images[fit[:n]], device, reference)["frechet"]
            with contextlib.suppress(OSError, UserError):  # else "trained", not cached
                os.makedirs(os.path.dirname(path), exist_ok=True)
                atomic_save({"state_dict": clf.state_dict(), **reference}, path)
                done = f"trained; cached in {path}"
    print(f"quality classifier: {done}\nquality of {args.eval_samples} samples, each epoch: "
          f"classes = how many of the {n_classes} it sees drawn;\n  ratio = most / least frequent "
          f"class (1: even); confidence = its mean top probability;\n  Frechet = FID's distance of "
          f"their features to real images' (lower: closer)" + (";\n  label accuracy = how often "
          "it sees the class asked for" if args.conditional else "") +
          f"\nreal images: " + quality_text({k: v for k, v in reference.items() if
                                            k != "label_accuracy" or args.conditional}, n_classes))
    return clf.to(device).eval(), reference


def stratified_halves(labels, seed=0):
    """A seeded stratified split: two halves, every prefix of each with every class's share."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    order = order[labels[order].argsort(stable=True)]  # by class, shuffled within each
    counts = torch.bincount(labels)
    rank = torch.arange(len(order)) - (counts.cumsum(0) - counts).repeat_interleave(counts)
    share = rank.double() / counts.repeat_interleave(counts)  # how far into its class
    return [order[rank % 2 == h][share[rank % 2 == h].argsort(stable=True)] for h in (0, 1)]


@torch.no_grad()
def figures(clf, images, device, reference=None, want=None):
    """Classes drawn, ratio, confidence, label accuracy; Frechet distance to the reference (FID's
    formula, tr sqrtm by S1 S2's eigenvalues), or with none the features' mean and covariance."""
    features = torch.cat([clf[0](x.to(device).float()) for x in images.split(1000)])
    probs, features = torch.softmax(clf[1](features), 1).cpu(), features.double().cpu()
    counts = torch.bincount(probs.argmax(1), minlength=probs.shape[1])
    q = {"classes_covered": int((counts > 0).sum()), "class_ratio": round(
        counts.max().item() / counts.min().item(), 3) if counts.min() else "",
        "confidence": round(probs.max(1).values.mean().item(), 4)}
    if want is not None:
        q["label_accuracy"] = round((probs.argmax(1) == want).double().mean().item(), 4)
    if reference is None:
        return {**q, "mu": features.mean(0), "sigma": torch.cov(features.T)}
    s, mu, sigma = torch.cov(features.T), reference["mu"], reference["sigma"]
    root = torch.linalg.eigvals(s @ sigma).real.clamp(min=0).sqrt().sum()
    d = ((features.mean(0) - mu) ** 2).sum() + s.trace() + sigma.trace() - 2 * root
    return {**q, "frechet": round(max(0.0, d.item()), 3)}


def evaluate(g, clf, reference, args, n_classes, device):
    """The figures of --eval-samples images from a fixed noise (its own generator)."""
    z = torch.randn(args.eval_samples, args.z_dim, generator=torch.Generator().manual_seed(1))
    want = torch.arange(args.eval_samples) % n_classes if args.conditional else None
    quality = figures(clf, draw(g, z.to(device), want), device, reference, want)
    real = reference["frechet"]
    verdict = "close to the real images" if quality["frechet"] <= 2 * real + 2 else \
        "getting closer to the real images" if quality["frechet"] <= 10 * real + 10 else \
        "far from the real images yet"
    print(f"quality: {quality_text(quality, n_classes)} vs {real:.2f} for real images: {verdict}")
    return quality


def quality_text(q, n_classes):
    ratio = f"{q['class_ratio']:.2f}" if q["class_ratio"] != "" else "undefined (not all drawn)"
    return (f"classes {q['classes_covered']}/{n_classes}, ratio {ratio}, confidence "
            f"{q['confidence']:.3f}, Frechet {q['frechet']:.2f}" +
            (f", label accuracy {q['label_accuracy']:.3f}" if "label_accuracy" in q else ""))


# == Appendix F: the saved generator, and --generate =========================================
def export(args, folder, n_cond, sampler):
    """generator.pt2 and generator_weights.pt in folder: a CPU copy of the sampler's weights."""
    settings = dict(arch=args.arch, z_dim=args.z_dim, batchnorm=args.batchnorm, n_classes=n_cond)
    example = (torch.randn(2, args.z_dim),) + ((torch.tensor([0, 1]),) if n_cond else ())
    cpu = copy.deepcopy(sampler).to("cpu", memory_format=torch.contiguous_format)
    save_generator(cpu, example, folder, SCRIPT, settings)


def write_extras(args, out, n_cond, sampler, best):
    """The run's generator files, and the last lines: where the files are, the best epoch."""
    export(args, out, n_cond, sampler)
    print(f"wrote generator.pt2, generator_weights.pt, checkpoint.pt, metrics.csv, *.png to {out}")
    if best:
        print(f"best: epoch {best[0]}, Frechet {best[1]:.2f} ({os.path.join(out, 'best')})")


def keep_best(best, epoch, frechet, args, n_cond, sampler):
    """OUT/best/: the generator files of the epoch with the lowest Frechet figure so far."""
    if best and frechet >= best[1]:
        return
    best[:] = [epoch + 1, frechet]
    os.makedirs(os.path.join(args.out, "best"), exist_ok=True)
    export(args, os.path.join(args.out, "best"), n_cond, sampler)
    print(f"best so far: epoch {epoch + 1}, kept in {os.path.join(args.out, 'best')}")


def generate(args):
    """Samples from a run's generator_weights.pt: nothing is trained, nothing replaced."""
    if args.generate.endswith(".pt2"):  # the exported program is for other projects
        fail(f"{args.generate} is the exported program for other projects; --generate reads "
             f"the generator_weights.pt beside it")
    saved = load_checkpoint(args.generate, SCRIPT)
    try:  # the settings of a generator_weights.pt, then its weights (the sampling copy's)
        arch, z_dim, n_classes = (saved["settings"][k] for k in ("arch", "z_dim", "n_classes"))
        with torch.device("meta"):  # no memory used: absurd sizes in a tampered file build nothing
            generator = Generator_model(z_dim, n_classes) if arch == "cookbook" else \
                Generator(z_dim, saved["settings"]["batchnorm"]) if n_classes == 0 else None
        want = generator.state_dict()  # each tensor as the network has it: dense, float32 ...
        state = {k: v.to(want[k].dtype) for k, v in saved["state_dict"].items() if
                 k in want and v.layout == torch.strided and not v.is_meta and
                 v.is_floating_point() == want[k].is_floating_point()}
        generator.load_state_dict(state, assign=True)  # shapes checked (and every key), then used
    except Exception:
        hint = " (a checkpoint.pt is for --resume)" if "generator" in saved else ""
        fail(f"{args.generate} does not hold a generator dcgan_mnist.py can rebuild; pass the "
             f"generator_weights.pt of a run{hint}")
    if args.label is not None and not args.label < n_classes:
        fail(f"--label needs a conditional generator with that class; {args.generate} has "
             f"{n_classes or 'no'} classes")
    n, per_row = args.num_samples, n_classes if n_classes and args.label is None else 8
    labels = torch.arange(n) % per_row if args.label is None else torch.full((n,), args.label)
    out, name = generate_out(args.out, args.generate), "generated"
    torch.manual_seed(args.seed)
    noise = torch.randn(n, z_dim)
    if args.interpolate:  # rows of K points on great circles between two random noise points
        (a, b), per_row = torch.randn(2, max(1, n // args.interpolate), 1, z_dim), args.interpolate
        t, omega = torch.linspace(0, 1, per_row).view(1, -1, 1), torch.acos(
            (nn.functional.normalize(a, dim=2) * nn.functional.normalize(b, dim=2)).sum(2, True))
        noise = ((torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega))
        noise, n, name = noise.flatten(0, 1), noise.shape[0] * per_row, "interpolation"
        labels = torch.full((n,), args.label) if args.label is not None else \
            torch.arange(n) // per_row % max(n_classes, 1)  # a class per row
    with prepare_out(out, new_run=False):  # held while it writes
        path = next(p for p in (os.path.join(out, name + (f"-{k}" if k > 1 else "")) for k in
                                itertools.count(1))  # never over an earlier file
                    if not any(os.path.exists(p + e) for e in (".png", ".pt")))
        samples = draw(generator.eval(), noise, labels if n_classes else None)
        save_png(vutils.make_grid(samples, nrow=per_row, normalize=True, value_range=(-1, 1)),
                 path + ".png")
        if args.interpolate:
            atomic_save(samples, path + ".pt")
    print(f"wrote {n} samples to {path}.png" + (" and .pt" if args.interpolate else ""))
    return 0


# == Appendix H: is it copying? nearest.png and the copying ratio ============================
@torch.no_grad()
def copying(args, out, sampler, images, n_cond, size=2000, n=500):
    """nearest.png: 8 samples, each beside its 3 nearest training images (in pixels); and the
    copying ratio of Meehan et al. (AISTATS 2020): the median distance of n samples to their
    nearest training image over that to their nearest unseen real image, in sets of the same
    size. About 1: no closer to the images it trained on than to new ones; below 1: copying.
    Unseen: the images --subset left out, else the MNIST test split (never trained on)."""
    if images is None:
        return print("note: no copying ratio: it needs the decoded images (--decode-once)")
    unseen = torch.ones(len(images), dtype=torch.bool)
    unseen[kept(len(unseen), args)] = False
    held = images[unseen]
    if args.dataset != "folder" and len(held) < 10:
        cls = getattr(torchvision.datasets, {"mnist": "MNIST"}.get(args.dataset, "FashionMNIST"))
        with contextlib.suppress(Exception):  # ToTensor and Normalize((0.5,), (0.5,)) in one
            held = cls(args.dataroot, train=False).data.unsqueeze(1).float() / 127.5 - 1
    if len(held) < 10:
        return print("note: no copying ratio: it needs images the run did not train on (pass a "
                     "--subset smaller than the folder)")
    g = torch.Generator().manual_seed(2)
    train = images[~unseen]
    size = min(size, len(held), len(train))
    train, held = (x[torch.randperm(len(x), generator=g)[:size]].flatten(1) for x in (train, held))
    z = torch.randn(n, args.z_dim, generator=g).to(next(sampler.parameters()).device)
    samples = draw(sampler, z, torch.arange(n) % n_cond if n_cond else None).flatten(1)
    to_train = torch.cdist(samples, train)
    ratio = to_train.min(1)[0].median() / torch.cdist(samples, held).min(1)[0].median()
    nearest = to_train[:8].topk(3, largest=False).indices
    grid = torch.cat([torch.cat([samples[k:k + 1], train[nearest[k]]]) for k in range(8)])
    save_png(vutils.make_grid(grid.view(-1, 1, 28, 28), nrow=4, normalize=True,
                              value_range=(-1, 1)), os.path.join(out, "nearest.png"))
    print(f"copying ratio {ratio:.2f} (distance to the nearest of {size} training images over "
          f"that to the nearest of {size} unseen ones; about 1: not copying, below 1: copying); "
          "nearest.png: samples beside their nearest training images")


# == Appendix G: signals, progress and --time-budget, a diverged run, how to continue =========
def sigterm_as_ctrl_c(main):
    """main, with SIGTERM (a timeout, docker, Slurm) acting as Ctrl-C where the loop's own
    handler is not on (scanning, decoding, downloading): exit 130, never a half-written file."""
    @functools.wraps(main)
    def wrapped(argv=None):
        if threading.current_thread() is not threading.main_thread():
            return main(argv)
        old = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            return main(argv)
        finally:
            signal.signal(signal.SIGTERM, old)
    return wrapped


main = sigterm_as_ctrl_c(main)


class Clock:
    """Progress and --time-budget: each report's rate from its own iterations, the ETA the
    sooner of the last epoch's end and the budget's; training stops early enough to leave the
    measured epoch-end work (checkpoint, quality figures), the figures and the export in it."""
    def __init__(self, started, budget):
        self.deadline = started + (budget or math.inf)
        self.last = self.ticked = time.monotonic()
        self.images, self.step, self.reserve = 0, 0.0, 1.0 + 0.02 * (budget or 0)
        self.end_cost = 0.0

    def tick(self, size):
        """After each iteration: True when the next one would leave too little of the budget."""
        now = time.monotonic()
        self.step, self.ticked, self.images = now - self.ticked, now, self.images + size
        return now + self.step + self.end_cost + self.reserve > self.deadline

    def report(self, size, remaining):
        """(images/s since the last report, ETA)."""
        now = time.monotonic()
        rate, self.last, self.images = self.images / max(now - self.last, 1e-9), now, 0
        eta = min(remaining * size / max(rate, 1e-9), self.deadline - now)
        return rate, datetime.timedelta(seconds=round(max(eta, 0)))

    @contextlib.contextmanager
    def epoch_end(self):
        """Times the epoch's end; its time counts in neither rate nor budget reserve twice."""
        began = time.monotonic()
        yield
        spent = time.monotonic() - began
        self.end_cost, self.last, self.ticked = max(self.end_cost, spent), \
            self.last + spent, self.ticked + spent


def finite(g_loss, d_loss, args):
    """A NaN or infinite loss stops the run with one error line (the last checkpoint stays)."""
    for name, value, flag in (("generator", g_loss, "--lr"), ("discriminator", d_loss, "--lr-d")):
        if not math.isfinite(value):
            fail(f"the {name}'s loss became {value}: training diverged; start a new run with a "
                 f"lower {flag} (now {getattr(args, flag[2:].replace('-', '_')) or args.lr:g})")


def finish(args, ckpt_path, interrupted, stopped):
    """How to continue after a stop (Ctrl-C/SIGTERM: exit 130; --time-budget, --dry-run: 0)."""
    if interrupted or stopped:
        why = "interrupted" if interrupted else "dry run" if args.dry_run else "time budget spent"
        print(f"{why}: saved {ckpt_path}; continue with: python {SCRIPT}.py --resume "
              f"{ckpt_path}", file=sys.stderr if interrupted else sys.stdout)
    if interrupted:
        raise KeyboardInterrupt
    return 0


def save_png(image, path, **kwargs):
    """An image tensor or a matplotlib figure as a PNG file, atomically."""
    if isinstance(image, torch.Tensor):
        return atomic_write(path, lambda f: vutils.save_image(image, f, format="png"))
    return atomic_write(path, lambda f: image.savefig(f, format="png", **kwargs))


if __name__ == "__main__":
    sys.exit(run(main))
