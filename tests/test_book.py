"""The book runner: notebooks are their jupytext sources, profiles are papermill parameter files of declared and
read parameters, -p overrides parse, a failing cell fails the command with one line, in-place execution folds
papermill's injected values into the parameters cell, and the install cell comes from _config.yml."""

import ast
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from sdrlib import book, cli, data

ROOT = Path(__file__).resolve().parent.parent
SOURCES = book.sources(ROOT)
PROFILE_FILES = sorted((ROOT / book.PROFILES_DIR).glob("*/*.yaml"))


def source_cells(script: Path) -> list:
    """The cells of a chapter script, read with jupytext."""
    return jupytext.read(script, fmt=book.SOURCE_FORMAT).cells


def script_of(notebook_stem: str) -> Path:
    """The source script of a chapter notebook's stem."""
    return ROOT / "book" / "src" / f"{notebook_stem}.py"


def test_parse_value_json_else_string():
    assert book.parse_value("3") == 3
    assert book.parse_value("0.25") == 0.25
    assert book.parse_value("[0.1, 0.2]") == [0.1, 0.2]
    assert book.parse_value('["small-fashion-mnist"]') == ["small-fashion-mnist"]
    assert book.parse_value("true") is True
    assert book.parse_value("null") is None
    assert book.parse_value("cuda") == "cuda"
    assert book.parse_value('"7"') == "7"
    assert book.parse_overrides([["n_eval", "64"], ["device", "cpu"]]) == {"n_eval": 64, "device": "cpu"}
    with pytest.raises(ValueError, match="identifier"):
        book.parse_overrides([["n-eval", "3"]])


# ----------------------------------------------------------------------------- sources and notebooks (jupytext)


def test_sources_are_paired_jupytext_percent_scripts():
    assert SOURCES, "no chapter sources under book/src"
    for script, nb_path in SOURCES.items():
        text = script.read_text()
        nb = jupytext.reads(text, fmt=book.SOURCE_FORMAT)
        assert nb.metadata["jupytext"]["formats"] == book.JUPYTEXT_FORMATS, script.name
        assert nb.metadata["kernelspec"]["name"] == book.KERNEL, script.name
        assert jupytext.writes(nb, fmt=book.SOURCE_FORMAT) == text, f"{script.name}: not in jupytext's own form"
        from jupytext.paired_paths import paired_paths

        pairs = [Path(p) for p, _ in paired_paths(str(script), book.SOURCE_FORMAT, book.JUPYTEXT_FORMATS)]
        assert nb_path in pairs, (script.name, pairs)


def test_committed_notebooks_match_their_sources():
    for script, nb_path in SOURCES.items():
        assert nb_path.is_file(), f"{script.name} has no notebook: run sdr book --sync {script.name[:2]}"
        committed = book.cell_sources(nbformat.read(nb_path, as_version=4))
        generated = book.cell_sources(book.notebook_from_source(script))
        assert committed == generated, (
            f"{nb_path.name} differs from {script.name}: run sdr book --chapters "
            f"{script.name[:2]} (or sdr book --sync {script.name[:2]} to keep outputs)"
        )


def test_no_committed_notebook_has_an_injected_parameters_cell():
    for nb_path in book.chapters(ROOT).values():
        nb = nbformat.read(nb_path, as_version=4)
        tags = [c.metadata.get("tags", []) for c in nb.cells]
        assert not any("injected-parameters" in t for t in tags), f"{nb_path.name}: run sdr book --fold {nb_path}"
        assert sum("parameters" in t for t in tags) == 1, nb_path.name


def test_each_chapter_coerces_its_parameters_right_after_them_and_defaults_to_auto_device():
    for script in SOURCES:
        cells = source_cells(script)
        i = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
        assert f'coerce(globals(), chapter_defaults("{script.name[:2]}"))' in cells[i + 1].source, script.name
        assert book.source_parameters(script)["device"] == "auto", script.name
        assert book.source_parameters(script) == book.assignments(cells[i].source)


