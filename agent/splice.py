"""Putting refined code back: a whole file, or just the functions the model rewrote.

A function is named by its qualified name in the file (`parse`, `Parser.parse`, `outer.inner`). The answer may
be indented like the prompt's method, may wrap the method in its class, and may rewrite several functions of
the same file; each rewritten def replaces the def of the same qualified name, at that def's indentation, and
keeps the original's decorators and docstring where the answer left them out.
"""

from __future__ import annotations

import ast
import io
import textwrap
import tokenize

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


class SpliceError(ValueError):
    """The refined code does not fit the file (does not parse, or lacks the function under repair)."""


def split_by_file(refined: str, focus_file: str, sources: dict[str, str]) -> dict[str, str]:
    """The answer's top-level classes and functions that the focus file lacks but exactly one other file of
    `sources` defines (a subclass's attribute, a helper in another module) go to that file; the rest stays with
    the focus file. File -> the answer's code for it."""
    try:
        answer = ast.parse(textwrap.dedent(refined))
    except SyntaxError:
        return {focus_file: refined}
    lines = textwrap.dedent(refined).splitlines(keepends=True)
    here = _top_level_names(sources.get(focus_file, ""))
    routed: dict[str, list[str]] = {}
    kept: list[str] = []
    for statement in answer.body:
        text = _shift("".join(lines[min([statement.lineno, *(d.lineno for d in getattr(statement, "decorator_list", []))]) - 1:
                                     statement.end_lineno]), statement.col_offset, "")
        name = getattr(statement, "name", None)
        owners = [] if name is None or name in here else [
            path for path, source in sources.items() if path != focus_file
            and (f"class {name}" in source or f"def {name}" in source) and name in _top_level_names(source)]
        if len(owners) == 1:
            routed.setdefault(owners[0], []).append(text)
        else:
            kept.append(text)
    imports = [t for t in kept if t.startswith(("import ", "from "))]
    return {focus_file: "\n".join(kept), **{path: "\n".join([*imports, *texts]) for path, texts in routed.items()}}


def _top_level_names(source: str) -> set[str]:
    try:
        return {n.name for n in ast.parse(source).body if isinstance(n, (*_DEFS, ast.ClassDef))}
    except SyntaxError:
        return set()


def apply_refined(file_source: str, refined: str, function: str | None) -> str:
    """With `function` (a qualified name), only that def and any other def of the file the answer rewrote are
    replaced, so the rest of a project file stays as it was; without it, the whole file; with "", whatever the
    answer brings that fits the file (part of an answer routed here from another file's prompt)."""
    if refined.startswith((" ", "\t")):  # indented like the prompt's method: by its first line's indentation
        refined = refined.expandtabs(8)
        first = next(line for line in refined.splitlines() if line.strip())
        refined = _shift(refined, len(first) - len(first.lstrip()), "")
    try:
        answer = ast.parse(refined)
    except SyntaxError as exc:
        raise SpliceError(f"the refined code does not parse: line {exc.lineno}: {exc.msg}") from exc
    if function is None:
        return refined if refined.endswith("\n") else refined + "\n"
    targets = qualified_defs(ast.parse(file_source))
    if function not in targets:  # a plain name: the one def of that name, wherever it is
        named = [q for q in targets if q.rsplit(".", 1)[-1] == function]
        function = named[0] if len(named) == 1 else function
    adding = function not in targets and function != ""  # a name the code lacks (a test uses it): the answer adds it
    rewritten = _answer_defs(answer, function, targets)
    patched = _replace(file_source, targets, {name: (node, refined) for name, node in rewritten.items()})
    patched = _merge_imports(patched, answer)
    used = {id(node) for name, node in rewritten.items() if name in targets}
    before_new_functions = patched
    patched, added = _merge_rest(patched, answer, refined, used)
    if adding and function not in added:
        raise SpliceError(f"the refined code does not define {function}")
    # An answer may leave the shown function as it is and fix what it reads (a constant, a new method beside it);
    # one that rewrites nothing that exists (new functions at most: the function renamed) is unusable.
    if function and function not in rewritten and not adding and not (used or _changed_beyond_new_functions(
            before_new_functions, patched, added)):
        raise SpliceError(f"the refined code does not define {function.rsplit('.', 1)[-1]}()")
    return patched


