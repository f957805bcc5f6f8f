"""Faces from a pretrained Progressive GAN (PGGAN), loaded from PyTorch Hub.

Follows the recipe "Running PGGAN with PyTorch Hub" of the cookbook chapter "Exploring
Generative Adversarial Networks", step by step with its names: use_gpu, model =
torch.hub.load('facebookresearch/pytorch_GAN_zoo:hub', 'PGAN', ...), num_images,
noise, _ = model.buildNoiseData(num_images), generated_images = model.test(noise) under
torch.no_grad(), and the grid of torchvision.utils.make_grid(...clamp(min=-1, max=1),
scale_each=True, normalize=True). No training: the model comes pretrained.

    python pggan_hub.py                          # 5 celebAHQ-512 faces, as the recipe
    python pggan_hub.py --model-name celebAHQ-256 --num-images 64 --save-images
    python pggan_hub.py --interpolate 16         # a walk from face 0 to face 1
    python pggan_hub.py --repo pytorch_GAN_zoo --weights celebaHQ16_december_s7_i96000-9c72988c.pth

Writes to --out (default outputs/pggan_hub): pggan_<model>.png (the recipe's grid, at most 64
images), with --save-images pggan_<model>_00000.png ... (one file per image), with
--interpolate K pggan_<model>_interp.png (a K-image strip) and pggan_<model>_interp.gif. A run
whose files are already in --out is refused unless --overwrite.

torch.hub runs the repository's own code (hubconf.py), and its weights are unpickled: use only
sources you trust. Offline: the code is cached in <hub dir>/facebookresearch_pytorch_GAN_zoo_hub
and the weights in <hub dir>/checkpoints/<file> (hub dir: $TORCH_HOME/hub, ~/.cache/torch/hub by
default); with both there nothing is downloaded. Otherwise pass --repo (a local clone of the
repository's `hub` branch) and --weights (a local .pth, read without running code).

What differs from the recipe, and why:
- pytorch_GAN_zoo builds Adam with betas=[0, 0.99], which PyTorch >= 2.6 rejects; while the
  model loads, Adam gets float betas (the repository itself is left untouched).
- model.test() runs --batch-size images at a time (the recipe: all at once), so thousands of
  images fit in memory; the grid shows the first 64.
- the grid is a PNG file, not a plt.imshow window (--show adds the window); --seed makes the
  faces repeatable.
- extras: --save-images, --interpolate (a slerp walk), --avg-generator (the repository's
  advised moving-average generator), --half (autocast, for CUDA), --repo/--weights (offline),
  and one `error:` line for a failed download (what to put where), a broken repository or a
  bad --weights file; a run that fails leaves no --out folder.

Copy this file together with common.py.
"""
import contextlib
import datetime
import os
import sys
import time
from urllib.error import URLError

import matplotlib.pyplot as plt
import torch
import torchvision
import torchvision.utils as vutils

from common import (ArgumentParser, UserError, command_line, fail, int_range, parse,
                    pick_device, prepare_out, run, seed_int, stop_on_ctrl_c)

HUB_REPO = "facebookresearch/pytorch_GAN_zoo:hub"  # owner/name:ref -- `hub` is a branch
WEIGHTS_URL = "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/"
CHECKPOINTS = {  # model_name -> file the repository's hubconf.py downloads
    "celebAHQ-256": "celebaHQ_s6_i80000-6196db68.pth",
    "celebAHQ-512": "celebaHQ16_december_s7_i96000-9c72988c.pth",
    "DTD": "testDTD_s5_i96000-04efa39f.pth",
    "celeba": "celebaCropped_s5_i83000-2b0acc76.pth",
}
GRID_MAX = 64  # the grid shows at most this many images (a 10,000-face grid is no picture)


