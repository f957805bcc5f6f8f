"""DCGAN on MNIST digits: the cookbook chapter "Exploring Generative Adversarial Networks" in its
order and under its names; then "How to build a DCGAN with PyTorch" (--arch dropout, --dataset
folder; towardsdatascience.com/how-to-build-a-dcgan-with-pytorch-31bfbf2ad96a); then appendices
A-F, each reached by one call. Usage and the files in --out: README.md. Copy it with common.py."""
import contextlib
import copy
import csv
import datetime
import functools
import hashlib
import io
import itertools
import os
import sys
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
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Subset, TensorDataset
from torchsummary import summary
from torchvision.datasets.folder import IMG_EXTENSIONS, ImageFolder, default_loader

from common import (ArgumentParser, UserError, as_flags, atomic_save, command_line, fail,
                    ignore_signals, int_range, load_checkpoint, number, parse, pick_device,
                    positive_float, positive_int, prepare_out, run, save_generator, seed_int,
                    stop_on_ctrl_c, unit_interval)

SCRIPT = "dcgan_mnist"
ARCH_Z_DIM = {"cookbook": 100, "dropout": 16}  # the cookbook's z_dim; the PNG tutorial's 16
# --tutorial: the cookbook's settings (Adam's defaults, batch 128, labels 1 and 0, G, float32)
TUTORIAL_SETTINGS = dict(batch_size=128, lr=1e-3, beta1=0.9, real_label=1.0, ema=0.0,
                         decode_once=False, amp=False, channels_last=False)
MAY_CHANGE = ("epochs", "workers", "device", "log_every", "sample_every", "eval",
              "eval_samples", "download")  # what --resume may change; the rest is the run's
FIELDS = ["epoch", "iteration", "g_loss", "d_loss", "d_x", "d_g_z", "images_per_sec",
          "classes_covered", "class_ratio", "confidence", "frechet", "label_accuracy"]


