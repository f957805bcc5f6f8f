"""Progressive GAN faces from PyTorch Hub: the cookbook's last recipe, on today's PyTorch.

Follows "Running PGGAN with PyTorch Hub" (../shared/seeds/000_78794294f0cf53d4.txt, the last
recipe): load facebookresearch/pytorch_GAN_zoo's pretrained PGAN with torch.hub, draw noise
with model.buildNoiseData(n), generate with model.test(noise) under torch.no_grad(), and make a
grid with torchvision.utils.make_grid(images.clamp(-1, 1), scale_each=True, normalize=True).
No training: the model comes pretrained.

    python pggan_hub.py                                  # 5 celebAHQ-512 faces, as the recipe
    python pggan_hub.py --model-name celebAHQ-256 --num-images 64 --save-images
    python pggan_hub.py --interpolate 16                 # latent walk between faces 0 and 1
    python pggan_hub.py --repo ~/src/pytorch_GAN_zoo --weights celebaHQ16_december_s7_i96000-9c72988c.pth

Writes to --out: pggan_<model>.png (the recipe's grid), with --save-images
pggan_<model>_00000.png ... (one file per image), with --interpolate K
pggan_<model>_interp.png (a K-image strip) and pggan_<model>_interp.gif.

Offline: the hub code is cached in <hub dir>/facebookresearch_pytorch_GAN_zoo_hub and the
weights in <hub dir>/checkpoints/<file> (hub dir: $TORCH_HOME/hub, ~/.cache/torch/hub by
default); with both there nothing is downloaded. Otherwise pass --repo (a local clone of the
repo's `hub` branch) and --weights (a local .pth).
"""
import contextlib
import math
import os
import pickle
import socket
import sys
import time
from urllib.error import URLError

import torch
import torchvision
import torchvision.utils as vutils

from common import ArgumentParser, fail, format_eta, format_flags, make_out_dir, pick_device, positive_int, run, set_seed, use_agg_unless

HUB_REPO = "facebookresearch/pytorch_GAN_zoo:hub"  # owner/name:ref -- `hub` is a branch
WEIGHTS_URL = "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/"
CHECKPOINTS = {  # model_name -> file the repo's hubconf.py loads (via load_state_dict_from_url)
    "celebAHQ-256": "celebaHQ_s6_i80000-6196db68.pth",
    "celebAHQ-512": "celebaHQ16_december_s7_i96000-9c72988c.pth",
    "DTD": "testDTD_s5_i96000-04efa39f.pth",
    "celeba": "celebaCropped_s5_i83000-2b0acc76.pth",
}
GRID_MAX = 64  # the grid shows at most this many images (a 10,000-face grid is no picture)


# -- 1. Arguments ---------------------------------------------------------------------------
def parse_args(argv=None):
    p = ArgumentParser(description="Generate images with the pretrained Progressive GAN "
                       "(PGGAN) of facebookresearch/pytorch_GAN_zoo from PyTorch Hub.")
    p.add_argument("--model-name", choices=list(CHECKPOINTS), default="celebAHQ-512",
                   help="pretrained model: celebAHQ-512/256 faces (512/256 px), DTD textures "
                   "(128 px), celeba faces (128 px)")
    p.add_argument("--num-images", type=positive_int, default=5, help="images to generate")
    p.add_argument("--batch-size", type=positive_int, default=16,
                   help="images per model.test() call (the recipe does all at once)")
    p.add_argument("--nrow", type=positive_int, default=8, help="images per row of the grid")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (printed at start)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                   help="auto: CUDA if available, else CPU (the hub model runs on CUDA or CPU)")
    p.add_argument("--half", nargs="?", const="bf16", choices=["bf16", "fp16"], default=None,
                   help="generate under autocast in bfloat16 (bare --half) or float16; "
                   "meant for CUDA, where it is faster")
    p.add_argument("--avg-generator", action="store_true",
                   help="use the moving-average generator (model.test(getAvG=True)), which "
                   "the repo advises; the recipe uses the plain one")
    p.add_argument("--out", default="outputs/pggan_hub", help="folder for everything written")
    p.add_argument("--save-images", action="store_true",
                   help="also write each image as its own PNG")
    p.add_argument("--interpolate", type=positive_int, default=None, metavar="K",
                   help="also write a K-step latent walk from image 0 to image 1 "
                   "(a strip PNG and a GIF)")
    p.add_argument("--repo", default=None, metavar="DIR",
                   help="a local copy of the repo's hub branch (torch.hub source='local'); "
                   "default: the torch.hub cache, downloaded if missing")
    p.add_argument("--weights", default=None, metavar="PTH",
                   help="a local .pth checkpoint of the repo (loaded with weights_only=False: "
                   "pass only files you trust); default: the hub's download for --model-name")
    p.add_argument("--show", action="store_true", help="also show the grid in a window")
    args = p.parse_args(argv)
    if args.interpolate is not None and args.interpolate < 2:
        p.error("--interpolate needs 2 or more steps")
    if args.interpolate is not None and args.num_images < 2:
        p.error("--interpolate walks from image 0 to image 1: use --num-images 2 or more")
    return args


