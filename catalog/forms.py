from __future__ import annotations

from django import forms

from portal.models import Role
from portal.scoping import is_operator, projects_for


class FeedSubscribeForm(forms.Form):
    url = forms.CharField(max_length=1000, label="Feed URL", widget=forms.URLInput(attrs={"placeholder": "https://"}))
    project = forms.ModelChoiceField(queryset=None, required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["project"]
        field.queryset = projects_for(user, min_role=Role.MEMBER)
        # Only operators may leave it empty: that subscribes the catalog every project sees.
        field.required = not is_operator(user)
        field.empty_label = "shared catalog (all projects)" if is_operator(user) else None
