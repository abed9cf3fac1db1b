"""The layering of src/tunelab, measured from the source (every import, function-level ones
included): no import cycles, no module importing a floor above its own, no stage that asks
which family it runs. `python tests/test_architecture.py` prints the numbers the README's
developer section quotes."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "tunelab"

# Floors, lowest first; a module may import its own floor and those below. The first
# matching prefix decides (module names relative to tunelab).
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("foundations", ("__init__", "atomic", "errors", "paths", "profiling", "shards", "music")),
    ("data and models", ("encodings", "corpora", "metrics", "models", "plotting")),
    ("training support", ("checkpoint", "resume", "convergence", "datamodule", "tracking")),
    ("families", ("families",)),
    ("configuration", ("config",)),
    ("stages", ("pipeline",)),
    ("entry points", ("experiments", "cli")),
]
STAGE_CODE = ("pipeline", "experiments", "cli", "config")


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """tunelab modules ``path`` imports anywhere in its body (``from a import b`` counts as
    a.b when that is a module, else a)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("tunelab")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tunelab"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in known else node.module)
    return {m for m in out if m in known}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: imports_of(p, known) - {m} for m, p in mods.items()}


def floor(module: str) -> int:
    rel = module.removeprefix("tunelab").lstrip(".") or "__init__"
    for i, (_, prefixes) in enumerate(FLOORS):
        if any(rel == p or rel.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} is on no floor: add it to FLOORS in {Path(__file__).name}")


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in g:
        if v not in index:
            visit(v)
    return found


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    return [f"{m} ({FLOORS[floor(m)][0]}) imports {d} ({FLOORS[floor(d)][0]})"
            for m, deps in sorted(g.items()) for d in sorted(deps) if floor(d) > floor(m)]


FAMILY_BRANCH = re.compile(r"family['\")\]]*\s*[!=]=|[!=]=\s*['\"]?\w*family|hasattr\(net")


def family_branches() -> list[str]:
    """Lines of stage code that branch on the model family (or probe the network's type)."""
    hits = []
    for m, p in modules().items():
        rel = m.removeprefix("tunelab.")
        if rel.split(".")[0] in STAGE_CODE:
            for n, line in enumerate(p.read_text().splitlines(), 1):
                if FAMILY_BRANCH.search(line):
                    hits.append(f"{p.relative_to(SRC.parent)}:{n}: {line.strip()}")
    return hits


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_no_upward_imports():
    assert upward_imports(graph()) == []


def test_stages_do_not_branch_on_the_family():
    assert family_branches() == []


def test_every_family_is_a_registered_package_with_a_docs_page():
    from tunelab.families import FAMILIES, Family, family

    for name in FAMILIES:
        fam = family(name)
        assert isinstance(fam, Family) and fam.name == name
        assert (PKG / "families" / name / "__init__.py").is_file()
        assert (SRC.parent / fam.docs).is_file(), f"{name}: {fam.docs} is missing"


def test_dvc_stages_of_a_family_name_its_folder():
    import yaml

    stages = yaml.safe_load((SRC.parent / "dvc.yaml").read_text())["stages"]
    by_family = {"jukebox": "jukebox", "musenet": "musenet", "vae": "music_vae", "jsb": "music_transformer",
                 "accompaniment": "music_transformer"}  # the first key in the stage name decides
    for stage, spec in stages.items():
        if not stage.startswith(("train", "sample", "evaluate")):
            continue
        fam = next((f for key, f in by_family.items() if key in stage), None)
        deps = [str(d) for d in spec.get("do", spec).get("deps", [])]
        # the per-corpus matrix runs every family in pipeline.models
        wanted = [f"src/tunelab/families/{fam}"] if fam else [
            f"src/tunelab/families/{f}" for f in ("melody_rnn", "music_transformer", "performance_rnn")]
        for w in wanted:
            assert w in deps, f"dvc.yaml stage {stage} does not depend on {w}"


def report() -> str:
    g = graph()
    edges = sum(len(d) for d in g.values())
    return "\n".join([
        f"modules: {len(g)}, import edges: {edges}",
        f"import cycles: {len(cycles(g))}",
        f"upward imports: {len(upward_imports(g))}",
        f"family branches in stage code: {len(family_branches())}",
    ])


if __name__ == "__main__":
    print(report())