def parse_args(argv):
    """(parser, args, checkpoint): the flags, with the defaults that depend on other flags."""
    p = ArgumentParser(description="DCGAN on MNIST-like digits: two tutorials' recipes.")
    add = p.add_argument_group("the tutorial's inputs").add_argument
    add("--tutorial", action="store_true", help="the cookbook's: " + as_flags(TUTORIAL_SETTINGS))
    add("--epochs", type=int_range(1, 10000), default=50, help="num_epochs")
    # Better than the cookbook (10 epochs x 5,000 real digits, 4 seeds; benchmarks/README.md):
    # batch 64 (twice the updates per epoch), beta1 0.5, real label 0.9 and the --ema average.
    add("--batch-size", type=int_range(2, 4096), default=64, help="(cookbook: 128)")
    add("--lr", type=positive_float, default=1e-3, help="goptimizer's (cookbook's)")
    add("--lr-d", type=positive_float, help="doptimizer's (default: --lr)")
    add("--beta1", type=unit_interval, default=0.5, help="Adam's (cookbook: 0.9)")
    add("--real-label", type=number(lambda v: 0 < v <= 1, "in (0, 1]"), default=0.9,
        help="real_label; below 1: one-sided label smoothing (cookbook: 1)")
    add("--z-dim", type=int_range(1, 1024), help="z_dim (default: 100; dropout: 16)")
    add("--g-updates", type=int_range(1, 5), default=1, help="G steps per D step (There's more)")
    add("--arch", choices=sorted(ARCH_Z_DIM), default="cookbook", help="dropout: PNG tutorial's")
    add("--batchnorm", action=on_off, default=True, help="--arch dropout's switch in G")
    add = p.add_argument_group("data and speed").add_argument
    add("--dataset", choices=["mnist", "fashion-mnist", "folder"], default="mnist",
        help="folder: one subfolder per class, as mnist_png/training")
    add("--dataroot", default="data", help="where the data are (read only)")
    add("--download", action=on_off, default=True, help="download MNIST/Fashion-MNIST there")
    add("--subset", type=positive_int, help="train on a fixed random subset")
    add("--decode-once", action=on_off, default=True, help="decode once, not every epoch")
    add("--workers", type=int_range(0, 64), default=2, help="num_workers")
    add("--amp", action=on_off, default=True, help="bf16 autocast where the GPU or CPU has bf16")
    add("--channels-last", action=on_off, default=True, help="G's weights in NHWC (faster)")
    add = p.add_argument_group("additions").add_argument
    add("--conditional", action="store_true", help="G and D are given the class")
    add("--ema", type=unit_interval, default=0.995, help="samples from G's average (0: G)")
    add("--eval", action=on_off, help="judge the samples every epoch (default: with labels)")
    add("--eval-samples", type=int_range(100, 20000), default=5000)
    add("--log-every", type=positive_int, default=50, help="stats line every N")
    add("--sample-every", type=positive_int, default=500, help="grid every N")
    add = p.add_argument_group("run control").add_argument
    add("--seed", type=seed_int, default=999)
    add("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto", help="auto: cuda/cpu")
    add("--out", default="outputs/dcgan_mnist", help="folder for everything written")
    add("--overwrite", action="store_true", help="replace the run already in --out")
    add("--resume", metavar="PATH", help="continue the run of this checkpoint.pt")
    add("--dry-run", action="store_true", help="one iteration, then every file")
    add("--show", action="store_true", help="also show the figures in windows")
    add("--generate", metavar="PATH", help="no training: samples of a generator_weights.pt")
    add("--num-samples", type=int_range(1, 10000), default=64, help="for --generate")
    add("--label", type=int_range(0, 9999), help="for --generate: the class drawn")
    args, checkpoint = parse(p, argv, TUTORIAL_SETTINGS, SCRIPT, MAY_CHANGE)
    if args.label is not None and not args.generate or args.conditional and args.arch != "cookbook":
        p.error("--label goes with --generate, --conditional with --arch cookbook")
    args.z_dim = args.z_dim or ARCH_Z_DIM[args.arch]
    args.eval = not args.dry_run if args.eval is None else args.eval
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
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = device if args.device == "auto" else pick_device(args.device)  # --device, if here
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
    """The cookbook's steps in its order; each addition is set up once, by one call."""
    parser, args, checkpoint = parse_args(argv)
    if args.generate:
        return generate(args)  # appendix F
    prepare_out(args.out, new_run=not args.resume, overwrite=args.overwrite, hold=False)
    torch.manual_seed(args.seed)
    dataset, device = load_data(args)
    amp = args.amp and (torch.cuda.is_bf16_supported() if device.type == "cuda" else
                        device.type == "cpu" and torch.cpu._is_avx512_bf16_supported())
    idle = dict(download=args.dataset == "folder", amp=args.amp and not amp, num_samples=True,
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
        summary(generator, (z_dim, ))
        summary(discriminator, (1, 28, 28))
    criterion = nn.BCEWithLogitsLoss()  # the cookbook: nn.BCELoss() after D's sigmoid
    fixed_noise = torch.randn(64, z_dim, device=device)
    doptimizer = optim.Adam(discriminator.parameters(), lr=args.lr_d or args.lr,
                            betas=(args.beta1, 0.999))
    goptimizer = optim.Adam(generator.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    real_label, fake_label = args.real_label, 0
    image_list = []
    g_losses = []
    d_losses = []
    iterations = 0
    num_epochs = args.epochs

    # Additions, each set up once here and about one line in the loop
    if args.channels_last:  # G's transposed convolutions ~15% faster on a CPU
        generator.to(memory_format=torch.channels_last)
    ctx = torch.autocast(device.type, torch.bfloat16) if amp else contextlib.nullcontext()
    print(f"device: {device}, {'bf16 autocast' if amp else 'float32'}")
    ema = ema_of(generator, goptimizer, args.ema) if args.ema else None  # B: G's moving average
    sampler = functools.partial(sampling_copy, copy.deepcopy(generator), ema.module if ema else
                                generator, z_dim, n_cond)  # B: ... with batch norm of its own
    fixed_cond = [(torch.arange(64) % n_cond).to(device)] if n_cond else []  # C: class/column
    loss_iterations, start_epoch, start_batch = [], 0, 0
    parts = {"generator": generator, "discriminator": discriminator, "ema": ema,
             "goptimizer": goptimizer, "doptimizer": doptimizer, "g_losses": g_losses,
             "d_losses": d_losses, "loss_iterations": loss_iterations}
    clf, reference = quality_classifier(args, images, labels, n_classes, device)  # E
    if checkpoint:  # D: --resume, every part as it was saved
        start_epoch, start_batch, iterations = restore(checkpoint, parts, loader_gen, device)
    out, out_lock = args.out, prepare_out(args.out, not args.resume, args.overwrite)
    metrics = csv.DictWriter(open(os.path.join(out, "metrics.csv"), "a" if args.resume else "w",
                                  newline="", buffering=1), FIELDS)
    if not args.resume:
        metrics.writeheader()
    ckpt_path, total = os.path.join(out, "checkpoint.pt"), num_epochs * len(train_loader)

    start = time.time()
    with stop_on_ctrl_c() as stop:
        for epoch in range(start_epoch, num_epochs):
            print(f"Epoch {epoch+1}; Elapsed time = {int(time.time() - start)}s")  # PNG tutorial
            print(f'Epoch : | {epoch+1:03} / {num_epochs:03} |')
            epoch_rng, t0, seen = loader_gen.get_state(), time.perf_counter(), 0
            i = start_batch - 1  # (the last batch done, if the epoch has none left)
            for i, data in itertools.islice(enumerate(train_loader), start_batch, None):
                discriminator.zero_grad()
                real_images = data[0].to(device)
                size = real_images.size(0)
                cond = [data[1].to(device)] if n_cond else []  # C: the batch's classes
                label = torch.full((size,), real_label, device=device)
                with ctx:  # B: bf16 autocast (--amp), else nothing
                    d_output = discriminator(real_images, *cond).view(-1)
                    derror_real = criterion(d_output, label)
                derror_real.backward()
                d_x = d_output.detach()  # D(x)'s logits, for metrics.csv
                noise = torch.randn(size, z_dim, device=device)
                with ctx:
                    fake_images = generator(noise, *cond)
                    label.fill_(0)
                    d_output = discriminator(fake_images.detach(), *cond).view(-1)
                    derror_fake = criterion(d_output, label)
                derror_fake.backward()
                derror_total = derror_real + derror_fake
                doptimizer.step()
                for g_step in range(args.g_updates):  # --g-updates: "There's more"
                    if g_step:  # a second or third G step draws fresh fakes
                        with ctx:
                            fake_images = generator(torch.randn_like(noise), *cond)
                    generator.zero_grad()
                    label.fill_(1)
                    with ctx:
                        d_output = discriminator(fake_images, *cond).view(-1)
                        gerror = criterion(d_output, label)
                    gerror.backward()
                    goptimizer.step()
                seen += size
                last = (epoch == num_epochs-1) and (i == len(train_loader)-1) or args.dry_run
                if i % args.log_every == 0 or last:
                    rate = seen / (time.perf_counter() - t0)
                    eta = datetime.timedelta(seconds=round((total - iterations - 1) * size / rate))
                    print(f'| {i:03} / {len(train_loader):03} | G Loss: {gerror.item():.3f} '
                          f'| D Loss: {derror_total.item():.3f} | {rate:.0f} img/s | ETA {eta} |')
                    g_losses.append(gerror.item())
                    d_losses.append(derror_total.item())
                    loss_iterations.append(iterations)
                    metrics.writerow({"epoch": epoch + 1, "iteration": iterations, "g_loss":
                        g_losses[-1], "d_loss": d_losses[-1], "images_per_sec": round(rate), "d_x":
                        f"{d_x.float().sigmoid().mean():.4f}", "d_g_z":
                        f"{d_output.detach().float().sigmoid().mean():.4f}"})
                if (iterations % args.sample_every == 0) or last:
                    with torch.no_grad():
                        fake_images = sampler()(fixed_noise, *fixed_cond).detach().cpu()
                        image_list.append(vutils.make_grid(fake_images, padding=2, normalize=True,
                                                           nrow=n_cond or 8))
                    vutils.save_image(image_list[-1], f"{out}/fake_iter_{iterations:06d}.png")
                iterations += 1
                if stop.requested or args.dry_run:
                    break
            start_batch, finished = 0, i + 1 == len(train_loader)
            if clf is not None and finished:  # E: the quality of this epoch's samples
                metrics.writerow({"epoch": epoch + 1, "iteration": iterations - 1,
                                  **evaluate(sampler(), clf, reference, args, n_classes, device)})
            save_checkpoint(ckpt_path, args, parts, epoch=epoch + finished, iterations=iterations,
                            batch=0 if finished else i + 1,  # D: where --resume goes on
                            loader_rng=loader_gen.get_state() if finished else epoch_rng)
            if stop.requested:
                print(f"saved {ckpt_path}; continue with --resume {ckpt_path}", file=sys.stderr)
                raise KeyboardInterrupt
            if args.dry_run:
                break

    results(args, g_losses, d_losses, loss_iterations, image_list, out)
    write_extras(args, out, n_cond, sampler())  # appendix F
    del out_lock  # the end of the run: --out is free again
    return 0


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
    plt.savefig(os.path.join(out, "losses.png"))
    for image in image_list[-1:]:  # the cookbook shows each grid; the last is the result
        plt.figure(figsize=(8, 8))
        plt.axis("off")
        plt.imshow(np.transpose(image.numpy(), (1, 2, 0)))
        plt.savefig(os.path.join(out, "fake_samples.png"), bbox_inches="tight")
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
    """Its transform and ImageFolder: one subfolder per class, as mnist_png/training/0/..."""
    transform = transforms.Compose([
        transforms.Grayscale(num_output_channels=1),
        transforms.Resize(28), transforms.CenterCrop(28),  # Addition: any size, as 28x28
        transforms.ToTensor(),
        transforms.Normalize((0.5,), (0.5,))
    ])
    bad = []  # Addition: files that do not decode are counted and left out when scanned
    def readable(path):  # ImageFolder's is_valid_file
        with contextlib.suppress(Exception):  # truncated, corrupt or not an image at all
            return path.lower().endswith(IMG_EXTENSIONS) and default_loader(path) is not None
        bad.append(path)
    try:
        dataset = ImageFolder(root=args.dataroot, transform=transform, is_valid_file=readable)
    except (FileNotFoundError, NotADirectoryError) as e:
        fail(f"--dataroot {args.dataroot} is not a folder of class subfolders with images, "
             f"as mnist_png/training/0/*.png ({str(e).split('. ')[0]})")
    if bad:  # the tutorial's DataLoader would stop at the first
        print(f"warning: skipped {len(bad)} unreadable file(s), e.g. {bad[0]}", file=sys.stderr)
    if args.conditional and len(dataset.classes) < 2:
        fail(f"--conditional needs two or more class subfolders in {args.dataroot}")
    return dataset


# == Appendix A: the images decoded once; MNIST ==============================================
def training_batches(args, dataset, generator, device):
    """(train_loader, images, labels): every image through its dataset's transform once (for
    the batches, and --eval), then batches of those; --no-decode-once: the tutorials' DataLoader."""
    decode = DataLoader(dataset, 500, num_workers=args.workers, worker_init_fn=ignore_signals)
    images, labels = map(torch.cat, zip(*decode)) if args.decode_once or args.eval else [None] * 2
    keep = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))
    keep = keep[:args.subset].sort().values  # --subset: the same images for every --seed
    drop_last = len(keep) % args.batch_size == 1  # batch norm needs 2 images in a batch
    print(f"data: {len(keep)} images of {len(dataset.classes)} class(es) from {args.dataroot}")
    if not args.decode_once:
        return DataLoader(Subset(dataset, keep.tolist()), batch_size=args.batch_size,
                          shuffle=True, num_workers=args.workers, generator=generator,
                          drop_last=drop_last, worker_init_fn=ignore_signals), images, labels
    data = TensorDataset(images[keep].to(device), labels[keep].to(device))
    batches = BatchSampler(RandomSampler(data, generator=generator), args.batch_size, drop_last)
    return DataLoader(data, sampler=batches, batch_size=None, generator=generator), images, labels


