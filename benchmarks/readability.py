"""How readable the DCGAN scripts are, as a reader with the tutorial open sees them: where the
tutorial's statements sit and whether they come in its order, the first and last of them, the
file's length, the longest functions, the `for epoch` loop's length, lines over 100 characters.

    python benchmarks/readability.py [dcgan_celeba.py dcgan_mnist.py]

Prints figures only and always exits 0 (.ci/run runs it after the tests): lengths are for a
reviewer to weigh, not a reason to fail a build. The tutorial's statements come from the
tutorial-order tests (tests/test_dcgan_celeba_train.py's TUTORIAL_STATEMENTS,
tests/test_dcgan_mnist_train.py's COOKBOOK), read without importing them; those tests still
fail when the order breaks.
"""
import ast
import io
import os
import re
import sys
import tokenize
from bisect import bisect_right

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATEMENTS = {"dcgan_celeba.py": ("tests/test_dcgan_celeba_train.py", "TUTORIAL_STATEMENTS"),
              "dcgan_mnist.py": ("tests/test_dcgan_mnist_train.py", "COOKBOOK")}
LONG = 100  # characters


def statements(test_file, name):
    """The list `name` of test_file: [(the tutorial's statement, what may stand for it, ...)]."""
    with open(os.path.join(ROOT, test_file)) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name
                                                for t in node.targets):
            return [(s,) if isinstance(s, str) else tuple(s)
                    for s in ast.literal_eval(node.value)]
    raise LookupError(f"{test_file} has no {name}")


def squeeze(text):
    return re.sub(r"\s+", "", text)


def code_text(source):
    """The source without whitespace or comments, and where each line starts in it."""
    code = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            code[row - 1] = code[row - 1][:col]
    starts, text = [], ""
    for line in code:
        starts.append(len(text))
        text += squeeze(line)
    return text, starts


def in_order(candidates):
    """The longest chain of statements, each at one of its candidate positions, positions
    increasing: [(statement index, position)] (as the celeba tutorial-order test)."""
    best = {}  # (k, position) -> (length, previous (k, position))
    for k, positions in enumerate(candidates):
        for pos in positions:
            prev = max(((best[key][0], key) for key in best if key[0] < k and key[1] < pos),
                       default=(0, None))
            best[(k, pos)] = (prev[0] + 1, prev[1])
    key = max(best, key=lambda key: best[key][0], default=None)
    chain = []
    while key is not None:
        chain.append(key)
        key = best[key][1]
    return chain[::-1]


def report(script):
    with open(os.path.join(ROOT, script)) as f:
        source = f.read()
    lines = source.splitlines()
    print(f"== {script}: {len(lines)} lines")
    wanted = statements(*STATEMENTS[script])
    text, starts = code_text(source)
    line_of = lambda pos: bisect_right(starts, pos)  # noqa: E731 (1-based line numbers)
    candidates = [sorted({m.start() for n in {squeeze(s) for s in options}
                          for m in re.finditer(re.escape(n), text)}) for options in wanted]
    chain = in_order(candidates)
    chained = dict(chain)
    missing = [options[0] for options, c in zip(wanted, candidates) if not c]
    print(f"the tutorial's statements: {len(wanted) - len(missing)} of {len(wanted)} found, "
          f"{len(chain)} in its order")
    if chain:
        print(f"  the first at line {line_of(chain[0][1])}: {wanted[chain[0][0]][0]}")
        print(f"  the last at line {line_of(chain[-1][1])}: {wanted[chain[-1][0]][0]}")
    appendix = next((n + 1 for n, line in enumerate(lines) if line.startswith("# == Appendix")),
                    None)
    if appendix:
        print(f"  the first appendix at line {appendix}")
    for statement in missing:
        print(f"  not found: {statement}")
    for k, (options, c) in enumerate(zip(wanted, candidates)):
        if c and k not in chained:
            print(f"  out of order: {options[0]} (line {', '.join(str(line_of(p)) for p in c)})")
    tree = ast.parse(source)
    functions = sorted(((node.end_lineno - node.lineno + 1, node.name, node.lineno)
                        for node in ast.walk(tree)
                        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))),
                       reverse=True)
    print("longest functions: " + ", ".join(f"{name} {n} lines (line {at})"
                                            for n, name, at in functions[:5]))
    for node in ast.walk(tree):
        if isinstance(node, ast.For) and getattr(node.target, "id", None) == "epoch":
            print(f"the `for epoch` loop: {node.end_lineno - node.lineno + 1} lines "
                  f"(lines {node.lineno}-{node.end_lineno})")
    long = [n + 1 for n, line in enumerate(lines) if len(line) > LONG]
    print(f"lines over {LONG} characters: {len(long)}" + (f" (lines {long})" if long else ""))


def main():
    for script in sys.argv[1:] or list(STATEMENTS):
        try:
            report(script)
        except Exception as e:  # a report, never a failure
            print(f"{script}: cannot report ({type(e).__name__}: {e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
