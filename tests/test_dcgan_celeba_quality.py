"""dcgan_celeba.py after the tutorial (issue 33): FID along the run and the best generator kept,
a resumed run's curve, nearest.png and the copying ratio, and --interpolate's rows."""
import os

import pytest
import torch
from PIL import Image

import dcgan_celeba
import helpers
from helpers import ckpt, in_process_cpu, make_image_folder, rows

SMALL = ["--image-size", 32, "--workers", 0, "--ngf", 8, "--ndf", 8, "--batch-size", 8]


def run(*flags):
    return in_process_cpu(dcgan_celeba.main, *flags)


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    """A tiny offline Inception in torch-fidelity's registry, under the real one's name."""
    registry = pytest.importorskip("torch_fidelity.registry", reason="torch-fidelity is optional")
    TinyInception = helpers.tiny_inception()
    monkeypatch.setitem(registry.FEATURE_EXTRACTORS_REGISTRY, "inception-v3-compat", TinyInception)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return TinyInception


def fid_rows(out):
    return [r for r in rows(out / "metrics.csv") if r["fid"]]


def best_line(printed):
    line = [x for x in printed.splitlines() if x.startswith("best: epoch ")][-1]
    epoch, fid = line[len("best: epoch "):].split(" (")[0].split(", FID ")
    return int(epoch), float(fid)


def test_fid_each_epoch_keeps_the_lowest_in_best_and_generate_reads_it(tmp_path, stand_in,
                                                                        capsys):
    data, out = make_image_folder(tmp_path / "d", n=24), tmp_path / "o"
    assert run("--dataroot", data, *SMALL, "--epochs", 4, "--fid", 24, "--out", out) == 0
    printed = capsys.readouterr().out
    scored = fid_rows(out)
    assert [r["epoch"] for r in scored] == ["0", "1", "2", "3"]  # one row each epoch
    assert [r["iteration"] for r in scored] == ["3", "6", "9", "12"]
    assert all(r["kid"] != "" and r["inception_score"] != "" for r in scored)
    fids = [float(r["fid"]) for r in scored]
    epoch, fid = best_line(printed)
    assert fid == pytest.approx(min(fids), abs=0.06) and epoch == 1 + fids.index(min(fids))
    assert printed.count("FID: ") == 4 and "best so far: epoch 1, FID" in printed
    assert (out / "fid.png").stat().st_size > 0 and (out / "best" / "generator.pt2").exists()
    saved = ckpt(out / "checkpoint.pt")
    assert saved["best"][0] == epoch and len(saved["fid"]) == 4
    assert run("--generate", out / "best" / "generator_weights.pt", "--num-samples", 4) == 0
    assert torch.load(out / "best" / "generated" / "generated.pt").shape == (4, 3, 32, 32)


def test_fid_every_k_epochs_and_a_resumed_run_continues_the_curve(tmp_path, stand_in, capsys):
    data, out = make_image_folder(tmp_path / "d", n=24), tmp_path / "o"
    assert run("--dataroot", data, *SMALL, "--epochs", 2, "--fid", 24, "--out", out) == 0
    before = fid_rows(out)
    assert run("--resume", out / "checkpoint.pt", "--epochs", 6, "--fid-every", 2) == 0
    printed = capsys.readouterr().out
    after = fid_rows(out)
    assert after[:2] == before  # rows appended, the earlier ones kept
    assert [r["iteration"] for r in after] == ["3", "6", "12", "18"]  # epochs 4 and 6 measured
    fids = [float(r["fid"]) for r in after]
    epoch, fid = best_line(printed)
    assert fid == pytest.approx(min(fids), abs=0.06)  # the best of the whole curve, kept
    assert epoch == [1, 2, 4, 6][fids.index(min(fids))]
    assert ckpt(out / "checkpoint.pt")["best"][0] == epoch


def test_a_run_writes_nearest_png_and_prints_the_copying_ratio(tmp_path, capsys):
    data, out = make_image_folder(tmp_path / "d", n=200), tmp_path / "o"
    assert run("--dataroot", data, *SMALL, "--batch-size", 32, "--dry-run", "--out", out) == 0
    printed = capsys.readouterr().out
    assert "holdout: 20 of the 200 images held out of training" in printed
    assert "dataset: 180 images" in printed and "copying ratio " in printed
    ratio = float(printed.split("copying ratio ")[1].split(":")[0])
    assert 0.5 < ratio < 2  # an untrained G: about 1
    assert Image.open(out / "nearest.png").size[0] > 4 * 32  # 4 images a row
    small = make_image_folder(tmp_path / "s", n=16)
    assert run("--dataroot", small, *SMALL, "--dry-run", "--out", tmp_path / "o2") == 0
    printed = capsys.readouterr().out
    assert "holdout: none (16 images; --holdout N" in printed
    assert "note: no copying ratio" in printed and (tmp_path / "o2" / "nearest.png").exists()


