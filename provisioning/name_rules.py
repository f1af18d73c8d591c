"""The rules for names people choose (stacks, templates): one pattern and one message each.

The services enforce them, the API's serializers and the web forms show the same words, so a
person meets one rule, said one way, wherever they type a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django import forms
from django.core.validators import RegexValidator

from portal import errors


@dataclass(frozen=True)
class NameRule:
    pattern: re.Pattern[str]
    max_length: int
    rule: str  # what a good name is: the help text next to the field

    @property
    def message(self) -> str:
        """What a refused name is told, by the service, the API and the form alike."""
        return f"name must be {self.rule}"

    @property
    def html_pattern(self) -> str:
        """The pattern for an ``<input pattern>``: browsers compile it with the ``v`` flag, under which
        a ``-`` inside a character class that is not a range must be escaped."""
        return html_pattern(self.pattern.pattern)

    def check(self, name: str) -> None:
        if not self.pattern.fullmatch(name):
            raise errors.Invalid.for_field("name", self.message)

    def form_field(self) -> forms.CharField:
        # The pattern bounds the length itself; a max_length check would add a second message.
        return forms.CharField(
            validators=[RegexValidator(rf"\A(?:{self.pattern.pattern})\Z", message=self.message)],
            widget=forms.TextInput(attrs={"maxlength": self.max_length, "pattern": self.html_pattern}),
            help_text=self.rule[0].upper() + self.rule[1:],
        )


def html_pattern(pattern: str) -> str:
    """``pattern`` with each literal ``-`` of a character class escaped (``[a-z0-9-]`` -> ``[a-z0-9\\-]``).

    A ``-`` is literal when it opens or closes the class; between two characters it is a range and
    stays. Escaped characters are copied as they are.
    """
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            out.append(pattern[index : index + 2])
            index += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
            elif char == "-" and (out[-1] == "[" or out[-2:] == ["[", "^"] or pattern[index + 1 : index + 2] == "]"):
                char = "\\-"
        elif char == "[":
            in_class = True
        out.append(char)
        index += 1
    return "".join(out)


STACK_NAME = NameRule(
    pattern=re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?"),
    max_length=40,
    rule="1-40 lowercase letters, digits or '-', starting and ending with a letter or digit",
)
TEMPLATE_NAME = NameRule(
    pattern=re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"),
    max_length=63,
    rule="1-63 lowercase letters, digits or '-', starting and ending with a letter or digit",
)
# A stack's tier (a template's tiers, and the role a feed gives an appliance, which names the tier of
# its one-click launch): part of instance and domain names and of every template that refers to it.
TIER_NAME = NameRule(
    pattern=re.compile(r"[a-z][a-z0-9-]{0,14}"),
    max_length=15,
    rule="1-15 lowercase letters, digits or '-', starting with a letter",
)
SNAPSHOT_NAME = NameRule(
    pattern=re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?"),
    max_length=40,
    rule="1-40 lowercase letters, digits or '-', starting and ending with a letter or digit",
)