def test_papermill_reads_every_parameter_of_every_chapter(caplog):
    """papermill's own parser (what `papermill --help-notebook` and its "unknown parameter" warning use) finds
    every declared parameter, silently: a comment it cannot parse (e.g. one holding "=") hid two of them."""
    import logging

    from papermill.translators import PythonTranslator

    for script in SOURCES:
        cells = source_cells(script)
        cell = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
        with caplog.at_level(logging.WARNING, logger="papermill"):
            caplog.clear()
            found = {p.name for p in PythonTranslator.inspect(cell)}
        assert found == set(book.source_parameters(script)), script.name
        assert not caplog.records, f"{script.name}: {[r.getMessage() for r in caplog.records]}"


def test_install_cell_is_written_from_the_configured_repository():
    url = book.repository_url(ROOT)
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert url.startswith("https://")
    assert cfg["launch_buttons"]["colab_url"]
    cell = book.install_cell(ROOT)
    assert f'REPO = "{url}"' in cell
    assert '"google.colab" in sys.modules' in cell
    assert all(f'"{d}"' in cell for d in data.DEBIAN_PACKAGES)
    for script in SOURCES:
        first = source_cells(script)[0]
        assert first.source == cell, f"{script.name}: install cell out of date: run sdr book --sync"
        assert first.metadata.get("tags") == ["remove-cell"]
    for nb_path in book.chapters(ROOT).values():
        first = nbformat.read(nb_path, as_version=4).cells[0]
        assert first.cell_type == "code"
        assert "remove-cell" in first.metadata.get("tags", [])
        assert '"google.colab" in sys.modules' in first.source
        assert set(re.findall(r"https?://[^\s\"']+", first.source)) == {url}, nb_path.name


def test_install_cell_installs_the_one_list_of_data_packages_in_its_order():
    """The Colab cell installs sdrlib.data.DEBIAN_PACKAGES (sdrlib/data/debian-packages.txt, which the Makefile
    reads too: tests/test_data_debian.py)."""
    [debs] = re.findall(r"DEBS = \[(.*?)\]", book.install_cell(ROOT), re.DOTALL)
    assert tuple(re.findall(r'"([^"]+)"', debs)) == data.DEBIAN_PACKAGES


