"""The front end: alerts, pages, i18n, templates and the static widget."""