def _merge_rest(source: str, answer: ast.Module, refined: str, used: set[int]) -> tuple[str, set[str]]:
    """What else the answer brings, beyond the defs it rewrote: module-level assignments (a constant, a
    pattern table) replace the file's of the same name or come after its imports; new functions and classes
    go at the end of the module (before a `__main__` block); in a class wrapper of an existing class, class
    attributes replace the class's of the same name and new methods go at the end of the class. Returns the
    source and the names the answer defines (`name`, `Class.name`)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    answer_lines = refined.splitlines(keepends=True)
    edits: list[tuple[int, int, int, str]] = []  # (position, 0 replace / 1 insert, end, text)
    defined: set[str] = set()
    module_assigned = _assigned(tree.body)
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    top_names = {node.name for node in tree.body if isinstance(node, (*_DEFS, ast.ClassDef))}
    seen: dict[str, int] = {}
    repeated: set[str] = set()
    for statement in answer.body:
        name = _assigned_name(statement)
        if name is not None and (text := _statement_text(statement, answer_lines)) in repeated:
            continue  # the same context shown twice (two functions reading one constant), answered twice
        if name is not None:  # the answer's k-th assignment of a name stands for the file's k-th
            repeated.add(text)
            defined.add(name)
            nth = seen[name] = seen.get(name, -1) + 1
            olds = module_assigned.get(name, [])
            _assign_edit(edits, statement, answer_lines, olds[nth] if nth < len(olds) else None, lines, "",
                         _after_imports(tree) if not olds else olds[-1].end_lineno)
        elif isinstance(statement, ast.ClassDef) and statement.name in classes and id(statement) not in used:
            owner = classes[statement.name]
            indent = _indent_of(lines[owner.body[0].lineno - 1])
            assigned, methods = _assigned(owner.body), {n.name for n in owner.body if isinstance(n, _DEFS)}
            for member in statement.body:
                member_name = _assigned_name(member)
                if member_name is not None:
                    defined.add(f"{owner.name}.{member_name}")
                    olds = assigned.get(member_name, [])
                    _assign_edit(edits, member, answer_lines, olds[0] if olds else None, lines, indent,
                                 owner.end_lineno)
                elif isinstance(member, _DEFS) and id(member) not in used and member.name not in methods:
                    defined.add(f"{owner.name}.{member.name}")
                    edits.append((owner.end_lineno, 1, owner.end_lineno,
                                  "\n" + _reindent(_statement_text(member, answer_lines), indent)))
        elif isinstance(statement, (*_DEFS, ast.ClassDef)) and id(statement) not in used \
                and statement.name not in top_names:
            defined.add(statement.name)
            at = _module_end(tree, len(lines))
            text = _statement_text(statement, answer_lines)
            edits.append((at, 1, at, text + "\n\n" if at < len(lines) else "\n\n" + text))
        elif isinstance(statement, (*_DEFS, ast.ClassDef)):
            defined.add(statement.name)
        elif isinstance(statement, ast.If | ast.Try | ast.With) and _statement_text(statement, answer_lines) \
                not in source:
            # A new conditional block (a def per Python version, a fallback import): at the end of the module.
            defined |= _bound_names(statement)
            at = _module_end(tree, len(lines))
            text = _statement_text(statement, answer_lines)
            edits.append((at, 1, at, text + "\n\n" if at < len(lines) else "\n\n" + text))
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    # Bottom up; at one position a replacement before insertions, and insertions in the answer's order.
    order = sorted(range(len(edits)), key=lambda i: (-edits[i][0], edits[i][1], -i))
    for position, _, end, text in (edits[i] for i in order):
        lines[position:end] = [text if text.endswith("\n") else text + "\n"]
    return "".join(lines), defined


def _changed_beyond_new_functions(before: str, after: str, added: set[str]) -> bool:
    """Whether `after` differs from `before` by more than new top-level functions and classes."""
    tree = ast.parse(after)
    new = {n.name for n in tree.body if isinstance(n, (*_DEFS, ast.ClassDef))} - {
        n.name for n in ast.parse(before).body if isinstance(n, (*_DEFS, ast.ClassDef))}
    kept = [n for n in tree.body if not (isinstance(n, (*_DEFS, ast.ClassDef)) and n.name in new & added)]
    return ast.dump(ast.Module(body=kept, type_ignores=[])) != ast.dump(ast.parse(before))


def _bound_names(statement: ast.stmt) -> set[str]:
    """Names a block binds at its own level: defs, classes and plain assignments in any branch."""
    bound = set()
    for node in ast.walk(statement):
        if isinstance(node, (*_DEFS, ast.ClassDef)):
            bound.add(node.name)
        elif (name := _assigned_name(node) if isinstance(node, ast.stmt) else None) is not None:
            bound.add(name)
    return bound


def _assigned(body: list[ast.stmt]) -> dict[str, list[ast.stmt]]:
    found: dict[str, list[ast.stmt]] = {}
    for statement in body:
        name = _assigned_name(statement)
        if name is not None:
            found.setdefault(name, []).append(statement)
    return found


def _assigned_name(statement: ast.stmt) -> str | None:
    """The name a plain `NAME = ...` / `NAME: T = ...` statement binds."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
        return statement.targets[0].id
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) and statement.value:
        return statement.target.id
    return None


