from __future__ import annotations

from typing import Any, cast

from django import forms

from portal.form_styles import MarksInvalidFields
from portal.models import Project, Role
from portal.scoping import User, is_operator


class FeedSubscribeForm(MarksInvalidFields, forms.Form):
    url = forms.CharField(max_length=1000, label="Feed URL", widget=forms.URLInput(attrs={"placeholder": "https://"}))
    project = forms.ModelChoiceField(queryset=Project.objects.none(), required=False)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelChoiceField, self.fields["project"])
        field.queryset = Project.objects.visible_to(user, min_role=Role.MEMBER)
        # Only operators may leave it empty: that subscribes the catalog every project sees.
        field.required = not is_operator(user)
        field.empty_label = "shared catalog (all projects)" if is_operator(user) else None
        self.fields["url"].widget.attrs["class"] = "form-control"
        field.widget.attrs["class"] = "form-select"
