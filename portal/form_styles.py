"""How a form's fields show their errors: Bootstrap's red outline on each field that has one.

Django itself adds ``aria-invalid`` and ties the error text to the field (``aria-describedby``);
this adds the look that goes with it, so a template renders ``{{ field }}`` and nothing more.
"""

from __future__ import annotations

from django import forms


class MarksInvalidFields(forms.BaseForm):
    def full_clean(self) -> None:
        super().full_clean()
        invalid = [name for name in self.fields if name in self.errors]
        for name in invalid:
            widget = self.fields[name].widget
            classes = widget.attrs.get("class", "").split()
            if "is-invalid" not in classes:
                widget.attrs["class"] = " ".join([*classes, "is-invalid"])