# -- 1. Arguments ------------------------------------------------------------------------------
def parse_args(argv=None):
    p = ArgumentParser(prog=os.path.basename(__file__),
                       description="Generate images with the pretrained Progressive GAN "
                       "(PGGAN) of facebookresearch/pytorch_GAN_zoo from PyTorch Hub.")
    recipe = p.add_argument_group("the tutorial's inputs")
    recipe.add_argument("--model-name", choices=list(CHECKPOINTS), default="celebAHQ-512",
                        help="pretrained model: celebAHQ-512/256 faces (512/256 px), DTD "
                        "textures (128 px), celeba faces (128 px)")
    recipe.add_argument("--num-images", type=int_range(1, 10000), default=5,
                        help="images to generate")
    speed = p.add_argument_group("data and speed")
    speed.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                       help="auto: cuda, then cpu (the hub model knows no mps)")
    speed.add_argument("--batch-size", type=int_range(1, 256), default=16,
                       help="images per model.test() call")
    speed.add_argument("--half", nargs="?", const="bf16", choices=["bf16", "fp16"],
                       help="generate under autocast in bfloat16 (bare --half) or float16; "
                       "faster on CUDA")
    extras = p.add_argument_group("additions")
    extras.add_argument("--avg-generator", action="store_true",
                        help="use the moving-average generator (model.test(getAvG=True)), "
                        "which the repository advises; the recipe uses the plain one")
    extras.add_argument("--nrow", type=int_range(1, GRID_MAX), default=8,
                        help="images per row of the grid")
    extras.add_argument("--save-images", action="store_true",
                        help="also write each image as its own PNG")
    extras.add_argument("--interpolate", type=int_range(2, 64), metavar="K",
                        help="also write a K-step latent walk from image 0 to image 1 (a strip "
                        "PNG and a GIF)")
    source = p.add_argument_group("hub source (offline use)")
    source.add_argument("--repo", metavar="DIR",
                        help="a local copy of the repository's hub branch (torch.hub "
                        "source='local'); default: the torch.hub cache, downloaded if missing")
    source.add_argument("--weights", metavar="PTH",
                        help="a local .pth of the repository, read without running code; "
                        "default: the hub's download for --model-name")
    control = p.add_argument_group("run control")
    control.add_argument("--seed", type=seed_int, default=0,
                         help="random seed of the noise, printed at the start (the recipe's: "
                         "none, a new picture each run)")
    control.add_argument("--out", default="outputs/pggan_hub", help="folder for the images")
    control.add_argument("--overwrite", action="store_true",
                         help="replace the images of an earlier run in --out")
    control.add_argument("--dry-run", action="store_true",
                         help="at most 2 images, to check the set-up in seconds")
    control.add_argument("--show", action="store_true", help="also show the grid in a window")
    args, _ = parse(p, argv)
    if args.interpolate is not None and args.num_images < 2:
        p.error("--interpolate walks from image 0 to image 1: use --num-images 2 or more")
    return p, args


# -- 2. Loading: everything around the recipe's torch.hub.load, in one place --------------------
def hub_cache_paths(model_name):
    """Where torch.hub keeps the code (<hub dir>/<owner>_<repo>_<ref>) and the weights
    (<hub dir>/checkpoints/<file>)."""
    hub_dir = torch.hub.get_dir()
    owner_repo, ref = HUB_REPO.split(":")
    repo_dir = os.path.join(hub_dir, owner_repo.replace("/", "_") + "_" + ref)
    return repo_dir, os.path.join(hub_dir, "checkpoints", CHECKPOINTS[model_name])


def hub_source(args):
    """torch.hub.load's options: a local --repo, or GitHub without the API check (its rate
    limit, HTTP 403 without a GITHUB_TOKEN, would stop a first download)."""
    return dict(source="local") if args.repo else dict(skip_validation=True)


@contextlib.contextmanager
def hub_guard(args):
    """Around the recipe's torch.hub.load: checks --repo and --weights, says what it downloads,
    lets the archived repository build its Adam on today's PyTorch, and turns a failure into one
    `error:` line: a failed download says what to put where, anything else names the hub code."""
    if args.repo and not os.path.isfile(os.path.join(args.repo, "hubconf.py")):
        fail(f"--repo {args.repo} has no hubconf.py; pass a clone of "
             f"https://github.com/{HUB_REPO.split(':')[0]} checked out at branch hub")
    if args.weights and not os.path.isfile(args.weights):
        fail(f"--weights {args.weights} does not exist; pass a .pth file of pytorch_GAN_zoo")
    repo_dir, weights = hub_cache_paths(args.model_name)
    missing = [p for p in ([] if args.repo else [repo_dir]) + ([] if args.weights else [weights])
               if not os.path.exists(p)]
    for path in missing:
        print(f"not in the torch.hub cache, downloading: {path}", flush=True)
    original_adam = torch.optim.Adam
    torch.optim.Adam = adam_with_float_betas(original_adam)
    try:
        yield
    except (URLError, ConnectionError, TimeoutError) as e:  # offline, or the server failed
        fail(offline_message(missing, args.model_name, getattr(e, "reason", e)))
    except (UserError, MemoryError, torch.OutOfMemoryError):
        raise
    except Exception as e:  # the repository's code, or a file it read, failed
        text = (str(e).strip().splitlines() or [""])[0]
        cached = "" if args.weights else f", or delete {weights} if that download is damaged"
        fail(f"the hub code in {args.repo or repo_dir} failed to load PGAN ({type(e).__name__}: "
             f"{text}); fix what it names, or pass --repo a fresh clone of its hub branch{cached}")
    finally:
        torch.optim.Adam = original_adam


