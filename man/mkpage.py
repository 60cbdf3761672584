#!/usr/bin/env python3
"""Expand a man page template (*.scd.in) into scdoc source.

Why not configure_file(): the daemon pages differ in whole paragraphs (state directory,
gatewayd's public listener, each daemon's role), which plain @VAR@ substitution cannot
express without scattering text over many fragment files. This keeps one template per
page kind, readable top to bottom.

Template syntax, on lines of their own:
    @if WORD [WORD...]   keep the following lines if any WORD is a set flag
    @if !WORD            keep them if WORD is not set
    @else / @endif       as expected; blocks nest
Anywhere: @KEY@ is replaced by the value given as KEY=VALUE. An @UPPER_CASE@ token
without a value is an error, so a typo cannot leak into an installed page.

Usage: mkpage.py TEMPLATE OUTPUT [--flag WORD]... [KEY=VALUE]...
"""

import re
import sys

TOKEN = re.compile(r"@([A-Z][A-Z0-9_]*)@")
DIRECTIVE = re.compile(r"@[a-z]+\b")  # a misspelt @if/@else/@endif


def fail(where, msg):
    sys.exit(f"{where}: {msg}")


def condition(words, flags, where):
    if not words:
        fail(where, "@if needs at least one word")
    result = False
    for word in words:
        if word.startswith("!"):
            result = result or word[1:] not in flags
        else:
            result = result or word in flags
    return result


def expand(path, lines, flags, values):
    out = []
    # Each entry: (this block is active, its @if was reached while active, seen @else).
    stack = []
    active = True
    for lineno, line in enumerate(lines, 1):
        where = f"{path}:{lineno}"
        stripped = line.strip()
        if stripped.startswith("@if ") or stripped == "@if":
            parent = active
            taken = condition(stripped.split()[1:], flags, where)
            stack.append((active, taken, False))
            active = parent and taken
            continue
        if stripped == "@else":
            if not stack or stack[-1][2]:
                fail(where, "@else without @if")
            parent, taken, _ = stack[-1]
            stack[-1] = (parent, taken, True)
            active = parent and not taken
            continue
        if stripped == "@endif":
            if not stack:
                fail(where, "@endif without @if")
            active = stack.pop()[0]
            continue
        if DIRECTIVE.match(stripped):
            fail(where, f"unknown directive {stripped.split()[0]}")
        if not active:
            continue

        def substitute(match):
            key = match.group(1)
            if key not in values:
                fail(where, f"no value for @{key}@")
            return values[key]

        out.append(TOKEN.sub(substitute, line))
    if stack:
        fail(path, "@if without @endif at end of file")
    return out


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    template, output = argv[1], argv[2]
    flags, values = set(), {}
    args = iter(argv[3:])
    for arg in args:
        if arg == "--flag":
            flags.add(next(args, ""))
        elif "=" in arg:
            key, value = arg.split("=", 1)
            values[key] = value
        else:
            sys.exit(f"mkpage.py: bad argument {arg!r}")
    with open(template, encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    text = "".join(expand(template, lines, flags, values))
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main(sys.argv)
