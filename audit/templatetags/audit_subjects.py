"""Links built from strings in events, always urlencoded into query strings (see audit.subjects).

`{{ subject|subject_url }}`: the page a subject links to;
`{{ value|events_url:"request_id" }}`: the event list filtered by that field.
"""

from django import template

from audit import subjects

register = template.Library()


@register.filter
def subject_url(subject) -> str:
    return subjects.url_for(str(subject))


@register.filter
def events_url(value, field: str) -> str:
    return subjects.events_url(**{field: str(value)})