def adam_with_float_betas(original):
    """pytorch_GAN_zoo calls optim.Adam(..., betas=[0, 0.99]); PyTorch >= 2.6 rejects an int
    beside a float ("betas must be either both floats or both Tensors"). This Adam turns such
    betas into floats."""
    class Adam(original):
        def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), *args, **kwargs):
            if not any(isinstance(b, torch.Tensor) for b in betas):
                betas = tuple(float(b) for b in betas)
            super().__init__(params, lr, betas, *args, **kwargs)
    return Adam


def offline_message(missing, model_name, reason):
    """What to put where when a download fails."""
    repo_dir, weights = hub_cache_paths(model_name)
    steps = []
    if repo_dir in missing:
        steps.append(f"the repository's hub branch at {repo_dir} (git clone -b hub "
                     f"https://github.com/{HUB_REPO.split(':')[0]} {repo_dir}; or pass --repo "
                     f"DIR)")
    if weights in missing:
        steps.append(f"{WEIGHTS_URL}{CHECKPOINTS[model_name]} saved as {weights} (or pass "
                     f"--weights FILE)")
    if not steps:
        return f"cannot download ({reason}); the hub code asked for a file it lacks"
    return f"cannot download from the internet ({reason}); to run offline, put " + \
        " and ".join(steps)


def read_weights(path):
    """A local pytorch_GAN_zoo checkpoint, read with weights_only=True: tensors, plain values and
    the repository's BaseConfig (its `config` entry) only, so no code in the file can run."""
    config = getattr(sys.modules.get("models.utils.config"), "BaseConfig", None)
    try:
        with torch.serialization.safe_globals([config] if config else []):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, no torch file, or objects that could run code
        fail(f"--weights {path} is not a pytorch_GAN_zoo checkpoint ({type(e).__name__}); it "
             f"must hold only tensors and the repository's config")


def load_weights(model, path, model_name):
    """--weights: load a local checkpoint into the model the hub built."""
    state = read_weights(path)
    try:
        model.load_state_dict(state)
    except Exception as e:  # any misfit of a user's file is a user error
        text = " ".join(str(e).split())  # load_state_dict's text has a line per problem
        fail(f"--weights {path} does not fit the hub's PGAN ({type(e).__name__}: "
             f"{text[:300]}{'...' if len(text) > 300 else ''}); pass a .pth of --model-name "
             f"{model_name} ({CHECKPOINTS[model_name]})")