def torchvision_dataset(args, transform):
    """MNIST/FashionMNIST in --dataroot (or downloaded); a failed download leaves no folders."""
    cls = getattr(torchvision.datasets, {"mnist": "MNIST"}.get(args.dataset, "FashionMNIST"))
    raw = os.path.join(args.dataroot, cls.__name__, "raw")
    made = [d for d in (raw, os.path.dirname(raw), args.dataroot) if not os.path.isdir(d)]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return cls(args.dataroot, train=True, transform=transform, download=args.download)
    except Exception as e:  # offline, or files that are not MNIST's
        with contextlib.suppress(OSError):  # the empty folders of a failed download
            list(map(os.rmdir, made))  # (innermost first)
        why = "could not be downloaded (offline?)" if args.download else "is missing or broken"
        fail(f"{cls.__name__} {why} ({type(e).__name__}); put " + ", ".join(
            os.path.basename(u)[:-3] for u, _ in cls.resources) + f" (gunzipped) in {raw}/")


# == Appendix B: samples from G's moving average, with batch-norm statistics of their own ====
def ema_of(generator, goptimizer, decay):
    """torch's AveragedModel of G, bias-corrected as Adam's moments, updated after each G step."""
    def lerp(averaged, current, t):  # averaged += w (current - averaged), all tensors at once
        torch._foreach_lerp_(averaged, current, ((1 - decay) / (1 - decay ** (t + 1.0))).float())
    ema = torch.optim.swa_utils.AveragedModel(generator, multi_avg_fn=lerp, use_buffers=False)
    goptimizer.register_step_post_hook(lambda *_: ema.update_parameters(generator))  # a hook
    return ema


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
def save_checkpoint(path, args, parts, **position):
    """Every part of the run, the random streams and where the next step starts, atomically."""
    state = {k: v.state_dict() if hasattr(v, "state_dict") else v for k, v in parts.items()}
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    atomic_save({"script": SCRIPT, "args": vars(args), **position, **state, "cuda_rng": cuda,
                 "rng": torch.get_rng_state()}, path)