def test_install_cell_outside_colab_prints_a_hint_when_sdrlib_is_missing(tmp_path):
    import subprocess

    (tmp_path / "sdrlib.py").write_text("raise ImportError('not installed')\n")  # shadows the installed one
    proc = subprocess.run(
        [sys.executable, "-c", book.install_cell(ROOT)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert not proc.stderr, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    assert "sdrlib is not installed" in lines[0]
    assert book.repository_url(ROOT) in lines[0]


# ----------------------------------------------------------------------------- profiles


def test_profiles_are_folders_of_parameter_files_at_most_one_per_chapter():
    names = book.profile_names(ROOT)
    assert names[0] == "cpu"
    assert {"colab", "paper"} <= set(names)
    stems = {p.stem for p in book.chapters(ROOT).values()}
    for prof in names[1:]:
        files = {f.stem for f in (ROOT / book.PROFILES_DIR / prof).glob("*.yaml")}
        assert files <= stems, f"profile {prof}: files {sorted(files - stems)} name no chapter of {sorted(stems)}"
    for nb in book.chapters(ROOT).values():  # cpu: the notebooks' own parameters cells
        assert book.profile_file(ROOT, "cpu", nb) is None
        assert book.chapter_parameters(ROOT, "cpu", nb, book.declared_parameters(nb), {}) == {}


def test_a_chapter_without_a_profile_file_runs_with_its_defaults_told_the_profile(tmp_path):
    """A profile file is optional: without one the chapter keeps its parameters cell, except ``profile`` (which
    picks the reference checkpoints), and -p still applies."""
    nb = tiny_notebook(tmp_path / "book" / "01_tiny.ipynb", 'profile = "cpu"\nx = 1', ["print(x)"])
    (tmp_path / book.PROFILES_DIR / "colab").mkdir(parents=True)
    declared = book.declared_parameters(nb)
    assert book.profile_file(tmp_path, "colab", nb) is None
    assert book.chapter_parameters(tmp_path, "colab", nb, declared, {}) == {"profile": "colab"}
    assert book.chapter_parameters(tmp_path, "colab", nb, declared, {"x": 2}) == {"profile": "colab", "x": 2}
    assert book.chapter_parameters(tmp_path, "cpu", nb, declared, {}) == {}
    assert book.chapter_parameters(tmp_path, "colab", nb, {"x": 1}, {}) == {}  # declares no profile: nothing to say


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_profile_sets_only_declared_parameters_with_new_values_of_their_type(path):
    defaults = book.source_parameters(script_of(path.stem))
    params = book.read_parameter_file(path)
    assert params, f"{path} is empty"
    unknown = sorted(set(params) - set(defaults))
    assert not unknown, f"{path} sets {unknown}, which {path.stem} does not declare"
    assert "references" not in params, "references come from checkpoints/references.yaml (per profile)"
    for name, value in params.items():
        assert value != defaults[name], f"{path}: {name} repeats the default {value!r}"
        assert book.typed_value(name, value, defaults[name]) == value
    assert params.get("profile") == path.parent.name, f"{path}: set profile: {path.parent.name}"


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_plain_papermill_applies_the_profile_file_to_its_chapter(path, tmp_path):
    """papermill --prepare-only (no kernel): the file parameterises the real chapter as sdr book would."""
    nb_path = ROOT / "book" / f"{path.stem}.ipynb"
    proc = papermill_cli(str(nb_path), str(tmp_path / "out.ipynb"), "-f", str(path), "--prepare-only")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    declared = book.source_parameters(script_of(path.stem))
    values = book.chapter_parameters(ROOT, path.parent.name, nb_path, declared, {})
    assert out.metadata.papermill.parameters == values == book.read_parameter_file(path)
    [injected] = [c for c in out.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert book.assignments(injected.source) == values


def loaded_names(script: Path) -> set[str]:
    """Names read (loaded) by the code cells after a chapter's parameters cell."""
    cells = source_cells(script)
    i = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    names = set()
    for c in cells[i + 2 :]:
        if c.cell_type == "code":
            tree = ast.parse("\n".join(ln for ln in c.source.splitlines() if not ln.lstrip().startswith(("%", "!"))))
            names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return names


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_profile_value_is_read_by_its_chapter(path):
    unread = sorted(set(book.read_parameter_file(path)) - loaded_names(script_of(path.stem)))
    assert not unread, f"{path}: {unread} are never read by {path.stem} after its parameters cell"


@pytest.mark.parametrize("prof", ["cpu", "colab", "paper"])
def test_profile_name_selects_reference_checkpoints(prof):
    """`profile` picks the references of checkpoints/references.yaml; a profile with none (paper, until a GPU run
    ships one) is refused with a message saying how to pass one, never run on nothing."""
    from sdrlib import checkpoints

    if prof in ("cpu", "colab"):
        assert checkpoints.reference_names(prof)
    elif not checkpoints.references(prof):
        with pytest.raises(ValueError, match="-p references"):
            checkpoints.reference_names(prof)


# ----------------------------------------------------------------------------- typed parameters


def test_typed_value_converts_text_to_the_type_of_the_default():
    tv = book.typed_value
    assert tv("refs", '["a", "b"]', []) == ["a", "b"]
    assert tv("refs", "[a, b]", ["x"]) == ["a", "b"]
    assert tv("ascent", '{"h0": 0.1}', {"h0": 0.5}) == {"h0": 0.1}
    assert tv("ascent", "{h0: 1}", {}) == {"h0": 1}
    assert tv("n", "12", 3) == 12
    assert tv("sigma", "1", 0.2) == 1.0
    assert isinstance(tv("sigma", 1, 0.2), float)
    assert tv("lr", "1e-3", 0.01) == 0.001
    assert tv("flag", "true", False) is True
    assert tv("flag", "False", True) is False
    assert tv("device", "cuda", "auto") == "cuda"
    assert tv("device", 0, "auto") == "0"
    assert tv("data_sets", '["textures"]', None) == ["textures"]
    assert tv("data_sets", "textures", None) == "textures"
    assert tv("sigmas", (0.1, 0.2), [0.1]) == [0.1, 0.2]
    for name, value, default, expected in [
        ("n", "abc", 3, "int"),
        ("refs", "small-textures", [], "list"),
        ("n", "true", 3, "int"),
        ("ascent", "[1]", {}, "dict"),
        ("flag", "2", False, "bool"),
        ("device", [1], "auto", "str"),
    ]:
        with pytest.raises(ValueError) as e:
            tv(name, value, default)
        assert repr(name) in str(e.value)
        assert repr(value) in str(e.value)
        assert expected in str(e.value)


def test_coerce_updates_the_namespace_in_place():
    ns = {"refs": '["a"]', "n": 3, "other": "x"}
    assert book.coerce(ns, {"refs": [], "n": 1, "missing": 2}) == {"refs": ["a"]}
    assert ns == {"refs": ["a"], "n": 3, "other": "x"}


def test_chapter_defaults_are_read_from_the_source(tmp_path, monkeypatch):
    for script in SOURCES:
        assert book.chapter_defaults(script.name[:2]) == book.source_parameters(script)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "07_x.py").write_text(
        '# %% tags=["remove-cell"]\nimport os\n\n# %% tags=["parameters"]\nk = 3  # c\nnames = ["a"]\n\n# %%\nk\n'
    )
    monkeypatch.chdir(tmp_path)
    assert book.chapter_defaults("7") == {"k": 3, "names": ["a"]}
    with pytest.raises(FileNotFoundError, match="no source of chapter '99'"):
        book.chapter_defaults("99")


def tiny_notebook(path: Path, params: str, body: list[str]) -> Path:
    """A notebook with a parameters cell ``params``, then the code cells ``body``."""
    cell = new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell("# Tiny"), cell] + [new_code_cell(b) for b in body])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


