"""Admin list filters shared by the apps' admin classes."""

from django.contrib import admin
from django.utils.translation import gettext_lazy


class LabelledValuesFilter(admin.AllValuesFieldListFilter):
    """Every value of a text column, with the empty value named: a link with no text has no name to read out."""

    def choices(self, changelist):
        for choice in super().choices(changelist):
            if not str(choice["display"]).strip():
                choice = {**choice, "display": gettext_lazy("(blank)")}
            yield choice
