"""The stubs and types of the package: every public name of the compiled module has a stub, the
stubs agree with the module (mypy's stubtest), and a typed program, the package and these tests
pass `mypy --strict`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import fourfold
import fourfold._fourfold as compiled

HERE = Path(__file__).resolve().parent
STUB = Path(fourfold.__file__).resolve().parent / "_fourfold.pyi"


def stub_names() -> set[str]:
    names: set[str] = set()
    for node in ast.parse(STUB.read_text()).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return names


def test_every_public_name_of_the_compiled_module_has_a_stub() -> None:
    public = {name for name in dir(compiled) if not name.startswith("__") or name == "__version__"}
    missing = public - stub_names()
    assert not missing, f"names without a stub in {STUB.name}: {sorted(missing)}"


def test_every_name_the_package_exports_exists() -> None:
    for name in fourfold.__all__:
        assert hasattr(fourfold, name), name
    assert fourfold.__version__ == compiled.__version__


def test_the_stubs_agree_with_the_compiled_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "fourfold._fourfold", "--allowlist", str(HERE / "stubtest-allowlist.txt")],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_typed_program_passes_mypy_strict() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(HERE / "typed_example.py")],
        capture_output=True,
        text=True,
        cwd=HERE,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_package_itself_passes_mypy_strict() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "-p", "fourfold"],
        capture_output=True,
        text=True,
        cwd=HERE.parent / "python",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_tests_themselves_pass_mypy_strict() -> None:
    # The tests use the package as its users would, so a stub that disagrees with a call they
    # make fails here as well as in stubtest.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "tests"],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_typed_program_runs() -> None:
    sys.path.insert(0, str(HERE))
    import typed_example

    notes = typed_example.run()
    assert notes[0] == "allow by coder"
    assert any(note.startswith("docs/deploy.md:") and "canonical" in note for note in notes)