TYPED_PARAMS = 'names = ["a"]  # a list\nn = 1\nratio = 0.5\nopts = {"k": 1}\nflag = False\nlabel = "x"'
TYPED_BODY = [
    (
        "from sdrlib.book import coerce\ncoerce(globals(), {'names': ['a'], 'n': 1, 'ratio': 0.5, "
        "'opts': {'k': 1}, 'flag': False, 'label': 'x'})"
    ),
    "print(repr(names), repr(n), repr(ratio), repr(opts), repr(flag), repr(label))",
]


def papermill_cli(*args: str):
    """Run the papermill command line (the venv's) with ``args``."""
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "papermill", "--no-progress-bar", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_plain_papermill_text_parameters_are_typed_by_the_coercion_cell(tmp_path):
    nb = tiny_notebook(tmp_path / "typed.ipynb", TYPED_PARAMS, TYPED_BODY)
    out = tmp_path / "out.ipynb"
    proc = papermill_cli(
        str(nb),
        str(out),
        "-p",
        "names",
        '["b", "c"]',
        "-p",
        "n",
        "4",
        "-p",
        "ratio",
        "2",
        "-p",
        "opts",
        "{k: 2, j: [1]}",
        "-p",
        "flag",
        "True",
        "-r",
        "label",
        "7",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = nbformat.read(out, as_version=4).cells[-1].outputs[0]["text"].strip()
    assert text == "['b', 'c'] 4 2.0 {'k': 2, 'j': [1]} True '7'"
    bad = papermill_cli(str(nb), str(tmp_path / "bad.ipynb"), "-p", "n", "four")
    assert bad.returncode != 0
    assert "ValueError" in bad.stderr
    assert "'n'" in bad.stderr
    assert "'four'" in bad.stderr


# ----------------------------------------------------------------------------- folding the injected cell


def test_fold_replaces_values_keeps_comments_and_drops_the_injected_cell():
    params = new_code_cell('a = 1            # one\nb = [1,\n     2]  # two\nc = "é"  # ü\nd = {"x": 1}')
    params.metadata["tags"] = ["parameters"]
    injected = new_code_cell('# Parameters\na = 5\nb = ["x", "y"]\nc = "é"\nextra = None\n')
    injected.metadata["tags"] = ["injected-parameters"]
    nb = new_notebook(cells=[params, injected, new_code_cell("print(a)")])
    assert book.fold_parameters(nb) == {"a": 5, "b": ["x", "y"], "extra": None}
    assert len(nb.cells) == 2
    assert nb.cells[1].source == "print(a)"
    src = nb.cells[0].source
    assert src.splitlines()[:4] == ["a = 5            # one", 'b = ["x", "y"]  # two', 'c = "é"  # ü', 'd = {"x": 1}']
    assert book.assignments(src) == {"a": 5, "b": ["x", "y"], "c": "é", "d": {"x": 1}, "extra": None}
    assert book.fold_parameters(nb) is None


def test_fold_on_a_papermill_output_puts_the_injected_values_in_the_parameters_cell(tmp_path):
    import papermill as pm

    nb = tiny_notebook(tmp_path / "t.ipynb", TYPED_PARAMS, TYPED_BODY)
    values = {"names": ["p", "q"], "n": 9, "opts": {"k": 3}, "label": "y"}
    pm.execute_notebook(
        str(nb), str(tmp_path / "out.ipynb"), parameters=values, kernel_name="python3", progress_bar=False
    )
    assert book.fold_file(tmp_path / "out.ipynb") == values
    folded = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in folded.cells)
    assert book.declared_parameters(tmp_path / "out.ipynb") == {
        "names": ["p", "q"],
        "n": 9,
        "ratio": 0.5,
        "opts": {"k": 3},
        "flag": False,
        "label": "y",
    }
    assert "# a list" in folded.cells[1].source


