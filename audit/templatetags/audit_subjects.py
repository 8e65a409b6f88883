"""`{{ subject|subject_url }}`: the page a subject links to (see audit.subjects)."""

from django import template

from audit import subjects

register = template.Library()


@register.filter
def subject_url(subject: str) -> str:
    return subjects.url_for(str(subject))
