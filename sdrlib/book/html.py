"""The HTML build: MathJax 3 vendored from the npm registry (so formulas render offline), the verdict page,
and ``jupyter-book build -W``."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .chapters import DEFAULT_PROFILE

BUILD_ARGS = ("-W", "-n", "--keep-going")
# MathJax 3 is shipped with the built HTML (formulas render offline): the npm package, checked against the
# registry's integrity hash, unpacked under VENDOR_STATIC/mathjax, which _config.yml copies into _static.
MATHJAX_VERSION = "3.2.2"
MATHJAX_INTEGRITY = "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
MATHJAX_KEEP = ("tex-chtml.js", "input/", "output/chtml.js", "output/chtml/", "a11y/", "ui/", "sre/", "adaptors/")
VENDOR_STATIC = Path(".vendor") / "static"


class BuildFailed(RuntimeError):
    """The Jupyter Book build reported errors or warnings (it runs with -W), or could not be prepared."""


# ----------------------------------------------------------------------------- the HTML build


def jupyter_book_executable() -> str:
    """The jupyter-book command next to this Python (the venv's bin), else the one on PATH."""
    here = Path(sys.executable).parent / "jupyter-book"
    if here.is_file():
        return str(here)
    found = shutil.which("jupyter-book")
    if found is None:
        raise FileNotFoundError("jupyter-book is not installed (pip install -r requirements.txt)")
    return found


def _integrity_ok(data: bytes, integrity: str) -> bool:
    """Whether ``data`` matches an npm ``sha512-<base64>`` integrity string."""
    algo, _, digest = integrity.partition("-")
    return base64.b64encode(hashlib.new(algo, data).digest()).decode() == digest


def _kept(member: str) -> str | None:
    """The path under mathjax/ of a file of the npm tarball that the book ships (None: not shipped)."""
    if member == "package/LICENSE":
        return "LICENSE"
    rel = member.removeprefix("package/es5/")
    if rel != member and any(rel == k or (k.endswith("/") and rel.startswith(k)) for k in MATHJAX_KEEP):
        return rel
    return None


def vendor_mathjax(root: Path, log: Callable = print) -> Path:
    """MathJax (npm ``mathjax@MATHJAX_VERSION``, integrity-checked) under .vendor/static/mathjax; fetched once.

    _config.yml copies .vendor/static into the build's _static and points mathjax_path at it, so the
    published pages render formulas without a network."""
    static = root / VENDOR_STATIC
    dest, stamp = static / "mathjax", root / VENDOR_STATIC.parent / "mathjax.version"
    if stamp.is_file() and stamp.read_text().strip() == MATHJAX_INTEGRITY and (dest / "tex-chtml.js").is_file():
        return dest
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
    url = f"{registry}/mathjax/-/mathjax-{MATHJAX_VERSION}.tgz"
    log(f"sdr book: fetching MathJax {MATHJAX_VERSION} from {url} (once; kept in {VENDOR_STATIC.parent}/)", flush=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read()
    except OSError as e:
        raise BuildFailed(
            f"could not fetch MathJax from {url} ({e}); the book ships it so that formulas "
            "render offline: connect once, or set NPM_CONFIG_REGISTRY to a reachable npm registry"
        )
    if not _integrity_ok(data, MATHJAX_INTEGRITY):
        raise BuildFailed(f"{url} does not match the pinned integrity {MATHJAX_INTEGRITY[:20]}...")
    tmp = Path(tempfile.mkdtemp(prefix="mathjax-", dir=static.parent if static.parent.exists() else None))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            rel = _kept(m.name) if m.isfile() else None
            if rel:
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_bytes(tar.extractfile(m).read())
    static.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    stamp.write_text(MATHJAX_INTEGRITY + "\n")
    return dest


def build_html(root: Path, log: Callable = print) -> float:
    """MathJax in place, then ``jupyter-book build ROOT -W -n --keep-going``; seconds taken.

    Raises BuildFailed on a non-zero exit."""
    t0 = time.perf_counter()
    vendor_mathjax(root, log=log)
    write_verdicts(root)
    proc = subprocess.run([jupyter_book_executable(), "build", str(root), *BUILD_ARGS], cwd=root, check=False)
    if proc.returncode != 0:
        raise BuildFailed(
            f"jupyter-book build {' '.join(BUILD_ARGS)} failed with exit status {proc.returncode} "
            "(its warnings are printed above)"
        )
    return time.perf_counter() - t0


def write_verdicts(repo_root: Path) -> Path:
    """``book/verdicts.md`` under the repository root, for the references of the cpu profile
    (checkpoints/references.yaml)."""
    from .. import checkpoints, verdicts

    return verdicts.write_page(repo_root, checkpoints.reference_names(DEFAULT_PROFILE))