# -- 3. Results: per-image files and the latent walk -------------------------------------------
def to_uint8(images):
    """Images in [-1, 1] (N, C, H, W) as uint8 (N, C, H, W), clamped."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def save_each(images, out, prefix, start):
    """One PNG per image, pixels mapped from [-1, 1] (no per-image stretching)."""
    from PIL import Image
    for i, img in enumerate(to_uint8(images).permute(0, 2, 3, 1).numpy(), start):
        Image.fromarray(img).save(os.path.join(out, f"{prefix}_{i:05d}.png"))


def slerp(z0, z1, t):
    """Spherical interpolation, the usual walk for Gaussian noise: PGAN normalizes its input, so
    only the direction counts, and slerp turns it at a constant rate."""
    cos = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1, 1)
    omega = torch.acos(cos)
    if omega.abs() < 1e-4:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def save_walk(frames, strip_path, gif_path, frame_ms=120):
    """The walk (uint8 frames) as a strip PNG and a looping GIF, there and back again."""
    from PIL import Image
    vutils.save_image(vutils.make_grid(frames, nrow=len(frames)).float() / 255, strip_path)
    images = [Image.fromarray(a) for a in frames.permute(0, 2, 3, 1).numpy()]
    images = images + images[-2:0:-1]
    images[0].save(gif_path, save_all=True, append_images=images[1:], duration=frame_ms, loop=0)


def main(argv=None):
    parser, args = parse_args(argv)
    print("arguments: " + command_line(parser, args))
    if not args.show:
        plt.switch_backend("Agg")
    # Addition: --out, without replacing an earlier run's images (checked now, made when the
    # first image is written)
    prepare_out(args.out, new_run=False, hold=False)
    prefix = os.path.join(args.out, f"pggan_{args.model_name}")
    ours = [f"{prefix}.png", f"{prefix}_00000.png", f"{prefix}_interp.png"]
    if not args.overwrite and any(os.path.exists(p) for p in ours):
        fail(f"--out {args.out} holds images of an earlier run ({os.path.basename(prefix)}*); "
             f"pass a new --out, or --overwrite to replace them")

    # Step 2: check the GPU (--device auto: the recipe's choice)
    device = pick_device(args.device)
    use_gpu = True if device.type == "cuda" else False
    print(f"seed: {args.seed}\ndevice: {device}" + (" (the hub model uses cuda:0)" * use_gpu))

    # Step 3: load the pretrained PGGAN model
    t0 = time.perf_counter()
    with hub_guard(args):
        model = torch.hub.load(args.repo or 'facebookresearch/pytorch_GAN_zoo:hub', 'PGAN',
                               model_name=args.model_name,
                               pretrained=args.weights is None,
                               useGPU=use_gpu, **hub_source(args))
        if args.weights:  # Addition: the weights from a local file
            load_weights(model, args.weights, args.model_name)
    width, height = model.getSize()
    print(f"loaded PGAN {args.model_name} in {time.perf_counter() - t0:.1f} s: "
          f"{width}x{height} images")

    # Step 4: generate the noise (seeded: the same --seed gives the same images)
    torch.manual_seed(args.seed)
    num_images = args.num_images
    num_images = min(num_images, 2) if args.dry_run else num_images  # Addition: --dry-run
    noise, _ = model.buildNoiseData(num_images)
    print(f"noise: {tuple(noise.shape)}")

    # Step 5: the generator's output, --batch-size images per call; the first 64 are kept for
    # the grid, and with --save-images each batch is written as it comes
    precision = torch.autocast(device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}
                               [args.half]) if args.half else contextlib.nullcontext()
    out_lock = prepare_out(args.out, new_run=False)  # held until we return
    kept, t0 = [], time.perf_counter()
    with stop_on_ctrl_c() as stop:  # Addition: Ctrl-C/SIGTERM end the loop, the grid is written
        for start in range(0, num_images, args.batch_size):
            with torch.no_grad(), precision:
                generated_images = model.test(noise[start:start + args.batch_size],
                                              getAvG=args.avg_generator).float().cpu()
            if start < GRID_MAX:  # a copy: a view would keep every batch in memory
                kept.append(generated_images[:GRID_MAX - start].clone())
            if args.save_images:
                save_each(generated_images, args.out, os.path.basename(prefix), start)
            done = start + len(generated_images)
            rate = done / (time.perf_counter() - t0)
            left = datetime.timedelta(seconds=round((num_images - done) / rate))
            print(f"{done}/{num_images} images, {rate:.2f} images/s, ETA {left}", flush=True)
            if stop.requested:
                break
    generated_images = torch.cat(kept)
    print(f"generated {done} images at {rate:.2f} images/s (values "
          f"{generated_images.min():.2f} .. {generated_images.max():.2f}, clamped to [-1, 1])")

    # Step 6: the grid, as the recipe makes it (each image stretched to full contrast)
    grid = torchvision.utils.make_grid(generated_images.clamp(min=-1, max=1), scale_each=True,
                                       normalize=True, nrow=args.nrow)
    vutils.save_image(grid, f"{prefix}.png")
    written = [f"{prefix}.png"] + [f"{prefix}_00000.png ... {prefix}_{done - 1:05d}.png"
                                   ] * args.save_images
    if args.show:
        plt.imshow(grid.permute(1, 2, 0).cpu().numpy())
        plt.axis("off")
        plt.show()

    if args.interpolate and not stop.requested:  # Addition: a walk from image 0 to image 1
        walk_noise = torch.stack([slerp(noise[0].cpu(), noise[1].cpu(), t)
                                  for t in torch.linspace(0, 1, args.interpolate)])
        frames = []
        for start in range(0, len(walk_noise), args.batch_size):
            with torch.no_grad(), precision:
                frames.append(to_uint8(model.test(walk_noise[start:start + args.batch_size],
                                                  getAvG=args.avg_generator).cpu()))
        save_walk(torch.cat(frames), f"{prefix}_interp.png", f"{prefix}_interp.gif")
        written += [f"{prefix}_interp.png", f"{prefix}_interp.gif"]
    print("wrote: " + ", ".join(written))
    if stop.requested:
        print(f"interrupted after {done} of {num_images} images", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
