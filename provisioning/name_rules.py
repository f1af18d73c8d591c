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

    def check(self, name: str) -> None:
        if not self.pattern.fullmatch(name):
            raise errors.Invalid.for_field("name", self.message)

    def form_field(self) -> forms.CharField:
        # The pattern bounds the length itself; a max_length check would add a second message.
        return forms.CharField(
            validators=[RegexValidator(rf"\A(?:{self.pattern.pattern})\Z", message=self.message)],
            widget=forms.TextInput(attrs={"maxlength": self.max_length}),
            help_text=self.rule[0].upper() + self.rule[1:],
        )


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
