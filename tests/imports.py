"""Which packages a piece of Python imports: shared by the environment and Colab tests."""

import ast


def top_level_imports(python: str) -> set[str]:
    """The top-level names of the modules that ``python`` (source code) imports."""
    names = set()
    for node in ast.walk(ast.parse(python)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names
