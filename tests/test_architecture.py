"""The import rules of docs/architecture.md hold in the code, and the doc states them."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SDK = ROOT / "errdiscount_sdk"
SERVER = ROOT / "server_stub"


def _imports(path: Path, package: str) -> Iterator[str]:
    """Absolute names of the modules one file imports."""
    here = [package, *path.relative_to(ROOT / package).parts[:-1]]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    yield from (f"{module}.{alias.name}" for alias in node.names)
                    continue
                yield module
            elif node.module:
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _part(path: Path) -> str:
    parts = path.relative_to(SDK).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def _documented_rules() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("### Who may import whom", 1)[1].split("\n## ", 1)[0]
    rules: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`_"):
            rules[cells[0].strip("`")] = set(re.findall(r"`(_\w+)`", cells[1]))
    return rules


def test_the_doc_lists_every_private_part_of_the_sdk() -> None:
    parts = {
        p.name
        for p in SDK.iterdir()
        if p.is_dir() and p.name.startswith("_") and p.name != "__pycache__"
    }
    assert set(_documented_rules()) == parts


def test_sdk_parts_import_only_what_the_doc_allows() -> None:
    rules = _documented_rules()
    broken = []
    for path in SDK.rglob("*.py"):
        part = _part(path)
        if part not in rules:
            continue
        for module in _imports(path, "errdiscount_sdk"):
            names = module.split(".")
            if names[0] == "server_stub":
                broken.append(f"{path.relative_to(ROOT)} imports {module}")
            if names[0] != "errdiscount_sdk" or len(names) < 2:
                continue
            target = names[1]
            if (
                target.startswith("_")
                and target not in {part, "_version"}
                and target not in rules[part]
            ):
                broken.append(f"{path.relative_to(ROOT)} ({part}) imports {module}")
    assert broken == []


def test_nothing_imports_the_cli_but_main() -> None:
    importers = [
        path.relative_to(ROOT)
        for path in SDK.rglob("*.py")
        if _part(path) not in {"_cli", "__main__"}
        and any(m.startswith("errdiscount_sdk._cli") for m in _imports(path, "errdiscount_sdk"))
    ]
    assert importers == []


def test_the_server_imports_only_public_sdk_modules() -> None:
    private = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in SERVER.rglob("*.py")
        for module in _imports(path, "server_stub")
        if module.startswith("errdiscount_sdk._")
    ]
    assert private == []
