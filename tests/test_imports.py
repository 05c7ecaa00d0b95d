"""No import cycles: every module imports on its own, and the engine's import graph has no loop.

A cycle works or breaks depending on which module a program happens to import first, so
two guards: each module of tinygen is imported alone in a fresh interpreter, and the
imports written in the engine's files (at the top or inside functions) form no loop. The
layers read bottom-up, as ``docs/README.md`` walks them: ``backend``/``cpu``, ``autograd``,
``ops``, ``kernels``, ``nn``; ``kernels/`` never imports ``nn/``.
"""

import ast
import concurrent.futures
import os
import pathlib
import subprocess
import sys

import tinygen

PACKAGE = pathlib.Path(tinygen.__file__).parent
# the engine: what the acyclic check covers (models/, the training run and testing/ sit on top)
ENGINE = ("backend", "cpu", "errors", "random", "creation", "serialization", "autograd", "ops", "kernels",
          "nn", "optim", "data")  # fmt: skip


def module_files():
    """``{dotted module name: path}`` of every module in tinygen but ``__main__``."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported(path, modules):
    """The tinygen modules that ``path`` imports anywhere in it (``from a import b``: ``a.b`` if a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in modules else node.module)
    return {name for name in found if name in modules}


def import_graph():
    """Each engine module (packages' ``__init__`` left out) and the engine modules it imports."""
    modules = module_files()
    packages = {name for name, path in modules.items() if path.name == "__init__.py"}

    def in_engine(name):
        return name not in packages and name.split(".")[1] in ENGINE

    return {
        name: {other for other in imported(path, modules) if in_engine(other) and other != name}
        for name, path in modules.items()
        if in_engine(name)
    }


def find_cycle(graph):
    """One import loop ``[a, b, ..., a]`` of ``graph``, or None (depth-first, without recursion)."""
    state = {}  # absent: not seen; 1: on the current path; 2: done
    for start in graph:
        if start in state:
            continue
        path, todo = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while todo:
            following = next(todo[-1], None)
            if following is None:
                state[path.pop()] = 2
                todo.pop()
            elif state.get(following) == 1:
                return path[path.index(following) :] + [following]
            elif following not in state:
                state[following] = 1
                path.append(following)
                todo.append(iter(sorted(graph[following])))
    return None


def test_the_engine_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_kernels_do_not_import_nn():
    graph = import_graph()
    wrong = sorted(
        f"{name} imports {other}"
        for name, others in graph.items()
        if name.startswith("tinygen.kernels.")
        for other in others
        if other.startswith("tinygen.nn")
    )
    assert not wrong, wrong


def test_the_convolution_and_its_adjoint_are_one_file():
    # conv2d's backward is conv_transpose2d and the other way round: in two files they import each other
    from tinygen.kernels import conv

    assert conv.conv2d.__module__ == conv.conv_transpose2d.__module__ == "tinygen.kernels.conv"
    assert not (PACKAGE / "kernels" / "conv2d.py").exists()
    assert not (PACKAGE / "kernels" / "conv_transpose2d.py").exists()


def _import_alone(name):
    done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True)
    return name, done.returncode, done.stderr


def test_every_module_imports_alone_in_a_fresh_interpreter():
    workers = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(_import_alone, module_files()))
    failures = [f"{name}:\n{stderr.strip().splitlines()[-1]}" for name, code, stderr in results if code]
    assert not failures, "\n".join(failures)
