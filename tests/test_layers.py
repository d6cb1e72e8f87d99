"""The layering docs/ARCHITECTURE.md describes, checked on the sources: the engine has no Qt, the application
no tensors, and the application reaches the engine only through the session (plus the settings that
configure it, the errors it raises and the file formats of `stm_core.io`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP_MAY_IMPORT = ("stm_core.session", "stm_core.engine.settings", "stm_core.errors", "stm_core.io")


def _imports(folder: Path) -> dict[str, set[str]]:
    """Every module each source file imports (absolute names; relative imports resolved inside the package)."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        package = path.relative_to(ROOT).parent.parts
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else ()
                module = ".".join((*base, node.module) if node.module else base)
                names.add(module)
                names.update(f"{module}.{a.name}" for a in node.names)  # `from stm_core import io`
        found[str(path.relative_to(ROOT))] = names
    return found


def test_the_engine_imports_no_qt():
    offending = {f: sorted(n for n in names if n.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "pyqtgraph"))
                 for f, names in _imports(ROOT / "stm_core").items()}
    assert {f: n for f, n in offending.items() if n} == {}


def test_the_application_holds_no_tensors_and_uses_only_the_engines_interface():
    imports = _imports(ROOT / "app")
    torch = {f: sorted(n for n in names if n.split(".")[0] == "torch") for f, names in imports.items()}
    assert {f: n for f, n in torch.items() if n} == {}
    beyond = {f: sorted(n for n in names if n.startswith("stm_core.")
                        and not any(n == m or n.startswith(f"{m}.") for m in APP_MAY_IMPORT))
              for f, names in imports.items()}
    assert {f: n for f, n in beyond.items() if n} == {}


def test_the_views_read_the_document_not_the_session():
    """Widgets render the document's state; the session is for the modules that hold and move the work."""
    reaching = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "app" / "views").glob("*.py"))
                if re.search(r"(?<!stm_core)\.session\b", p.read_text(encoding="utf-8"))]
    assert reaching == []


def test_the_app_uses_the_session_not_what_it_holds():
    """QA pass 80: the app read `session.frames.path`, past the session's interface, into its frame source."""
    reaching = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "app").rglob("*.py"))
                if re.search(r"session\.(frames|_\w+)\b", p.read_text(encoding="utf-8"))]
    assert reaching == []