# -- 2. Device: the recipe's `use_gpu = torch.cuda.is_available()` ----------------------------
def pick_hub_device(name):
    """The repo knows only CUDA (always cuda:0, all GPUs through DataParallel) or CPU."""
    device = pick_device(name)
    if device.type == "mps":
        if name == "mps":
            fail("the hub PGAN runs on CUDA or CPU only; use --device cpu")
        device = torch.device("cpu")
    return torch.device("cuda:0") if device.type == "cuda" else device


# -- 3. Load the pretrained PGGAN -----------------------------------------------------------
@contextlib.contextmanager
def adam_betas_as_floats():
    """Let the archived repo build its optimizers on PyTorch >= 2.6.

    pytorch_GAN_zoo calls `optim.Adam(..., betas=[0, 0.99])`; PyTorch >= 2.6 rejects an int
    beside a float ("ValueError: betas must be either both floats or both Tensors"). While the
    model loads, torch.optim.Adam is a subclass that turns such betas into floats; the original
    class is put back on exit, also when loading fails. The repo itself is left untouched."""
    original = torch.optim.Adam

    class Adam(original):
        def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), *args, **kwargs):
            if not any(isinstance(b, torch.Tensor) for b in betas):
                betas = tuple(float(b) for b in betas)
            super().__init__(params, lr, betas, *args, **kwargs)

    torch.optim.Adam = Adam
    try:
        yield
    finally:
        torch.optim.Adam = original


def hub_cache_paths(model_name):
    """Where torch.hub keeps the repo (<hub dir>/<owner>_<repo>_<ref>) and the weights
    (<hub dir>/checkpoints/<file>, load_state_dict_from_url's default)."""
    hub_dir = torch.hub.get_dir()
    owner_repo, ref = HUB_REPO.split(":")
    repo_dir = os.path.join(hub_dir, owner_repo.replace("/", "_") + "_" + ref.replace("/", "_"))
    return repo_dir, os.path.join(hub_dir, "checkpoints", CHECKPOINTS[model_name])


def offline_message(missing, model_name, reason):
    """What to put where when the download fails (instead of a bare URLError traceback)."""
    repo_dir, weights = hub_cache_paths(model_name)
    steps = []
    if repo_dir in missing:
        steps.append(f"the repo's hub branch at {repo_dir} (git clone -b hub "
                     f"https://github.com/{HUB_REPO.split(':')[0]} {repo_dir}; or pass --repo DIR)")
    if weights in missing:
        steps.append(f"{WEIGHTS_URL}{CHECKPOINTS[model_name]} saved as {weights} "
                     "(or pass --weights FILE)")
    if not steps:
        return f"cannot download from the internet ({reason}); the hub repo asked for a file it lacks"
    return (f"cannot download from the internet ({reason}); to run offline, put "
            + " and ".join(steps))


