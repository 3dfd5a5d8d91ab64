"""Reading Yosys netlists the way OpenSTA 2019 needs them: its names for escaped
identifiers, and one ``assign`` per bit (its Verilog reader has no concatenations on the left
of an assign)."""

from __future__ import annotations

import re


def sta_name(name: str) -> str:
    """A Verilog identifier as OpenSTA names it: escaped identifiers lose ``\\`` and the space."""
    name = name.strip()
    return name[1:] if name.startswith("\\") else name


_ID = r"(?:\\\S+\s|[A-Za-z_][\w$]*)"
_TOK = re.compile(r"\s*(\\\S+(?=\s|$)|[A-Za-z_][\w$]*(?:\[\d+\])?|\d+'[hHbBdD][0-9a-fA-FxXzZ_]+|"
                  r"[{},])")


def _tokens(s: str) -> list[str]:
    out: list[str] = []
    pos = 0
    s = s.strip()
    while pos < len(s):
        m = _TOK.match(s, pos)
        if not m:
            raise ValueError(f"cannot read {s[pos:pos + 60]!r}")
        out.append(m.group(1))
        pos = m.end()
        while pos < len(s) and s[pos].isspace():
            pos += 1
    return out


def _bits(tokens: list[str]) -> list[str]:
    """Concatenation tokens -> one entry per bit, MSB first; constants become 1'b0 / 1'b1."""
    res: list[str] = []
    for t in tokens:
        if t in "{},":
            continue
        m = re.fullmatch(r"(\d+)'([hHbBdD])([0-9a-fA-FxXzZ_]+)", t)
        if m:
            w, base, v = int(m.group(1)), m.group(2).lower(), m.group(3).replace("_", "")
            if base == "h":
                s = "".join(format(int(c, 16), "04b") if c not in "xXzZ" else "0000" for c in v)
            elif base == "b":
                s = "".join(c if c in "01" else "0" for c in v)
            else:
                s = format(int(v), "b")
            s = s.rjust(w, "0")[-w:]
            res += [f"1'b{c}" for c in s]
        else:
            res.append(sta_name(t))
    return res


def sta_compatible(text: str) -> str:
    """Rewrite Yosys ``assign {a, b} = {c, 2'h1};`` into one ``assign`` per bit: OpenSTA 2019's
    Verilog reader has no concatenations on the left of an assign."""

    def rep(m: re.Match[str]) -> str:
        lhs = _bits(_tokens(m.group(1)))
        rhs = _bits(_tokens(m.group(2)))
        if len(lhs) != len(rhs):
            raise ValueError(f"assign with {len(lhs)} bits on the left, {len(rhs)} on the right: "
                             f"{m.group(0)[:200]!r}")
        out = []
        for a, b in zip(lhs, rhs, strict=True):
            a_v = a if re.fullmatch(r"[A-Za-z_][\w$]*", a) else f"\\{a} "
            if b.startswith("1'b"):
                b_v = b
            else:
                b_v = b if re.fullmatch(r"[A-Za-z_][\w$]*", b) else f"\\{b} "
            out.append(f"  assign {a_v} = {b_v};\n")
        return "".join(out)

    return re.sub(r"^  assign (\{.*?\}|\S+ ?) = (.*?);\n", rep, text, flags=re.M)


