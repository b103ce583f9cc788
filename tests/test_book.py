"""The book runner: profiles agree with the notebooks, -p overrides parse, a failing cell fails the command
with one line, and in-place execution never leaves a half-run notebook in the book."""
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from sdrlib import book, cli

ROOT = Path(__file__).resolve().parent.parent


def test_parse_value_json_else_string():
    assert book.parse_value("3") == 3 and book.parse_value("0.25") == 0.25
    assert book.parse_value("[0.1, 0.2]") == [0.1, 0.2]
    assert book.parse_value('["small-fashion-mnist"]') == ["small-fashion-mnist"]
    assert book.parse_value("true") is True and book.parse_value("null") is None
    assert book.parse_value("cuda") == "cuda" and book.parse_value('"7"') == "7"
    assert book.parse_overrides([["n_eval", "64"], ["device", "cpu"]]) == {"n_eval": 64, "device": "cpu"}
    with pytest.raises(ValueError, match="identifier"):
        book.parse_overrides([["n-eval", "3"]])


def test_cpu_profile_is_what_each_notebook_holds():
    chapters = book.chapters(ROOT)
    assert "01" in chapters
    for ch, path in chapters.items():
        declared = book.declared_parameters(path)
        assert ch in book.PROFILES["cpu"], f"chapter {ch} has no parameters in sdrlib.book.PROFILES['cpu']"
        assert declared == book.PROFILES["cpu"][ch], f"chapter {ch}: parameters cell differs from the cpu profile"


def test_every_profile_sets_every_parameter_of_its_chapters():
    for ch, path in book.chapters(ROOT).items():
        declared = book.declared_parameters(path)
        for prof in book.PROFILE_NAMES:
            assert ch in book.PROFILES[prof], f"chapter {ch} has no parameters in sdrlib.book.PROFILES[{prof!r}]"
            assert set(book.PROFILES[prof][ch]) == set(declared), (prof, ch)
            assert book.PROFILES[prof][ch]["profile"] == prof
    assert book.PROFILES["paper"]["01"]["device"] == "cuda" and book.PROFILES["paper"]["01"]["demo_preset"] == "paper"


def test_committed_notebooks_match_their_sources():
    srcs = book.sources(ROOT)
    assert srcs, "no chapter sources under book/src"
    for script, nb_path in srcs.items():
        assert nb_path.is_file(), f"{script.name} has no notebook: run python -m sdrlib.book sync {script.name[:2]}"
        committed = book.cell_sources(nbformat.read(nb_path, as_version=4))
        generated = book.cell_sources(book.notebook_from_source(script, ROOT))
        assert committed == generated, f"{nb_path.name} is out of date: run python -m sdrlib.book sync"


def test_first_cell_installs_from_the_configured_repository_in_colab_only():
    url = book.repository_url(ROOT)
    assert url.startswith("https://")
    for nb_path in book.chapters(ROOT).values():
        nb = nbformat.read(nb_path, as_version=4)
        first = nb.cells[0]
        assert first.cell_type == "code" and "remove-cell" in first.metadata.get("tags", [])
        assert '"google.colab" in sys.modules' in first.source and url in first.source
        assert book.URL_PLACEHOLDER not in first.source
        assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1


def test_script_to_notebook_cells_and_tags():
    nb = book.script_to_notebook("# comment\n# %% tags=[\"a\", \"b\"]\nx = 1\n\n# %% [markdown]\n# # Title\n#\n# text\n"
                                 "# %%\ny = 2\n")
    assert [(c.cell_type, c.source) for c in nb.cells] == [("code", "x = 1"), ("markdown", "# Title\n\ntext"),
                                                          ("code", "y = 2")]
    assert nb.cells[0].metadata["tags"] == ["a", "b"] and nb.metadata["kernelspec"]["name"] == "python3"


def test_select_chapters():
    avail = {"01": Path("book/01_denoiser.ipynb"), "02": Path("book/02_sparse.ipynb")}
    assert list(book.select(avail, ["1"])) == ["01"]
    assert list(book.select(avail, ["02_sparse", "01"])) == ["02", "01"]
    assert list(book.select(avail, None)) == ["01", "02"]
    with pytest.raises(ValueError, match="unknown chapter '7'"):
        book.select(avail, ["7"])


def test_unknown_parameter_and_profile_are_user_errors(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(["book", "--chapters", "01", "-p", "n_evaluation", "3", "--no-build"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "n_evaluation" in err and "n_eval" in err
    with pytest.raises(ValueError, match="unknown profile"):
        book.chapter_parameters("01", "gpu", {}, {})


def tiny_book(root: Path, body: str) -> Path:
    """A one-chapter book whose chapter has a parameter x and then runs ``body``."""
    (root / "book").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\n")
    params = new_code_cell("x = 1")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell("y = x * 2"), new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = root / "book" / "01_tiny.ipynb"
    nbformat.write(nb, path)
    return path


def test_failing_cell_fails_the_command_with_one_line(tmp_path, capsys, monkeypatch):
    path = tiny_book(tmp_path, 'assert y == 4, "y is not four"')
    before = path.read_text()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(book.PROFILES["cpu"], "01", {})
    assert cli.main(["book", "--no-build"]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sdr book")]
    assert len(err) == 1, err
    assert "chapter 01" in err[0] and "01_tiny.ipynb" in err[0] and 'assert y == 4' in err[0]
    assert "AssertionError: y is not four" in err[0]
    assert path.read_text() == before          # in place: the failed run did not replace the chapter
    # the same chapter passes when the parameter makes the claim true, and is then executed in place
    assert cli.main(["book", "--no-build", "-p", "x", "2"]) == 0
    nb = nbformat.read(path, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "x = 2" in injected[0].source
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code")


def test_output_dir_leaves_the_book_untouched(tmp_path, monkeypatch):
    path = tiny_book(tmp_path / "b", "print(y)")
    before = path.read_text()
    monkeypatch.setitem(book.PROFILES["paper"], "01", {"x": 5})
    runs = book.run("paper", ["01"], {}, tmp_path / "out", build=False, root=tmp_path / "b", log=lambda *a, **k: None)
    assert path.read_text() == before
    out = nbformat.read(tmp_path / "out" / "01_tiny.ipynb", as_version=4)
    assert runs[0].parameters == {"x": 5} and out.cells[-1].outputs[0]["text"].strip() == "10"


def test_sync_requires_named_chapters():
    with pytest.raises(ValueError, match="name the chapters"):
        book.sync([], root=ROOT)