# ----------------------------------------------------------------------------- sync


def tiny_source_book(root: Path) -> Path:
    """A one-chapter book with a source script book/src/01_tiny.py (no notebook yet)."""
    (root / "book" / "src").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\nrepository:\n  url: https://example.org/me/tiny\n")
    script = root / "book" / "src" / "01_tiny.py"
    script.write_text(
        '# %% tags=["remove-cell"]\nprint("old install cell")\n\n'
        "# %% [markdown]\n# # Tiny\n#\n# Text.\n\n"
        '# %% tags=["parameters"]\nx = 1\n\n# %%\ny = x * 2\n\n# %%\nprint(y)\n'
    )
    return script


def test_sync_writes_the_paired_notebook_and_keeps_outputs_of_unchanged_cells(tmp_path):
    script = tiny_source_book(tmp_path)
    [nb_path] = book.sync(None, root=tmp_path, log=lambda *a, **k: None)
    assert nb_path == tmp_path / "book" / "01_tiny.ipynb"
    assert 'REPO = "https://example.org/me/tiny"' in script.read_text()  # install cell from _config.yml
    nb = nbformat.read(nb_path, as_version=4)
    assert nb.metadata["jupytext"]["formats"] == book.JUPYTEXT_FORMATS
    assert book.cell_sources(nb) == book.cell_sources(book.notebook_from_source(script))
    assert [c.metadata.get("tags", []) for c in nb.cells][:3] == [["remove-cell"], [], ["parameters"]]
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", text="kept\n")]
    nb.cells[4].outputs = [nbformat.v4.new_output("stream", text="stale\n")]
    nbformat.write(nb, nb_path)
    script.write_text(script.read_text().replace("print(y)", "print(y + 1)"))
    book.sync(["01"], root=tmp_path, log=lambda *a, **k: None)
    nb = nbformat.read(nb_path, as_version=4)
    assert nb.cells[3].outputs[0]["text"] == "kept\n"
    assert nb.cells[4].outputs == []
    assert nb.cells[4].source == "print(y + 1)"
    with pytest.raises(ValueError, match="unknown chapter '2'"):
        book.sync(["2"], root=tmp_path)