def restore(checkpoint, parts, loader_gen, device):
    """The saved parts into the live objects; returns (epoch, batch, iterations)."""
    try:
        for name, part in parts.items():
            if isinstance(part, list):
                part[:] = checkpoint[name]
            elif part is not None:
                part.load_state_dict(checkpoint[name])
        loader_gen.set_state(checkpoint["loader_rng"])
        torch.set_rng_state(checkpoint["rng"])
        if device.type == "cuda" and checkpoint["cuda_rng"]:
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng"])
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
    n, reference, done = min(args.eval_samples, len(fit), len(held_out)), None, "trained"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
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
          f"their features to real images' (lower: closer);\n  label accuracy = how often it sees "
          f"the class asked for\nreal images: {quality_text(reference, n_classes)}")
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
    print(f"quality: {quality_text(quality, n_classes)} (real vs real: {reference['frechet']:.2f})")
    return quality


def quality_text(q, n_classes):
    ratio = f"{q['class_ratio']:.2f}" if q["class_ratio"] != "" else "undefined (not all drawn)"
    return (f"classes {q['classes_covered']}/{n_classes}, ratio {ratio}, confidence "
            f"{q['confidence']:.3f}, Frechet {q['frechet']:.2f}" +
            (f", label accuracy {q['label_accuracy']:.3f}" if "label_accuracy" in q else ""))