def _assign_edit(edits: list, statement: ast.stmt, answer_lines: list[str], old: ast.stmt | None,
                 lines: list[str], indent: str, insert_at: int) -> None:
    text = _reindent(_statement_text(statement, answer_lines), indent)
    if old is None:
        edits.append((insert_at, 1, insert_at, text))
    elif "".join(lines[old.lineno - 1:old.end_lineno]) != text:
        edits.append((old.lineno - 1, 0, old.end_lineno, text))


def _statement_text(statement: ast.stmt, answer_lines: list[str]) -> str:
    start = min([statement.lineno, *(d.lineno for d in getattr(statement, "decorator_list", []))])
    return _shift("".join(answer_lines[start - 1:statement.end_lineno]), statement.col_offset, "")


def _reindent(text: str, indent: str) -> str:
    return _shift(text, 0, indent)


def _shift(text: str, remove: int, add: str) -> str:
    """Code moved left by `remove` columns and right by `add`, leaving the inside of multi-line strings as it
    is (a docstring or a template with lines at column 0 is data: it neither blocks the move nor moves)."""
    lines = text.splitlines(keepends=True)
    inside: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                inside.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # not tokenizable as a whole: every line moves
    moved = []
    for row, line in enumerate(lines, start=1):
        if row in inside or not line.strip():
            moved.append(line)
            continue
        cut = len(line) - len(line.lstrip(" \t"))
        moved.append(add + line[min(cut, remove):])
    return "".join(moved)


def _after_imports(tree: ast.Module) -> int:
    anchors = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    if not anchors and tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Constant):
        anchors = [tree.body[0]]
    return anchors[-1].end_lineno if anchors else 0


def _module_end(tree: ast.Module, length: int) -> int:
    """Before a trailing `if __name__ == "__main__":` block, else the end."""
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.If) and "__name__" in ast.unparse(last.test):
        return last.lineno - 1
    return length


def _merge_imports(source: str, answer: ast.Module) -> str:
    """Top-level imports the answer brings that the file lacks (a fix that needs a new name) go after the
    file's last top-level import (or its docstring and __future__ imports)."""
    tree = ast.parse(source)
    have = {ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)}
    new = [ast.unparse(node) for node in answer.body
           if isinstance(node, ast.Import | ast.ImportFrom) and ast.unparse(node) not in have]
    if not new:
        return source
    anchors = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    if not anchors and tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Constant):
        anchors = [tree.body[0]]  # the module docstring
    at = anchors[-1].end_lineno if anchors else 0
    lines = source.splitlines(keepends=True)
    lines[at:at] = [line + "\n" for line in new]
    return "".join(lines)


