"""Packaging: the package list, declared dependencies, the extras' install hints, and a
wheel installed into a fresh environment answering from the demo KB (no checkout needed)."""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import pytest
import setuptools

from chatrec import extras
from chatrec.extras import EXTRA_OF, MissingExtra, require
from tests_support import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _dist(requirement: str) -> str:
    """``"scikit-learn>=1.3"`` -> ``"scikit-learn"`` (PEP 503 normalised)."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)
    return re.sub(r"[-_.]+", "-", name).lower()


BASE = {_dist(r) for r in PYPROJECT["project"]["dependencies"]}
EXTRAS = {extra: {_dist(r) for r in reqs} for extra, reqs in PYPROJECT["project"]["optional-dependencies"].items()}


def test_package_list_names_every_subpackage():
    found = setuptools.find_packages(where=str(REPO), include=["chatrec", "chatrec.*"])
    assert sorted(found + ["chatrec.prompts"]) == sorted(PYPROJECT["tool"]["setuptools"]["packages"])
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"chatrec.prompts": "prompts"}


def _third_party_imports() -> dict[str, list[str]]:
    """Top-level import name -> where it is imported, for every non-stdlib, non-chatrec import."""
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / "chatrec").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "chatrec" and top not in sys.stdlib_module_names:
                    found.setdefault(top, []).append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_every_import_is_a_declared_dependency():
    dists = md.packages_distributions()
    declared = BASE.union(*EXTRAS.values())
    undeclared = {}
    for module, where in _third_party_imports().items():
        # a module of an extra that is not installed here (make setup leaves postgres, ray, ner out)
        # names its distribution
        provided_by = {_dist(d) for d in dists.get(module, [module])}
        if not provided_by & declared:
            undeclared[module] = (sorted(provided_by) or ["not installed"], where)
    assert not undeclared, f"imported but not in pyproject dependencies or extras: {undeclared}"


def test_every_optional_import_goes_to_its_extra():
    dists = md.packages_distributions()
    imported = _third_party_imports()
    for module, extra in EXTRA_OF.items():
        assert extra in EXTRAS, extra
        # an extra that is not installed here (make setup leaves 'ner' out): its module names its distribution
        provided_by = {_dist(d) for d in dists.get(module, [module])}
        assert provided_by & EXTRAS[extra], f"{module} is not in the {extra!r} extra"
    for module in imported:  # an import that only an extra installs is named in EXTRA_OF
        provided_by = {_dist(d) for d in dists.get(module, [])}
        if not provided_by & BASE:
            assert module in EXTRA_OF, f"{module} ({imported[module]}) comes from an extra: add it to EXTRA_OF"


def test_a_missing_extra_names_the_install_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn` fails as if it were not installed
    with pytest.raises(MissingExtra) as err:
        require("sklearn.linear_model", purpose="chatrec fit-ranker")
    assert str(err.value).splitlines()[-1].strip() == "pip install 'chatrec[eval]'"
    assert "chatrec fit-ranker" in str(err.value) and err.value.extra == "eval"
    assert isinstance(err.value, ImportError)
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'chatrec[serve]'")):
        extras.require_extra("serve")


def test_a_broken_optional_package_shows_its_own_error(tmp_path, monkeypatch):
    (tmp_path / "halfinstalled.py").write_text("import not_installed_anywhere_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as err:
        require("halfinstalled", "eval")
    assert not isinstance(err.value, MissingExtra) and err.value.name == "not_installed_anywhere_xyz"


def test_one_version_string():
    import chatrec

    assert chatrec.__version__ == md.version("chatrec") == PYPROJECT["project"]["version"]
    assert "version" not in PYPROJECT["project"].get("dynamic", [])
    literals = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in (REPO / "chatrec").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assign)
        and any(getattr(t, "id", None) == "__version__" for t in node.targets)
        and isinstance(node.value, ast.Constant)
        and node.value.value != "0+unknown"
    ]
    assert not literals, f"a second version string: {literals} (read chatrec.__version__ instead)"


# --------------------------------------------------------------------------- wheel in a fresh environment


def _source_copy(dest: Path) -> Path:
    """What the build reads (pyproject, readme, the package folders), copied so that the
    build's own files (build/, *.egg-info) never land in the checkout."""
    project = PYPROJECT["project"]
    src = dest / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in {"chatrec", *PYPROJECT["tool"]["setuptools"]["package-dir"].values()}:
        shutil.copytree(REPO / folder, src / folder, ignore=ignore)
    for name in ["pyproject.toml", project["readme"], *(p.name for p in REPO.glob("LICEN[CS]E*"))]:
        shutil.copy2(REPO / name, src / name)
    return src


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{cmd} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}"
    return res


@pytest.mark.slow
def test_wheel_installs_and_answers_from_the_demo_kb(tmp_path):
    t0 = time.monotonic()
    # 1. Build the wheel with this environment's setuptools (offline: no isolated build env).
    src = _source_copy(tmp_path)
    dist = tmp_path / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(dist),
            str(src),
        ]
    )
    wheel = next(dist.glob("chatrec-*.whl"))
    assert wheel.name.startswith(f"chatrec-{PYPROJECT['project']['version']}-")

    # 2. A fresh venv without pip that sees this environment's installed packages through a
    #    plain path line in a .pth file (site does not run that folder's own .pth files, so
    #    the editable install's finder stays out and only the wheel provides chatrec).
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    site_dir = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    parent_site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_dir / "zz_parent_env.pth").write_text("".join(f"{p}\n" for p in sorted(parent_site)))
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--no-compile",
            "-q",
            "--target",
            str(site_dir),
            str(wheel),
        ]
    )

    # 3. Run it from an empty folder: nothing but the KB folder comes from the checkout.
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATREC_") and k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if "CHATREC_CACHE_DIR" in os.environ:  # the converted model, as the rest of the suite uses it
        env["CHATREC_CACHE_DIR"] = os.environ["CHATREC_CACHE_DIR"]
    where = json.loads(
        _run(
            [
                str(py),
                "-c",
                (
                    "import json, chatrec, importlib.resources as r, chatrec.turn.compose as c; print(json.dumps({"
                    "'file': chatrec.__file__, 'version': chatrec.__version__, 'prompts': str(c.DEFAULT_DIR), "
                    "'templates': sorted(p.name for p in c.DEFAULT_DIR.iterdir()), "
                    "'widget': r.files('chatrec').joinpath('static', 'widget.js').is_file()}))"
                ),
            ],
            cwd=work,
            env=env,
        ).stdout
    )
    assert Path(where["file"]).is_relative_to(site_dir), where
    assert Path(where["prompts"]).is_relative_to(site_dir), where
    assert any(n.endswith(".j2") for n in where["templates"]) and where["widget"], where
    assert where["version"] == PYPROJECT["project"]["version"]
    assert (
        _run([str(py), "-m", "chatrec", "--version"], cwd=work, env=env).stdout.strip() == f"chatrec {where['version']}"
    )

    res = _run(
        [
            str(py),
            "-m",
            "chatrec",
            "--kb",
            str(REPO / "kb"),
            "--data-dir",
            str(tmp_path / "state"),
            "ask",
            "How do I return my headphones?",
            "--json",
        ],
        cwd=work,
        env=env,
        timeout=900,
    )
    data = json.loads(res.stdout)
    assert {"text", "route", "recommendations"} <= set(data) and data["text"].strip()
    print(f"wheel build + install + ask: {time.monotonic() - t0:.0f} s")
