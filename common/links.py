"""Links a caller supplies that end up in an `href` (inbox items, emails, push click actions).

A link is `http:`/`https:` with a host, or a relative reference (`/tasks/42`, `?tab=2`,
`#top`). Anything with another scheme — `javascript:`, `data:`, `vbscript:`, `file:`… — is
refused where it enters (a 400 naming the field) and dropped wherever a link is rendered, so a
row stored before these checks (or a template that assembles one at render time) never becomes
a clickable script.

Browsers forgive a lot before they read a scheme: leading spaces and control characters, and
tabs or newlines anywhere (`java\\tscript:`), are ignored; so they are here before the scheme is
read. A backslash counts as a slash (`\\\\evil.example` is `//evil.example`).
"""
from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from common.exceptions import ValidationError

LINK_SCHEMES = frozenset({"http", "https"})
# In an email's HTML a template author may also write mail and phone links, and inline images.
EMAIL_HTML_SCHEMES = LINK_SCHEMES | {"mailto", "tel", "cid"}
MAX_LINK_LENGTH = 2000

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_INVISIBLE = re.compile(r"[\t\n\r]")
_LEADING = re.compile(r"^[\x00-\x20]+|[\x00-\x20]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _normalized(value: str) -> str:
    return _INVISIBLE.sub("", _LEADING.sub("", value)).replace("\\", "/")


def link_problem(value: object, *, schemes: frozenset[str] = LINK_SCHEMES) -> str | None:
    """Why `value` is not a safe link, or None when it is (an empty value is safe: no link)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return "Expected a URL string."
    if len(value) > MAX_LINK_LENGTH:
        return f"At most {MAX_LINK_LENGTH} characters."
    text = _normalized(value)
    if _CONTROL.search(text):
        return "Control characters are not allowed in a link."
    match = _SCHEME.match(text)
    if match is None:
        # No scheme: a relative reference. "//host/x" names another host without a scheme.
        if text.startswith("//"):
            return "Use an absolute https:// URL or a path starting with a single '/'."
        return None
    scheme = match.group(1).lower()
    if scheme not in schemes:
        return f"Only {', '.join(sorted(schemes))} links or relative paths are allowed, not '{scheme}:'."
    if scheme in LINK_SCHEMES:
        try:
            if not urlsplit(text).hostname:
                return "An absolute URL needs a host."
        except ValueError:
            return "Not a valid URL."
    return None


def link_is_safe(value: object, *, schemes: frozenset[str] = LINK_SCHEMES) -> bool:
    return link_problem(value, schemes=schemes) is None


def link_safe_or_empty(value: object) -> str:
    """`value` if it is a safe link, else "" (render no link rather than a dangerous one)."""
    return value if isinstance(value, str) and link_is_safe(value) else ""


def link_validate(value: object, *, field: str) -> str:
    """The link, stripped; a ValidationError naming `field` (e.g. "data.action_url") otherwise."""
    problem = link_problem(value)
    if problem:
        raise ValidationError(_nested(field, [problem]))
    return value.strip() if isinstance(value, str) else ""


def _nested(field: str, errors: list[str]) -> dict:
    # "data.action_url" → {"data": {"action_url": [...]}}, the shape DRF field errors have.
    detail: object = errors
    for part in reversed(field.split(".")):
        detail = {part: detail}
    return detail  # type: ignore[return-value]


def template_link_problem(source: str) -> str | None:
    """For a link *template* ("https://x/{{ task.id }}"): the part before the first tag is
    fixed, so a bad scheme there is refused when the template is saved; what the variables
    bring is checked when it is rendered (link_safe_or_empty)."""
    if not source:
        return None
    parts = re.split(r"\{[{%#]", source, maxsplit=1)
    if len(parts) == 1:
        return link_problem(source)
    fixed = _normalized(parts[0])
    match = _SCHEME.match(fixed)
    if match and match.group(1).lower() not in LINK_SCHEMES:
        return f"Only {', '.join(sorted(LINK_SCHEMES))} links or relative paths are allowed, not '{match.group(1).lower()}:'."
    if fixed.startswith("//"):
        return "Use an absolute https:// URL or a path starting with a single '/'."
    return None


# --- links inside rendered HTML (emails) ---------------------------------------------------------

_URL_ATTRIBUTE = re.compile(
    r"""(?P<lead>[\s"'/](?:href|src|action|formaction|xlink:href|background|poster|srcset|ping)\s*=\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s"'=<>`]+)""",
    re.IGNORECASE,
)


def html_links_sanitize(markup: str) -> str:
    """Rendered HTML with every URL attribute whose scheme is not allowed replaced by "#".

    Template authors and event data both reach an email's HTML; an email client or a preview
    pane must never be handed a `javascript:` or `data:` link.
    """
    if not markup or "=" not in markup:
        return markup

    def replace(match: re.Match) -> str:
        raw = match.group("value")
        value = html.unescape(raw[1:-1] if raw[:1] in "\"'" else raw)
        if link_is_safe(value, schemes=EMAIL_HTML_SCHEMES) and not value.strip().startswith("//"):
            return match.group(0)
        return f'{match.group("lead")}"#"'

    return _URL_ATTRIBUTE.sub(replace, markup)