# == Appendix F: the saved generator, and --generate =========================================
def write_extras(args, out, n_cond, sampler):
    """generator.pt2 and generator_weights.pt, with the sampler's weights (its last use)."""
    settings = dict(arch=args.arch, z_dim=args.z_dim, batchnorm=args.batchnorm, n_classes=n_cond)
    example = (torch.randn(2, args.z_dim),) + ((torch.tensor([0, 1]),) if n_cond else ())
    export = sampler.to("cpu", memory_format=torch.contiguous_format)
    save_generator(export, example, out, SCRIPT, settings)
    print(f"wrote generator.pt2, generator_weights.pt, checkpoint.pt, metrics.csv, *.png to {out}")


def generate(args):
    """Samples from a run's generator_weights.pt: nothing is trained."""
    saved = load_checkpoint(args.generate, SCRIPT)
    try:  # the settings of a generator_weights.pt, then its weights (the sampling copy's)
        arch, z_dim, n_classes = (saved["settings"][k] for k in ("arch", "z_dim", "n_classes"))
        with torch.device("meta"):  # no memory used: absurd sizes in a tampered file build nothing
            generator = Generator_model(z_dim, n_classes) if arch == "cookbook" else \
                Generator(z_dim, saved["settings"]["batchnorm"]) if n_classes == 0 else None
        generator.load_state_dict(saved["state_dict"], assign=True)  # shapes checked, then used
    except Exception:
        hint = " (a checkpoint.pt is for --resume)" if "generator" in saved else ""
        fail(f"{args.generate} does not hold a generator dcgan_mnist.py can rebuild; pass the "
             f"generator_weights.pt of a run{hint}")
    if args.label is not None and not args.label < n_classes:
        fail(f"--label needs a conditional generator with that class; {args.generate} has "
             f"{n_classes or 'no'} classes")
    n, per_row = args.num_samples, n_classes if n_classes and args.label is None else 8
    labels = torch.arange(n) % per_row if args.label is None else torch.full((n,), args.label)
    path = os.path.join(args.out, "generated.png")
    with prepare_out(args.out, new_run=False):  # held while it writes
        torch.manual_seed(args.seed)
        samples = draw(generator.eval(), torch.randn(n, z_dim), labels if n_classes else None)
        vutils.save_image(samples, path, normalize=True, nrow=per_row, value_range=(-1, 1))
    print(f"wrote {n} samples to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
