"""Typed tools: each function's signature and docstring are its tool declaration."""

from typing import Literal

from plugdock.sdk.typed import tool


@tool(description="Add two numbers.")
def add(a: float, b: float = 0) -> float:
    """Add two numbers.

    Args:
        a: the first number
        b: the second number (defaults to 0)
    """
    return a + b


@tool
def word_stats(text: str, unit: Literal["words", "characters"] = "words") -> dict[str, int]:
    """Count the words or characters of a text.

    Args:
        text: the text to measure
        unit: what to count
    """
    count = len(text.split()) if unit == "words" else len(text)
    return {"count": count}