def copy_case(tmp_path, capsys, copies_held_out):
    """A folder whose training images are exactly a generator's samples (copying, ratio 0), or
    whose held-out ones are (ratio far above 1); --generate --nearest on it."""
    data, out = make_image_folder(tmp_path / "d", n=16), tmp_path / "o"
    assert run("--dataroot", data, *SMALL, "--dry-run", "--out", out) == 0
    assert run("--generate", out / "generator_weights.pt", "--num-samples", 32,
               "--out", tmp_path / "g") == 0
    samples = torch.load(tmp_path / "g" / "generated.pt")
    discs = make_image_folder(tmp_path / "discs", n=32, seed=5, flat=True)
    folder = tmp_path / "f"
    os.makedirs(folder)
    held = set(torch.randperm(64, generator=torch.Generator().manual_seed(999))[:32].tolist())
    copies = iter(((samples + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1))
    others = iter(sorted(os.listdir(discs)))
    for j in range(64):  # --holdout 32 of 64 with seed 999: the seeded choice --help describes
        if (j in held) == copies_held_out:
            Image.fromarray(next(copies).numpy()).save(folder / f"{j:03d}.png")
        else:
            Image.open(os.path.join(discs, next(others))).save(folder / f"{j:03d}.png")
    weights = ckpt(out / "generator_weights.pt")
    weights["settings"].update(dataroot=str(folder), holdout=32, seed=999)
    torch.save(weights, tmp_path / "w.pt")
    capsys.readouterr()
    assert run("--generate", tmp_path / "w.pt", "--num-samples", 32, "--nearest",
               "--out", tmp_path / "n") == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "n" / "nearest.png").exists()
    return float(printed.split("copying ratio ")[1].split(":")[0]), printed


def test_generate_nearest_flags_samples_that_are_training_images_as_copying(tmp_path, capsys):
    ratio, printed = copy_case(tmp_path, capsys, copies_held_out=False)
    assert ratio < 0.1 and "copying ratio 0.00: copying" in printed


def test_generate_nearest_does_not_flag_samples_closer_to_unseen_images(tmp_path, capsys):
    ratio, printed = copy_case(tmp_path, capsys, copies_held_out=True)
    assert ratio > 1.5 and ": not copying" in printed


def test_interpolate_rows_go_from_one_plain_sample_to_another(tmp_path, capsys):
    data, out = make_image_folder(tmp_path / "d", n=16), tmp_path / "o"
    assert run("--dataroot", data, *SMALL, "--dry-run", "--out", out) == 0
    weights = out / "generator_weights.pt"
    assert run("--generate", weights, "--num-samples", 6, "--out", tmp_path / "plain") == 0
    plain = torch.load(tmp_path / "plain" / "generated.pt")
    for name in ("interpolation", "interpolation-2"):  # never over an earlier file
        assert run("--generate", weights, "--num-samples", 15, "--interpolate", 5,
                   "--out", tmp_path / "i") == 0
        rows_ = torch.load(tmp_path / "i" / f"{name}.pt").view(3, 5, 3, 32, 32)
        assert (tmp_path / "i" / f"{name}.png").exists()
    assert torch.allclose(rows_[:, 0], plain[:3], atol=1e-5)  # row r: plain sample r ...
    assert torch.allclose(rows_[:, -1], plain[3:], atol=1e-5)  # ... to plain sample 3 + r
    middle = (rows_[:, 1:] - rows_[:, :-1]).flatten(2).norm(dim=2)
    assert (middle > 0).all()  # steps along the path, not a copy of its ends


def test_nearest_and_interpolate_without_generate_are_refused(tmp_path, user_error):
    import helpers
    p = helpers.script("dcgan_celeba.py", "--nearest", check=False)
    user_error(p, "--nearest", "--generate")


def test_with_fid_the_copying_ratio_is_in_inception_features_at_the_end_and_with_generate(
        tmp_path, stand_in, capsys):
    data, out = make_image_folder(tmp_path / "d", n=32), tmp_path / "o"
    assert run("--dataroot", data, *SMALL, "--epochs", 1, "--fid", 16, "--holdout", 8,
               "--out", out) == 0
    printed = capsys.readouterr().out
    assert "holdout: 8 of the 32 images held out" in printed and "dataset: 24 images" in printed
    assert "nearest of 8 training images over that to the nearest of 8 held-out ones, in " \
        "Inception features" in printed
    assert run("--generate", out / "best" / "generator_weights.pt", "--nearest", "--fid", 8,
               "--num-samples", 8) == 0
    printed = capsys.readouterr().out
    assert "copying ratio " in printed and "in Inception features" in printed
    assert (out / "best" / "generated" / "nearest.png").exists()
