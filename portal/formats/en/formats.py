"""Django's own renderings of moments (the admin, ``|date`` without a format) written as
``portal.moments`` writes them: ``2026-11-26 14:05 CET``, a 24-hour clock with the reader's zone.

Django always localizes (``USE_L10N`` is gone), so these replace the English locale's
``Dec. 4, 2026, 10:12 p.m.``; ``FORMAT_MODULE_PATH`` in the settings points here.
"""

DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
YEAR_MONTH_FORMAT = "Y-m"
MONTH_DAY_FORMAT = "m-d"
FIRST_DAY_OF_WEEK = 1  # Monday, as ISO 8601 counts