def test_a_new_chapter_is_its_source_sdr_book_writes_and_runs_its_notebook(tmp_path):
    """A source with no notebook yet is a chapter: run in place, its notebook is written, then executed; an
    --output-dir run (which executes the book's notebooks as they are) asks for sdr book --sync first."""
    script = tiny_source_book(tmp_path)
    nb_path = tmp_path / "book" / "01_tiny.ipynb"
    assert book.chapters(tmp_path) == {"01": nb_path}
    assert not nb_path.exists()
    with pytest.raises(ValueError, match="sdr book --sync 01"):
        book.run("cpu", ["01"], {}, tmp_path / "out", build=False, root=tmp_path, log=lambda *a, **k: None)
    assert not nb_path.exists()
    [r] = book.run("cpu", ["1"], {}, build=False, root=tmp_path, log=lambda *a, **k: None)
    assert r.output == nb_path
    nb = nbformat.read(nb_path, as_version=4)
    assert book.cell_sources(nb) == book.cell_sources(book.notebook_from_source(script))
    assert nb.cells[-1].outputs[0]["text"] == "2\n"
    # the source edited after: an --output-dir run executes the notebook as it is, and says it is stale
    script.write_text(script.read_text().replace("print(y)", "print(y + 2)"))
    said = []
    [r] = book.run("cpu", ["01"], {}, tmp_path / "out", build=False, root=tmp_path, log=lambda *a, **k: said.extend(a))
    assert nbformat.read(r.output, as_version=4).cells[-1].outputs[0]["text"] == "2\n"
    assert any("differs from its source" in line and "sdr book --sync 01" in line for line in said)


def test_chapter_numbers_are_unique(tmp_path):
    script = tiny_source_book(tmp_path)
    (script.parent / "01_other.py").write_text(script.read_text())
    with pytest.raises(ValueError, match=r"two chapter sources \(book/src\) numbered 01: 01_other.py and 01_tiny.py"):
        book.chapters(tmp_path)


def test_select_chapters():
    avail = {"01": Path("book/01_denoiser.ipynb"), "02": Path("book/02_sparse.ipynb")}
    assert list(book.select(avail, ["1"])) == ["01"]
    assert list(book.select(avail, ["02_sparse", "01"])) == ["02", "01"]
    assert list(book.select(avail, None)) == ["01", "02"]
    with pytest.raises(ValueError, match="unknown chapter '7'"):
        book.select(avail, ["7"])


# ----------------------------------------------------------------------------- running


