"""The ``sdr`` command line: thin wrappers over the library.

    sdr train --preset small --data fashion-mnist --minutes 10 --out runs/fm
    sdr train --out runs/fm --resume
    sdr train --recipe healthy --steps 4000  # a named recipe (sdrlib.recipes); the options given override it
    sdr eval runs/fm                 # PSNR versus sigma on held-out images
    sdr info fashion-mnist-small-32  # a checkpoint's config and training summary
    sdr data textures                # build / inspect a data set: counts per class
    sdr book --profile cpu           # execute the chapters (papermill) and build the HTML book
    sdr verdicts                     # every claim's number, interval and verdict, from the executed book

A user mistake prints one line on stderr and exits with status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import typing

from . import __version__

# User mistakes and environment problems: bad values (ValueError, CheckpointError), missing or unwritable files,
# a full disk (OSError: ENOENT, EEXIST, EACCES, EROFS, ENOTDIR, ENOSPC, ...). Anything else is a bug: traceback.
USER_ERRORS = (ValueError, OSError)


def one_line(e: BaseException) -> str:
    """An error as one line: its message (a bare OSError: its reason and file), newlines folded."""
    msg = str(e)
    if isinstance(e, OSError) and isinstance(e.args[0] if e.args else None, int) and e.strerror:
        msg = e.strerror + (f": {e.filename}" if e.filename else "")
    return " ".join(part.strip() for part in msg.splitlines() if part.strip()) or type(e).__name__


def _fields_as_args(p: argparse.ArgumentParser, cls, skip: set[str] = frozenset()) -> None:
    """Add one --option per dataclass field, typed from its annotation and default, its help from the
    comment written after the field."""
    from .utils import field_docs

    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        opt = "--" + f.name.replace("_", "-")
        default, hint = f.default, hints[f.name]
        doc = (docs.get(f.name) or f.name.replace("_", " ")).replace("%", "%%")
        if hint is bool:
            p.add_argument(opt, action=argparse.BooleanOptionalAction, default=default, help=doc)
        elif typing.get_origin(hint) is tuple:
            elem = typing.get_args(hint)[0]
            p.add_argument(
                opt,
                type=elem,
                nargs="*",
                default=default,
                metavar=elem.__name__.upper(),
                help=f"{doc} (default: {' '.join(map(str, default)) or 'none'})",
            )
        elif default is None:  # int | None
            p.add_argument(opt, type=int, default=None, help=doc)
        else:
            p.add_argument(opt, type=type(default), default=default, help=f"{doc} (default: {default})")


def _train_options(p: argparse.ArgumentParser) -> None:
    """The options of ``sdr train``: one per TrainConfig field, --recipe and --resume."""
    from .recipes import names
    from .train import TrainConfig

    _fields_as_args(p, TrainConfig)
    p.add_argument(
        "--recipe",
        default=None,
        metavar="NAME",
        help=f"start from a named training recipe (sdrlib.recipes: {', '.join(names())}); the options given "
        "beside it override its values",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out")


def _given_options(argv: list[str]) -> dict:
    """The TrainConfig fields given on an ``sdr train`` command line (abbreviated or not), with their values:
    the line parsed again with every default replaced by a marker."""
    from .train import TrainConfig

    unset = object()
    p = argparse.ArgumentParser(prog="sdr train")
    _train_options(p)
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    p.set_defaults(**{k: unset for k in names})
    a = vars(p.parse_args(argv[argv.index("train") + 1 :]))
    return {k: a[k] for k in names if a[k] is not unset}


def train_config(argv: list[str]):
    """The TrainConfig an ``sdr train`` command line asks for, and the recipe it names: the options given, over
    the recipe's values (--recipe), or over the saved config of the run it continues (--resume), over the
    defaults."""
    from . import checkpoints, recipes
    from .train import TrainConfig

    a = parser().parse_args(argv)
    given = _given_options(argv)
    if a.resume:
        if a.recipe:
            raise ValueError(
                f"--recipe {a.recipe} starts a run; --resume continues {a.out} with its saved config "
                "(give the options to change instead)"
            )
        if not checkpoints.exists(a.out):
            raise FileNotFoundError(f"cannot resume: no checkpoint in {a.out}")
        old = checkpoints.read_config(a.out).get("train")
        if not isinstance(old, dict):
            raise checkpoints.CheckpointError(
                f"cannot resume {a.out}: its {checkpoints.CONFIG} records no training "
                "config ('train'); it was not written by sdr train"
            )
        # On resume the saved config wins, except for options given explicitly on this command line.
        return TrainConfig.from_dict({**old, **given, "out": a.out}), None
    if a.recipe:
        return recipes.config(a.recipe, **given), a.recipe
    return TrainConfig(**given), None


def _cmd_train(a: argparse.Namespace) -> int:
    from . import checkpoints
    from .train import train

    argv = a._argv if a._argv is not None else sys.argv[1:]
    cfg, recipe = train_config(argv)
    command = "sdr " + " ".join(shlex.quote(t) for t in argv)
    out = train(cfg, resume=a.resume, command=command, recipe=recipe)
    print(checkpoints.run_summary(out))
    return 0


def _cmd_eval(a: argparse.Namespace) -> int:
    import torch

    from . import checkpoints, data
    from .evaluate import format_table, psnr_table
    from .noise import check_sigma
    from .utils import pick_device, write_text

    if not 1 <= a.n <= 10**7 or a.threads < 0:
        raise ValueError(f"--n must be in [1, 10,000,000] and --threads >= 0, got --n {a.n}, --threads {a.threads}")
    check_sigma(a.sigmas)
    device = pick_device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    ck = checkpoints.load(a.checkpoint, device=device)
    tc = ck.config.get("train", {})
    name = a.data or tc.get("data")
    if not name:
        raise ValueError("this checkpoint records no data set; pass --data NAME")
    k = 2**ck.model.cfg.levels
    if a.size is not None and (a.size < max(8, k) or a.size % k):
        raise ValueError(
            f"--size must be a multiple of {k} and at least {max(8, k)} (the network halves the image "
            f"{ck.model.cfg.levels} times), got {a.size}"
        )
    if a.data is None and a.size is None:  # its own data, crop and size, checked against its fingerprint
        test = checkpoints.load_data(ck, "test").subset(a.n, seed=a.seed)
    else:
        test = data.load(
            name, "test", **{**checkpoints.training_data_kwargs(ck.config), **({"size": a.size} if a.size else {})}
        ).subset(a.n, seed=a.seed)
    rows = psnr_table(ck.model, test.images, a.sigmas, seed=a.seed)
    title = f"{ck.path}: held-out PSNR on {len(test)} '{name}' test images"
    print(json.dumps(rows, indent=1) if a.json else format_table(rows, title))
    if a.save:
        write_text(a.save, json.dumps({"data": name, "n": len(test), "seed": a.seed, "rows": rows}, indent=1) + "\n")
    return 0


def _cmd_info(a: argparse.Namespace) -> int:
    from . import checkpoints
    from .unet import UNet, UNetConfig, n_params, receptive_field
    from .utils import write_text

    path = checkpoints.resolve(a.checkpoint)
    cfg = checkpoints.read_config(path)
    if a.readme:
        checkpoints.load(path)  # verifies hashes and shapes first
        write_text(path / "README.md", checkpoints.readme_text(path, a.machine))
        print(f"wrote {path / 'README.md'}")
        return 0
    if a.json:
        print(json.dumps(cfg, indent=1))
        return 0
    checkpoints.load(path)  # verifies hashes and shapes
    mc = UNetConfig.from_dict(cfg["model"])
    print(checkpoints.run_summary(path) if "train" in cfg else str(path))
    print(
        f"architecture: widths {list(mc.widths)}, mid {mc.mid_width}, norm {mc.norm}, "
        f"{n_params(UNet(mc)):,} parameters, middle receptive field {receptive_field(mc)} px"
    )
    print(f"produced by: {cfg.get('command', '?')}")
    return 0


def _cmd_data(a: argparse.Namespace) -> int:
    from . import data

    if a.list or not a.name:
        for k, v in data.names().items():
            print(f"{k:16s} {v}")
        return 0
    if a.name == "fashion-mnist" and a.download:
        data.download_fashion_mnist(data.cache_dir() / "fashion-mnist")
    for split in ("train", "test"):
        ds = data.load(a.name, split, size=a.size, seed=a.seed)
        counts = ds.counts()
        print(f"{a.name} {split}: {len(ds)} images of shape {tuple(ds.images.shape[1:])}, {len(counts)} classes")
        if a.verbose or len(counts) <= 20:
            for k, v in counts.items():
                print(f"  {v:6d}  {k}")
    return 0


def _cmd_book(a: argparse.Namespace) -> int:
    from . import book

    try:
        if a.sync is not None:
            for p in book.sync(a.sync or a.chapters):
                print(f"sdr book: wrote {p}")
        elif a.fold:
            for f in a.fold:
                changed = book.fold_file(f)
                print(
                    f"sdr book: {f}: "
                    + (
                        "no injected-parameters cell"
                        if changed is None
                        else f"injected-parameters cell folded (changed: {sorted(changed)})"
                    )
                )
        elif a.html:
            book.build_html(book.find_root())
        else:
            book.run(a.profile, a.chapters, book.parse_overrides(a.param or []), a.output_dir, build=not a.no_build)
    except (book.ChapterFailed, book.BuildFailed) as e:
        print(f"sdr book: {e}", file=sys.stderr)
        return 1
    return 0


def _cmd_verdicts(a: argparse.Namespace) -> int:
    from . import book, references, verdicts

    folder = a.folder or book.find_root() / "book"
    rows = verdicts.collect(folder)
    if a.json:
        print(json.dumps(rows, indent=1))
    elif a.expect:
        print(verdicts.expect_yaml(rows))
    else:
        expected = {verdicts.key_name(n): r["expect"] for n, r in references.references().items()}
        head = ("claim", "reference", "number [95 % CI]", "verdict", "references.yaml")
        table = [head] + [
            (*(str(r[k]) for k in head[:4]), expected.get(r["reference"], {}).get(r["claim"], "-")) for r in rows
        ]
        widths = [max(len(t[i]) for t in table) for i in range(len(head))]
        for t in table:
            print("  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip())
        print(f"({len(rows)} verdicts from {folder}; references.yaml: the verdict the chapters expect, - none)")
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``sdr``."""
    p = argparse.ArgumentParser(prog="sdr", description="Sparse semantic representations in blind denoisers.")
    p.add_argument("--version", action="version", version=f"sdrlib {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train a blind UNet denoiser (resumable)")
    _train_options(t)
    t.set_defaults(fn=_cmd_train)

    e = sub.add_parser("eval", help="PSNR versus sigma of a checkpoint on held-out images")
    e.add_argument("checkpoint", help="a checkpoint folder or the name of a shipped one (sdr info lists them)")
    e.add_argument("--data", default=None, help="data set (default: the one it was trained on)")
    e.add_argument("--size", type=int, default=None, help="image size (default: the checkpoint's)")
    e.add_argument(
        "--sigmas",
        type=float,
        nargs="+",
        default=[0.05, 0.1, 0.2, 0.4, 0.8],
        help="noise levels on the [0, 1] image scale (default: 0.05 0.1 0.2 0.4 0.8)",
    )
    e.add_argument("--n", type=int, default=1000, help="held-out images")
    e.add_argument("--seed", type=int, default=0, help="seeds the choice of images and the noise")
    e.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    e.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    e.add_argument("--json", action="store_true", help="print the table as JSON")
    e.add_argument("--save", default=None, help="also write the table as JSON here")
    e.set_defaults(fn=_cmd_eval)

    i = sub.add_parser("info", help="a checkpoint's config and training summary (verifies it)")
    i.add_argument("checkpoint", help="a checkpoint folder or the name of a shipped one")
    i.add_argument("--json", action="store_true", help="print the whole config.json")
    i.add_argument("--readme", action="store_true", help="write the checkpoint's README.md (command, time, PSNR)")
    i.add_argument("--machine", default=None, help="with --readme: how to describe the machine it ran on")
    i.set_defaults(fn=_cmd_info)

    d = sub.add_parser("data", help="build / inspect a data set")
    d.add_argument("name", nargs="?", help="a data set name (see --list) or folder:PATH")
    d.add_argument("--list", action="store_true", help="list the data sets")
    d.add_argument("--size", type=int, default=None, help="image size (default: the set's own)")
    d.add_argument("--seed", type=int, default=0, help="seeds the split and the crops")
    d.add_argument("--download", action="store_true", help="opt in to downloading (fashion-mnist only)")
    d.add_argument("-v", "--verbose", action="store_true", help="print the count of every class")
    d.set_defaults(fn=_cmd_data)

    b = sub.add_parser("book", help="execute the chapter notebooks with papermill, then build the HTML book")
    b.add_argument(
        "--profile",
        default="cpu",
        help="parameter files book/profiles/PROFILE/NN_*.yaml: colab, paper (GPU scale); "
        "cpu (the default) is the notebooks' own parameters",
    )
    b.add_argument("--chapters", nargs="+", default=None, metavar="NN", help="chapters to run (default: all)")
    b.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="override a chapter parameter (VALUE parsed as JSON when possible); repeatable",
    )
    b.add_argument(
        "--output-dir",
        default=None,
        help="write executed notebooks here (for sweeps) instead of updating the book in place",
    )
    b.add_argument("--no-build", action="store_true", help="execute only; skip the jupyter-book build")
    b.add_argument(
        "--sync",
        nargs="*",
        default=None,
        metavar="NN",
        help="only write book/NN_*.ipynb from book/src/NN_*.py (jupytext; default: all chapters)",
    )
    b.add_argument("--html", action="store_true", help="only build the HTML (no execution)")
    b.add_argument(
        "--fold",
        nargs="+",
        default=None,
        metavar="NOTEBOOK",
        help="only fold papermill's injected-parameters cell into the parameters cell of these files",
    )
    b.set_defaults(fn=_cmd_book)

    v = sub.add_parser("verdicts", help="every claim's number, interval and verdict, read from executed chapters")
    v.add_argument("folder", nargs="?", default=None, help="executed chapters (default: the book's; or a sweep's)")
    out = v.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the rows as JSON")
    out.add_argument("--expect", action="store_true", help="print them as references.yaml `expect` entries")
    v.set_defaults(fn=_cmd_verdicts)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run, and turn user mistakes into one line on stderr and exit 2."""
    args = parser().parse_args(argv)
    args._argv = argv
    try:
        return args.fn(args)
    except BrokenPipeError:  # the reader went away (`sdr verdicts | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141
    except USER_ERRORS as e:
        print(f"sdr {args.cmd}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
