"""Office Math (OMML, the ``m:`` namespace of Word and PowerPoint) to LaTeX.

Each OMML object (fraction, script, radical, n-ary operator, delimiter,
function, limit, accent, matrix, ...) becomes its LaTeX construct and each
mathematical character its command (``π`` → ``\\pi``), so that equations keep
their meaning in text and Markdown output. Objects it does not know contribute
the LaTeX of their children, so no text is ever lost.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

M_NS = "http://schemas.openxmlformats.org/officeDocument/2006/math"
_M = f"{{{M_NS}}}"
_W_T = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}t"

_GREEK = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "varsigma", "sigma", "tau", "upsilon",
    "phi", "chi", "psi", "omega",
]  # fmt: skip
#: Capital Greek letters that LaTeX writes differently from Latin ones.
_CAPITALS = {
    "gamma",
    "delta",
    "theta",
    "lambda",
    "xi",
    "pi",
    "sigma",
    "upsilon",
    "phi",
    "psi",
    "omega",
}
_SYMBOLS: dict[str, str] = {
    **{chr(0x3B1 + i): f"\\{name}" for i, name in enumerate(_GREEK) if name != "omicron"},
    **{
        chr(0x391 + i): f"\\{name.capitalize()}"
        for i, name in enumerate(_GREEK)
        if name in _CAPITALS
    },
    "ϵ": "\\epsilon", "ε": "\\varepsilon", "ϑ": "\\vartheta", "ϕ": "\\phi", "φ": "\\varphi",
    "ϖ": "\\varpi", "ϱ": "\\varrho",
    "∞": "\\infty", "≤": "\\leq", "≥": "\\geq", "≠": "\\neq", "≈": "\\approx", "±": "\\pm",
    "∓": "\\mp", "×": "\\times", "÷": "\\div", "⋅": "\\cdot", "·": "\\cdot", "∙": "\\cdot",
    "→": "\\rightarrow", "←": "\\leftarrow", "↔": "\\leftrightarrow", "⇒": "\\Rightarrow",
    "⇐": "\\Leftarrow", "⇔": "\\Leftrightarrow", "↦": "\\mapsto", "∈": "\\in", "∉": "\\notin",
    "∋": "\\ni", "⊂": "\\subset", "⊆": "\\subseteq", "⊃": "\\supset", "⊇": "\\supseteq",
    "∪": "\\cup", "∩": "\\cap", "∅": "\\emptyset", "∀": "\\forall", "∃": "\\exists",
    "∂": "\\partial", "∇": "\\nabla", "∝": "\\propto", "∼": "\\sim", "≡": "\\equiv",
    "≅": "\\cong", "≪": "\\ll", "≫": "\\gg", "⊥": "\\perp", "∥": "\\parallel", "∠": "\\angle",
    "…": "\\ldots", "⋯": "\\cdots", "⋮": "\\vdots", "⋱": "\\ddots", "ℏ": "\\hbar", "ℓ": "\\ell",
    "∧": "\\wedge", "∨": "\\vee", "¬": "\\neg", "⊕": "\\oplus", "⊗": "\\otimes", "∘": "\\circ",
    "⟨": "\\langle", "⟩": "\\rangle", "°": "^{\\circ}", "′": "'", "″": "''", "−": "-",
    "∗": "*", "√": "\\surd", "ℝ": "\\mathbb{R}", "ℕ": "\\mathbb{N}", "ℤ": "\\mathbb{Z}",
    "ℚ": "\\mathbb{Q}", "ℂ": "\\mathbb{C}", "\u200b": "",
    # Characters LaTeX reads as syntax; "$" would also end the inline math around it.
    "{": "\\{", "}": "\\}", "$": "\\$", "%": "\\%", "#": "\\#", "&": "\\&",
}  # fmt: skip
_NARY = {
    "∑": "\\sum", "∏": "\\prod", "∐": "\\coprod", "⋃": "\\bigcup", "⋂": "\\bigcap",
    "⋁": "\\bigvee", "⋀": "\\bigwedge", "⨁": "\\bigoplus", "⨂": "\\bigotimes", "∫": "\\int",
    "∬": "\\iint", "∭": "\\iiint", "∮": "\\oint", "∯": "\\oiint", "∰": "\\oiiint",
}  # fmt: skip
_ACCENTS = {
    "\u0302": "\\hat", "\u0303": "\\tilde", "\u0307": "\\dot", "\u0308": "\\ddot",
    "\u20d7": "\\vec", "\u0304": "\\bar", "\u0305": "\\overline", "\u0306": "\\breve",
    "\u030c": "\\check", "\u0301": "\\acute", "\u0300": "\\grave", "\u20d6": "\\overleftarrow",
}  # fmt: skip
_FUNCTIONS = frozenset({
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh",
    "tanh", "coth", "log", "ln", "lg", "exp", "lim", "liminf", "limsup", "max", "min", "sup",
    "inf", "det", "gcd", "deg", "dim", "ker", "arg", "hom", "Pr",
})  # fmt: skip
_DELIMITERS = {
    "{": "\\{", "}": "\\}", "": ".", "|": "|", "‖": "\\|", "⟨": "\\langle", "⟩": "\\rangle",
    "⌈": "\\lceil", "⌉": "\\rceil", "⌊": "\\lfloor", "⌋": "\\rfloor",
}  # fmt: skip


def to_latex(element: etree._Element) -> str:
    """LaTeX for an ``m:oMath`` or ``m:oMathPara`` element (without ``$`` delimiters)."""
    if element.tag == f"{_M}oMathPara":
        lines = [_children(math) for math in element.iter(f"{_M}oMath")]
        return " \\\\ ".join(line.strip() for line in lines if line.strip())
    return _children(element).strip()


def _children(element: etree._Element | None) -> str:
    if element is None:
        return ""
    return "".join(_convert(child) for child in element if isinstance(child.tag, str))


def _convert(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith(_M):
        # Word runs (w:r) may sit inside math; their text still counts.
        return "".join(_symbols(t.text or "") for t in element.iter(_W_T))
    name = tag[len(_M) :]
    if name.endswith("Pr"):
        return ""
    handler = _HANDLERS.get(name)
    return handler(element) if handler else _children(element)


def _part(element: etree._Element, name: str) -> str:
    return _children(element.find(f"{_M}{name}")).strip()


def _prop(element: etree._Element, prop: str) -> str | None:
    """The ``m:val`` of ``<m:XPr><m:prop m:val=.../></m:XPr>``; None when the property is absent."""
    found = element.find(f"{_M}{etree.QName(element).localname}Pr/{_M}{prop}")
    return None if found is None else found.get(f"{_M}val", "")


def _flag(element: etree._Element, prop: str) -> bool:
    """An on/off property: present without a value means on."""
    value = _prop(element, prop)
    return value is not None and value not in {"0", "off", "false"}


def _symbols(text: str) -> str:
    out: list[str] = []
    for char in text:
        latex = _SYMBOLS.get(char, char)
        if latex.startswith("\\") and latex[-1].isalpha():
            latex += " "
        out.append(latex)
    return "".join(out)


def _run(element: etree._Element) -> str:
    text = "".join(t.text or "" for t in element.iter(f"{_M}t", _W_T))
    style = element.find(f"{_M}rPr/{_M}sty")
    if style is not None and style.get(f"{_M}val") == "p" and text.strip() in _FUNCTIONS:
        return f"\\{text.strip()} "
    return _symbols(text)


def _braced(text: str) -> str:
    """A base for scripts: single symbols bare, anything longer in braces."""
    return (
        text
        if len(text) <= 1 or (text.startswith("\\") and text[1:].strip().isalpha())
        else f"{{{text}}}"
    )


def _scripts(sub: str | None, sup: str | None) -> str:
    return (f"_{{{sub}}}" if sub else "") + (f"^{{{sup}}}" if sup else "")


def _sup(element: etree._Element) -> str:
    return _braced(_part(element, "e")) + _scripts(None, _part(element, "sup"))


def _sub(element: etree._Element) -> str:
    return _braced(_part(element, "e")) + _scripts(_part(element, "sub"), None)


def _subsup(element: etree._Element) -> str:
    return _braced(_part(element, "e")) + _scripts(_part(element, "sub"), _part(element, "sup"))


def _prescript(element: etree._Element) -> str:
    return "{}" + _scripts(_part(element, "sub"), _part(element, "sup")) + _part(element, "e")


def _fraction(element: etree._Element) -> str:
    num, den = _part(element, "num"), _part(element, "den")
    kind = _prop(element, "type")
    if kind == "lin":
        return f"{num}/{den}"
    if kind == "noBar":
        return f"\\genfrac{{}}{{}}{{0pt}}{{}}{{{num}}}{{{den}}}"
    return f"\\frac{{{num}}}{{{den}}}"


def _radical(element: etree._Element) -> str:
    degree = _part(element, "deg")
    if degree and not _flag(element, "degHide"):
        return f"\\sqrt[{degree}]{{{_part(element, 'e')}}}"
    return f"\\sqrt{{{_part(element, 'e')}}}"


def _nary(element: etree._Element) -> str:
    char = _prop(element, "chr") or "∫"
    operator = _NARY.get(char, _symbols(char))
    sub = None if _flag(element, "subHide") else _part(element, "sub")
    sup = None if _flag(element, "supHide") else _part(element, "sup")
    return f"{operator}{_scripts(sub, sup)} {_part(element, 'e')}"


def _delimiter(element: etree._Element) -> str:
    begin = _prop(element, "begChr")
    begin = "(" if begin is None else begin
    end = _prop(element, "endChr")
    end = ")" if end is None else end
    separator = _symbols(_prop(element, "sepChr") or "|")
    inner = f" {separator} ".join(_children(e).strip() for e in element.findall(f"{_M}e"))
    return f"\\left{_DELIMITERS.get(begin, begin)}{inner}\\right{_DELIMITERS.get(end, end)}"


def _function(element: etree._Element) -> str:
    name = _part(element, "fName")
    if name.isalpha():
        name = f"\\{name}" if name in _FUNCTIONS else f"\\operatorname{{{name}}}"
    return f"{name}{{{_part(element, 'e')}}}"


def _lower_limit(element: etree._Element) -> str:
    return f"{_braced(_part(element, 'e'))}_{{{_part(element, 'lim')}}}"


def _upper_limit(element: etree._Element) -> str:
    return f"\\overset{{{_part(element, 'lim')}}}{{{_part(element, 'e')}}}"


def _group_character(element: etree._Element) -> str:
    char = _prop(element, "chr") or "⏟"
    command = {
        "⏟": "\\underbrace",
        "⏞": "\\overbrace",
        "←": "\\overleftarrow",
        "→": "\\overrightarrow",
    }
    if char in command:
        return f"{command[char]}{{{_part(element, 'e')}}}"
    top = _prop(element, "pos") == "top"
    return f"\\{'overset' if top else 'underset'}{{{_symbols(char)}}}{{{_part(element, 'e')}}}"


def _accent(element: etree._Element) -> str:
    command = _ACCENTS.get(_prop(element, "chr") or "\u0302", "\\hat")
    return f"{command}{{{_part(element, 'e')}}}"


def _bar(element: etree._Element) -> str:
    command = "\\overline" if _prop(element, "pos") == "top" else "\\underline"
    return f"{command}{{{_part(element, 'e')}}}"


def _equation_array(element: etree._Element) -> str:
    rows = [_children(e).strip() for e in element.findall(f"{_M}e")]
    if len(rows) == 1:
        return rows[0]
    return "\\begin{array}{l}" + " \\\\ ".join(rows) + "\\end{array}"


def _matrix(element: etree._Element) -> str:
    rows = [
        " & ".join(_children(e).strip() for e in row.findall(f"{_M}e"))
        for row in element.findall(f"{_M}mr")
    ]
    return "\\begin{matrix}" + " \\\\ ".join(rows) + "\\end{matrix}"


def _border_box(element: etree._Element) -> str:
    return f"\\boxed{{{_part(element, 'e')}}}"


def _phantom(element: etree._Element) -> str:
    hidden = _prop(element, "show") in {"0", "off", "false"}
    return "" if hidden else _part(element, "e")


_HANDLERS: dict[str, Callable[[etree._Element], str]] = {
    "r": _run,
    "sSup": _sup,
    "sSub": _sub,
    "sSubSup": _subsup,
    "sPre": _prescript,
    "f": _fraction,
    "rad": _radical,
    "nary": _nary,
    "d": _delimiter,
    "func": _function,
    "limLow": _lower_limit,
    "limUpp": _upper_limit,
    "groupChr": _group_character,
    "acc": _accent,
    "bar": _bar,
    "eqArr": _equation_array,
    "m": _matrix,
    "borderBox": _border_box,
    "phant": _phantom,
}