def load_model(args, use_gpu):
    """Step 3: torch.hub.load(... 'PGAN', model_name=..., pretrained=True, useGPU=use_gpu)."""
    kwargs = dict(model_name=args.model_name, pretrained=args.weights is None, useGPU=use_gpu)
    if args.weights is not None and not os.path.isfile(args.weights):
        fail(f"--weights {args.weights} does not exist; pass a .pth file of pytorch_GAN_zoo")
    if args.repo is not None:
        repo_dir = os.path.abspath(os.path.expanduser(args.repo))
        if not os.path.isfile(os.path.join(repo_dir, "hubconf.py")):
            fail(f"--repo {args.repo} has no hubconf.py; pass a clone of "
                 f"https://github.com/{HUB_REPO.split(':')[0]} checked out at branch hub")
        missing = []
    else:
        repo_dir, cached_weights = hub_cache_paths(args.model_name)
        # The check before loading: what would have to come from the internet?
        missing = [p for p in (repo_dir, cached_weights if args.weights is None else None)
                   if p is not None and not os.path.exists(p)]
        for path in missing:
            print(f"not in the torch.hub cache, downloading: {path}")
    try:
        with adam_betas_as_floats():
            if args.repo is not None:
                model = torch.hub.load(repo_dir, "PGAN", source="local", **kwargs)
            else:
                # skip_validation: the ref is fixed here, and the check asks the GitHub API,
                # whose rate limit (HTTP 403 without GITHUB_TOKEN) would stop a first download.
                model = torch.hub.load(HUB_REPO, "PGAN", skip_validation=True, **kwargs)
            if args.weights is not None:
                state = read_weights(args.weights, repo_dir)
                try:
                    model.load_state_dict(state)
                except Exception as e:  # any misfit of a user's file is a user error
                    fail(f"--weights {args.weights} does not fit the hub's PGAN "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    except (URLError, ConnectionError, TimeoutError, socket.timeout) as e:
        fail(offline_message(missing, args.model_name, getattr(e, "reason", e)))
    except ImportError as e:  # some versions of the repo import packages hubconf.py does not list
        fail(f"the hub repo in {repo_dir} needs a package that is not installed ({e}); "
             f"install it (pip install {(e.name or '').split('.')[0] or '<package>'})")
    except RuntimeError as e:
        text = str(e)
        if "no internet connection" in text:
            fail(offline_message(missing, args.model_name, "no internet connection"))
        if "deserialize object on a CUDA device" in text:  # a checkpoint loaded without map_location
            fail(f"the hub code cannot load its GPU-saved weights on this CPU-only machine; pass "
                 f"--weights {hub_cache_paths(args.model_name)[1]} (loaded with map_location='cpu')")
        if text.startswith(("Missing dependencies", "Cannot find callable")):
            fail(f"the hub repo in {repo_dir} cannot be used: {text}")
        if "PytorchStreamReader" in text:  # a truncated or foreign file in the cache
            fail(unreadable_weights(args.model_name, e))
        raise
    except (EOFError, pickle.UnpicklingError) as e:
        fail(unreadable_weights(args.model_name, e))
    return model


def unreadable_weights(model_name, e):
    return (f"cannot read the weights {hub_cache_paths(model_name)[1]} ({type(e).__name__}): "
            "the file is incomplete or not a checkpoint; delete it (it is downloaded again) or "
            "put a complete copy there")


def read_weights(path, repo_dir):
    """A local checkpoint: its `config` is pickled from the repo's `models` package, so the repo
    must be importable (it is on sys.path here) and weights_only must be False."""
    sys.path.insert(0, repo_dir)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (EOFError, pickle.UnpicklingError, RuntimeError, ModuleNotFoundError, AttributeError) as e:
        fail(f"--weights {path} is not a pytorch_GAN_zoo checkpoint ({type(e).__name__}: {e})")
    finally:
        sys.path.remove(repo_dir)


# -- 4./5. Noise and generation: buildNoiseData(n), then model.test(noise) under no_grad ------
def generate(model, noise, args, device, on_batch=None, log=True, keep=GRID_MAX):
    """model.test() over batches of --batch-size; returns the first `keep` images and images/s.

    `on_batch(start, images)` sees every batch (to write files) so --num-images 10000 needs no
    10,000 images in memory. Prints images/s and an ETA when there is more than one batch."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.half)
    autocast = (torch.autocast(device.type, dtype=dtype) if dtype is not None
                else contextlib.nullcontext())
    kept, n, done, start_time = [], len(noise), 0, time.perf_counter()
    batches = math.ceil(n / args.batch_size)
    for b in range(batches):
        chunk = noise[b * args.batch_size:(b + 1) * args.batch_size]
        with torch.no_grad(), autocast:
            generated_images = model.test(chunk, getAvG=args.avg_generator).float().cpu()
        if on_batch is not None:
            on_batch(done, generated_images)
        if done < keep:
            kept.append(generated_images[:keep - done])
        done += len(generated_images)
        rate = done / (time.perf_counter() - start_time)
        if log and batches > 1:
            print(f"[{b + 1}/{batches}] {done}/{n} images  {rate:.2f} images/s  "
                  f"ETA {format_eta((n - done) / rate)}")
    return torch.cat(kept), done / (time.perf_counter() - start_time)


def slerp(z0, z1, t):
    """Spherical interpolation, the usual walk for Gaussian noise: PGAN normalizes its input, so
    only the direction counts, and slerp turns it at a constant rate (along a straight line
    it would turn fastest in the middle of the walk)."""
    cos = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1, 1)
    omega = torch.acos(cos)
    if omega.abs() < 1e-4:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


# -- 6. Results: the recipe's grid, as a file; per-image files; the latent walk -------------
def to_uint8(images):
    """Images in [-1, 1] (N, C, H, W) as uint8 (N, H, W, C) numpy arrays, clamped."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def save_each(images, out, prefix, start):
    """One PNG per image, pixels mapped from [-1, 1] (no per-image stretching)."""
    from PIL import Image
    for i, img in enumerate(to_uint8(images), start):
        Image.fromarray(img).save(os.path.join(out, f"{prefix}_{i:05d}.png"))


def save_gif(images, path, frame_ms=120):
    """The walk as a looping GIF, there and back again, pixels mapped from [-1, 1]."""
    from PIL import Image
    frames = [Image.fromarray(a) for a in to_uint8(images)]
    frames = frames + frames[-2:0:-1]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return path


def main(argv=None):
    args = parse_args(argv)
    plt = use_agg_unless(args.show)
    print("arguments: " + format_flags(args, sep="="))
    # Step 2: check the GPU.
    device = pick_hub_device(args.device)
    use_gpu = device.type == "cuda"
    print(f"seed: {args.seed}  device: {device}" + ("  (the hub model always uses cuda:0)" if use_gpu else ""))
    if args.half and not use_gpu:
        print(f"note: --half {args.half} on the {device.type.upper()} runs, but is usually slower than float32")
    make_out_dir(args.out)

    # Step 3: load the pretrained PGGAN model.
    t0 = time.perf_counter()
    model = load_model(args, use_gpu)
    width, height = model.getSize()
    print(f"loaded PGAN {args.model_name} in {time.perf_counter() - t0:.1f} s: "
          f"{width}x{height} images")

    # Step 4: generate the noise (seeded: the same seed gives the same images).
    set_seed(args.seed)
    num_images = args.num_images
    noise, _ = model.buildNoiseData(num_images)
    noise = noise.cpu()  # sliced into batches on the CPU; model.test() moves each to its device
    print(f"noise: {tuple(noise.shape)} (latent size {noise.shape[1]})")

    # Step 5: the generator's output, in batches; per-image files as they come.
    prefix = f"pggan_{args.model_name}"
    on_batch = (lambda start, imgs: save_each(imgs, args.out, prefix, start)) if args.save_images else None
    generated_images, rate = generate(model, noise, args, device, on_batch)
    print(f"generated {num_images} images at {rate:.2f} images/s "
          f"(value range {generated_images.min():.2f} .. {generated_images.max():.2f}, clamped to [-1, 1])")

    # Step 6: the grid, exactly as the recipe makes it (each image stretched to full contrast).
    if num_images > GRID_MAX:
        print(f"the grid shows the first {GRID_MAX} of {num_images} images")
    grid = torchvision.utils.make_grid(generated_images.clamp(min=-1, max=1), nrow=args.nrow,
                                       scale_each=True, normalize=True)
    grid_path = os.path.join(args.out, f"{prefix}.png")
    vutils.save_image(grid, grid_path)
    written = [grid_path]
    if args.save_images:
        written.append(os.path.join(args.out, f"{prefix}_00000.png ... {prefix}_{num_images - 1:05d}.png"))

    if args.interpolate:  # a walk from image 0 to image 1 of the grid
        ts = torch.linspace(0, 1, args.interpolate)
        walk_noise = torch.stack([slerp(noise[0], noise[1], t) for t in ts])
        walk, _ = generate(model, walk_noise, args, device, log=False, keep=args.interpolate)
        strip_path = os.path.join(args.out, f"{prefix}_interp.png")
        # Fixed [-1, 1] mapping, not scale_each: a per-frame stretch would make the walk flicker.
        vutils.save_image(walk.clamp(-1, 1), strip_path, nrow=args.interpolate,
                          normalize=True, value_range=(-1, 1))
        written += [strip_path, save_gif(walk, os.path.join(args.out, f"{prefix}_interp.gif"))]

    if args.show:
        plt.imshow(grid.permute(1, 2, 0).cpu().numpy())
        plt.axis("off")
        plt.show()
    print("wrote: " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