def test_unknown_parameter_and_profile_are_user_errors(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert (
        cli.main(
            [
                "book",
                "--chapters",
                "01",
                "-p",
                "n_evaluation",
                "3",
                "--no-build",
                "--output-dir",
                "/nonexistent-never-written",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "n_evaluation" in err
    assert "n_eval" in err
    assert cli.main(["book", "--profile", "gpu", "--no-build", "--output-dir", "/nonexistent-never-written"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown profile 'gpu'" in err
    assert "colab" in err


def tiny_book(root: Path, body: str) -> Path:
    """A one-chapter book whose chapter has a parameter x and then runs ``body``."""
    (root / "book").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\n")
    return tiny_notebook(root / "book" / "01_tiny.ipynb", "x = 1  # the parameter", ["y = x * 2", body])


def test_failing_cell_fails_the_command_with_one_line(tmp_path, capsys, monkeypatch):
    path = tiny_book(tmp_path, 'assert y == 4, "y is not four"')
    before = path.read_text()
    monkeypatch.chdir(tmp_path)
    assert cli.main(["book", "--no-build"]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sdr book")]
    assert len(err) == 1, err
    assert "chapter 01" in err[0]
    assert "01_tiny.ipynb" in err[0]
    assert "assert y == 4" in err[0]
    assert "AssertionError: y is not four" in err[0]
    assert path.read_text() == before  # in place: the failed run did not replace the chapter
    # the same chapter passes when the parameter makes the claim true; executed in place, the value is folded
    assert cli.main(["book", "--no-build", "-p", "x", "2"]) == 0
    nb = nbformat.read(path, as_version=4)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert nb.cells[1].source == "x = 2  # the parameter"
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code")


def test_profile_run_is_plain_papermill_with_the_profile_file(tmp_path):
    path = tiny_book(tmp_path / "b", "print(repr(x), repr(y))")
    before = path.read_text()
    prof = tmp_path / "b" / book.PROFILES_DIR / "colab" / "01_tiny.yaml"
    prof.parent.mkdir(parents=True)
    prof.write_text("# a papermill parameter file\nx: [5, 6]\n")
    runs = book.run("colab", ["01"], {}, tmp_path / "sdr", build=False, root=tmp_path / "b", log=lambda *a, **k: None)
    assert path.read_text() == before
    assert runs[0].parameters == {"x": [5, 6]}
    proc = papermill_cli(str(path), str(tmp_path / "pm.ipynb"), "-f", str(prof))
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = (nbformat.read(p, as_version=4) for p in (tmp_path / "sdr" / "01_tiny.ipynb", tmp_path / "pm.ipynb"))
    assert book.cell_sources(a) == book.cell_sources(b)
    assert [c.source for c in a.cells] == [c.source for c in b.cells]  # the injected cell too
    assert a.metadata.papermill.parameters == b.metadata.papermill.parameters == {"x": [5, 6]}
    assert a.cells[-1].outputs[0]["text"] == b.cells[-1].outputs[0]["text"] == "[5, 6] [5, 6, 5, 6]\n"


def test_vendored_mathjax_files_and_integrity():
    assert book.html._kept("package/es5/tex-chtml.js") == "tex-chtml.js"
    assert book.html._kept("package/es5/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff") is not None
    assert book.html._kept("package/es5/input/tex/extensions/ams.js") == "input/tex/extensions/ams.js"
    assert book.html._kept("package/LICENSE") == "LICENSE"
    assert book.html._kept("package/es5/tex-svg.js") is None
    assert book.html._kept("package/ts/core.ts") is None
    assert book.html._integrity_ok(
        b"abc", "sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw=="
    )
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    assert cfg["html_static_path"] == [str(book.VENDOR_STATIC)]
    assert cfg["mathjax_path"] == "mathjax/tex-chtml.js"


def test_sdr_verdicts_reads_back_what_a_chapter_glued(tmp_path):
    """A notebook executed by papermill that records two verdicts of chapter 2: `sdr verdicts` lists both,
    claims in the verdict page's order, with the number and interval as glued and the reference's name as in
    the key (claims are read from their own chapter's notebook only)."""
    import json
    import subprocess

    nb = new_notebook(
        cells=[
            new_code_cell(
                "from sdrlib import verdicts\n"
                "from sdrlib.stats import Interval\n"
                "verdicts.record('subspaces', 'runs/a.b', Interval(0.05, 0.04, 0.07), 'holds')\n"
                "verdicts.record('sparsity', 'runs/a.b', Interval(-0.01, -0.02, 0.005), 'undecided', '+.3f')"
            )
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    src, ch = tmp_path / "src.ipynb", tmp_path / "run"
    ch.mkdir()
    nbformat.write(nb, src)
    proc = papermill_cli(str(src), str(ch / "02_sparse.ipynb"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = subprocess.run(
        [sys.executable, "-m", "sdrlib.cli", "verdicts", str(ch), "--json"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [  # claims in CLAIMS order (sparsity before subspaces), not cell order
        {
            "claim": "sparsity",
            "reference": "runs-a-b",
            "number [95 % CI]": "-0.010 [-0.020, +0.005]",
            "verdict": "undecided",
        },
        {"claim": "subspaces", "reference": "runs-a-b", "number [95 % CI]": "0.050 [0.040, 0.070]", "verdict": "holds"},
    ]
    empty = subprocess.run(
        [sys.executable, "-m", "sdrlib.cli", "verdicts", str(tmp_path)], capture_output=True, text=True
    )
    assert empty.returncode == 2
    assert "no executed chapter" in empty.stderr