def qualified_defs(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every def of a module by qualified name (`Class.method`, `outer.inner`); the first of duplicates."""
    found: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (*_DEFS, ast.ClassDef)):
                name = prefix + child.name
                if isinstance(child, _DEFS):
                    found.setdefault(name, child)
                visit(child, name + ".")
            elif not isinstance(child, ast.expr):
                visit(child, prefix)  # defs under if/try at the same level

    visit(tree, "")
    return found


def _answer_defs(answer: ast.Module, function: str, targets: dict[str, ast.AST]) -> dict[str, ast.AST]:
    """The answer's defs, each under the qualified name it replaces in the file. A def at the answer's top
    level named like the function under repair's last part is that function (a method answered without its
    class); otherwise names are matched as qualified in the answer (a class wrapper included)."""
    leaf = function.rsplit(".", 1)[-1]
    matched: dict[str, ast.AST] = {}
    for name, node in qualified_defs(answer).items():
        if name == leaf and "." not in name:
            matched[function] = node
        elif name in targets:
            matched.setdefault(name, node)
        elif "." in function and "." not in name and name in _siblings(function, targets):
            matched.setdefault(function.rsplit(".", 1)[0] + "." + name, node)  # another method of that class
    # A def inside another rewritten def goes with it (replacing both would overlap).
    return {name: node for name, node in matched.items()
            if not any(name.startswith(other + ".") for other in matched if other != name)}


def _siblings(function: str, targets: dict[str, ast.AST]) -> set[str]:
    owner = function.rsplit(".", 1)[0] + "."
    return {name[len(owner):] for name in targets if name.startswith(owner) and "." not in name[len(owner):]}


def _replace(source: str, targets: dict[str, ast.AST], new: dict[str, tuple[ast.AST, str]]) -> str:
    lines = source.splitlines(keepends=True)
    chosen = [(targets[name], node, text) for name, (node, text) in new.items() if name in targets]
    for old, node, text in sorted(chosen, key=lambda item: -item[0].lineno):
        start = min([old.lineno, *(d.lineno for d in old.decorator_list)]) - 1
        first = lines[old.lineno - 1]
        indent = first[: len(first) - len(first.lstrip())]
        body = _def_text(node, text, old, source)
        block = _shift(body, 0, indent)
        lines[start:old.end_lineno] = [block if block.endswith("\n") else block + "\n"]
    return "".join(lines)


def _def_text(node: ast.AST, answer: str, old: ast.AST, source: str) -> str:
    """The answer's def at column 0, with the original's decorators and docstring where it has none."""
    answer_lines = answer.splitlines(keepends=True)
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
    text = _shift("".join(answer_lines[start:node.end_lineno]), node.col_offset, "")
    if not node.decorator_list and old.decorator_list:
        old_lines = source.splitlines(keepends=True)
        decorators = textwrap.dedent("".join(old_lines[min(d.lineno for d in old.decorator_list) - 1:old.lineno - 1]))
        text = decorators + text
    docstring = ast.get_docstring(old, clean=False)
    if docstring is not None and ast.get_docstring(node, clean=False) is None and node.body:
        old_lines = source.splitlines(keepends=True)
        doc_node = old.body[0]
        doc = textwrap.dedent("".join(old_lines[doc_node.lineno - 1:doc_node.end_lineno]))
        text_lines = text.splitlines(keepends=True)
        first_statement = ast.parse(text).body[0].body[0]  # type: ignore[attr-defined]
        at = first_statement.lineno - 1
        body_indent = _indent_of(text_lines[at])
        text_lines[at:at] = [body_indent + line if line.strip() else line for line in doc.splitlines(keepends=True)]
        text = "".join(text_lines)
    return text


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]
