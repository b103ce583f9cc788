"""The book's layout: its root, its chapters (sources ``book/src/NN_name.py`` and the notebooks
``book/NN_name.ipynb`` paired with them), the table of contents, and the profiles (folders of papermill
parameter files ``book/profiles/<profile>/NN_name.yaml``, each file optional).

A chapter is its source: ``sdr book`` writes its notebook (jupytext) before executing it, and
:func:`layout_problems` names every place that does not agree with the sources (a notebook without a source,
a chapter missing from ``_toc.yml``, a profile file of no chapter, a claim of no chapter)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_PROFILE = "cpu"
PROFILES_DIR = Path("book") / "profiles"
TOC = "_toc.yml"
CHAPTER_GLOB = "[0-9][0-9]_*"


def find_root(start: str | Path | None = None) -> Path:
    """The book's root: ``start`` (default: the working directory) or the package's parent, holding _config.yml."""
    cands = [Path(start)] if start is not None else [Path.cwd(), Path(__file__).resolve().parent.parent.parent]
    for c in cands:
        if (c / "_config.yml").is_file() and (c / "book").is_dir():
            return c.resolve()
    raise FileNotFoundError(f"no book found: expected _config.yml and book/ in {' or '.join(str(c) for c in cands)}")


def sources(root: Path) -> dict[Path, Path]:
    """Each chapter script book/src/NN_*.py and the notebook it is paired with (which may not exist yet)."""
    return {s: root / "book" / (s.stem + ".ipynb") for s in sorted((root / "book" / "src").glob(CHAPTER_GLOB + ".py"))}


def _by_number(paths: Sequence[Path], what: str) -> dict[str, Path]:
    """``paths`` keyed by their two-digit number; ValueError when two share one."""
    out: dict[str, Path] = {}
    for p in paths:
        key = p.name[:2]
        if key in out and out[key].stem != p.stem:
            raise ValueError(f"two {what} numbered {key}: {out[key].name} and {p.name}; renumber one of them")
        out[key] = p
    return out


def chapters(root: Path) -> dict[str, Path]:
    """The chapter notebooks book/NN_*.ipynb, keyed by their number "NN": those of the sources in book/src
    (written by ``sdr book --sync`` when they do not exist yet) and any notebook that has no source."""
    _by_number(list(sources(root)), "chapter sources (book/src)")
    notebooks = sorted(set(sources(root).values()) | set((root / "book").glob(CHAPTER_GLOB + ".ipynb")))
    found = _by_number(notebooks, "chapters")
    if not found:
        raise FileNotFoundError(f"no chapters (book/src/NN_*.py or book/NN_*.ipynb) under {root}")
    return dict(sorted(found.items()))


def select(available: Mapping[str, Path], wanted: Sequence[str] | None) -> dict[str, Path]:
    """The chapters named in ``wanted`` ("01", "1" or "01_denoiser"); all of them when None or empty."""
    if not wanted:
        return dict(available)
    out = {}
    for w in wanted:
        key = w.split("_")[0].zfill(2) if w.split("_")[0].isdigit() else None
        if key not in available:
            names = ", ".join(f"{k} ({p.stem})" for k, p in available.items())
            raise ValueError(f"unknown chapter {w!r}; available: {names}")
        out[key] = available[key]
    return out


# ----------------------------------------------------------------------------- profiles


def profile_names(root: Path) -> list[str]:
    """``cpu`` (the notebooks' own defaults) and each folder of book/profiles/."""
    d = root / PROFILES_DIR
    found = sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []
    return [DEFAULT_PROFILE] + [p for p in found if p != DEFAULT_PROFILE]


def profile_file(root: Path, profile: str, notebook: Path) -> Path | None:
    """The papermill parameter file of ``notebook`` under ``profile`` (None: the notebook's defaults)."""
    names = profile_names(root)
    if profile not in names:
        raise ValueError(f"unknown profile {profile!r}; expected one of {names} (folders of {root / PROFILES_DIR})")
    f = root / PROFILES_DIR / profile / f"{notebook.stem}.yaml"
    return f if f.is_file() else None


# ----------------------------------------------------------------------------- the table of contents


def toc_files(root: Path) -> list[str]:
    """Every file named in _toc.yml (its root first), as written there: without suffix, relative to ``root``."""
    import yaml

    toc = yaml.safe_load((root / TOC).read_text()) or {}
    files = [toc["root"]] if toc.get("root") else []

    def walk(entries) -> None:
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))

    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


# ----------------------------------------------------------------------------- does everything agree?


def layout_problems(root: Path, claim_chapters: Sequence[str] = ()) -> list[str]:
    """What does not agree with the chapter sources, one line each with its fix (empty: all agree).

    A chapter is its source book/src/NN_name.py plus one line in _toc.yml; its notebook is written by
    ``sdr book``; a profile file is optional but must name a chapter; ``claim_chapters`` (the ``chapter``
    field of each claim of the catalogue) must name chapters."""
    problems = []
    srcs = sources(root)
    stems = {s.stem for s in srcs}
    for script, nb in srcs.items():
        if not nb.is_file():
            problems.append(f"{script.name} has no notebook {nb.name}: run sdr book --chapters {script.name[:2]}")
    for nb in sorted((root / "book").glob(CHAPTER_GLOB + ".ipynb")):
        if nb.stem not in stems:
            problems.append(f"{nb.name} has no source book/src/{nb.stem}.py (chapters are written as sources)")
    try:
        found = chapters(root)
    except (ValueError, FileNotFoundError) as e:
        return [*problems, str(e)]
    toc = toc_files(root) if (root / TOC).is_file() else []
    for key, nb in found.items():
        entry = f"book/{nb.stem}"
        if entry not in toc:
            problems.append(f"chapter {key} ({nb.name}) is not in {TOC}: add '- file: {entry}'")
    stems_found = {nb.stem: key for key, nb in found.items()}
    for f in toc:
        name = Path(f).name
        if not f.startswith("book/") or not name[:2].isdigit() or name in stems_found:
            continue
        if not (root / f"{f}.md").is_file():
            problems.append(f"{TOC} names {f}, which is neither a chapter (book/src/{name}.py) nor a page ({f}.md)")
        elif name[:2] in found:
            problems.append(f"{TOC}: page {f}.md and chapter {found[name[:2]].name} share the number {name[:2]}")
    for prof in profile_names(root)[1:]:
        for f in sorted((root / PROFILES_DIR / prof).glob("*.yaml")):
            if f.stem not in stems_found:
                problems.append(f"{f.relative_to(root)} names no chapter (chapters: {', '.join(sorted(stems))})")
    for c in claim_chapters:
        if c not in stems_found:
            problems.append(f"a claim of the catalogue names chapter {c!r}, which does not exist")
    return problems
