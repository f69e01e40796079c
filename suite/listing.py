"""Plain-text output of the command line: aligned tables and the tasks' documented facts."""

from __future__ import annotations

import re


def table(rows: list[list[str]], header: list[str]) -> str:
    """Rows under a header, columns padded to their widest cell."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    return "\n".join(lines)


def fmt_params(params: dict) -> str:
    """``k=v, ...`` (``-`` when empty)."""
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


_TASK_DOC = (
    ("reference", r"References?:"),
    ("baseline", r"Trivial baseline:"),
    ("target", r"Target:"),
)


def doc_sentence(doc: str, label: str, limit: int = 200) -> str:
    """The first sentence after ``label`` in a module docstring (one line, at most ``limit``
    characters), or ``""``."""
    flat = " ".join(doc.split())
    m = re.search(label + r"\s*(.*)", flat)
    if m is None:
        return ""
    text = m.group(1).replace("``", "")
    # a sentence ends at ". " after a word of 3+ letters (not after an initial such as "S.")
    end = re.search(
        r"(?<!Trans)(?<!Int)(?<!Proc)(?<!Conf)(?<!Phys)(?<!Rev)(?<!Lett)"
        r"((?<=[A-Za-z0-9)\]]{3})|(?<=\d))\.(\s|$)",
        text,
    )
    sentence = text[: end.start() + 1] if end else text
    return sentence if len(sentence) <= limit else sentence[: limit - 3].rstrip() + "..."


def task_notes(name: str, doc: str) -> list[str]:
    """Lines naming a task's summary, reference, trivial baseline and target, read from its
    module docstring (the first sentence after ``Reference:``, ``Trivial baseline:``,
    ``Target:``)."""
    lines = [f"{name}: {doc.strip().splitlines()[0] if doc.strip() else ''}"]
    for label, pattern in _TASK_DOC:
        found = doc_sentence(doc, pattern)
        if found:
            lines.append(f"  {label}: {found}")
    return lines
