"""Sandboxed rendering of notification templates.

Template text is written by organization admins and rendered with event data sent by
other services, so neither side is trusted:

* a dedicated ``django.template.Engine`` with no loaders, no context processors, no tag
  libraries to ``{% load %}`` and only a whitelist of built-in tags and filters (no
  ``debug``, ``include``, ``url``, ``autoescape`` or ``safe``: event data can never turn
  itself into markup);
* the context holds only plain strings and read-only mappings built from the event
  type's variable mapping — never model instances, so no ORM lookup or method call can
  be reached from a template;
* HTML fields are autoescaped, plain-text fields (SMS, push, voice, in-app text, email
  subject) are not;
* a missing value renders as an empty string.

A template that names a variable outside the allowed set is refused when it is saved
(``template_validate``).

Rendering is also bounded, so a template cannot turn a few bytes into megabytes of output or
seconds of CPU (seven nested loops over a ten-letter string did both): at most
``TEMPLATE_MAX_LOOP_ITERATIONS`` loop iterations and ``TEMPLATE_MAX_OUTPUT_CHARS`` characters
per rendered field, no padding/precision argument above ``MAX_FILTER_WIDTH``, no filter result
longer than the output cap. Exceeding them raises ``TemplateLimitExceeded`` (a
ValidationError): refused at save time when a trial render or the loop nesting shows it, and
the permanent failure of that one delivery at send time.
"""
from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, cast

from django.template import Context, Engine, Library, Template, TemplateSyntaxError
from django.template import defaultfilters, defaulttags
from django.template.base import FilterExpression, NodeList, Variable
from django.template.defaulttags import ForNode, WithNode

from common.exceptions import ValidationError
from common.jsonpaths import path_get, path_set

# --- limits ---------------------------------------------------------------------------------

MAX_LOOP_NESTING = 4  # refused at save time: deeper loops multiply, they don't add
MAX_FILTER_WIDTH = 1000  # center/ljust/rjust width, floatformat/stringformat precision or width


def _max_iterations() -> int:
    from django.conf import settings

    return int(getattr(settings, "TEMPLATE_MAX_LOOP_ITERATIONS", 10_000))


def _max_output() -> int:
    from django.conf import settings

    return int(getattr(settings, "TEMPLATE_MAX_OUTPUT_CHARS", 500_000))


class TemplateLimitExceeded(ValidationError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="template_limit")


class _Budget:
    def __init__(self) -> None:
        self.iterations = _max_iterations()
        self.chars = _max_output()

    def iteration(self) -> None:
        self.iterations -= 1
        if self.iterations < 0:
            raise TemplateLimitExceeded(f"The template runs more than {_max_iterations()} loop iterations.")

    def output(self, size: int) -> None:
        self.chars -= size
        if self.chars < 0:
            raise TemplateLimitExceeded(f"The template renders more than {_max_output()} characters.")


# The budget of the render in progress (contextvars: per thread and per task, never shared).
_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


class _BudgetedLoopBody(NodeList):
    """A loop's body: each pass charges one iteration, and what its loop-free nodes render."""

    def __init__(self, nodes: NodeList) -> None:
        super().__init__(nodes)
        # Nodes holding a loop are charged by that loop's own body (no double count).
        self.leaf = tuple(not node.get_nodes_by_type(ForNode) for node in nodes)

    def __iter__(self):
        budget = _BUDGET.get()
        if budget is None:
            yield from super().__iter__()
            return
        budget.iteration()
        for node, leaf in zip(super().__iter__(), self.leaf):
            yield _Charged(node, budget) if leaf else node


class _Charged:
    def __init__(self, node, budget: _Budget) -> None:
        self.node, self.budget = node, budget

    def render_annotated(self, context):
        out = self.node.render_annotated(context)
        self.budget.output(len(out))
        return out


def _budget_loops(nodelist: NodeList) -> None:
    # get_nodes_by_type returns nodes of the type asked for (the stubs say Node).
    for node in cast(list[ForNode], nodelist.get_nodes_by_type(ForNode)):
        if not isinstance(node.nodelist_loop, _BudgetedLoopBody):
            node.nodelist_loop = _BudgetedLoopBody(node.nodelist_loop)  # type: ignore[arg-type]  # a parsed ForNode's loop body is a NodeList


def _loop_depth(nodelist: NodeList) -> int:
    deepest = 0
    for node in nodelist:
        children = [getattr(node, name, None) for name in getattr(node, "child_nodelists", ())]
        inner = max((_loop_depth(child) for child in children if child), default=0)
        deepest = max(deepest, inner + (1 if isinstance(node, ForNode) else 0))
    return deepest


_WIDTH_FILTERS = frozenset({"center", "ljust", "rjust", "floatformat", "stringformat", "wordwrap", "truncatechars",
                            "truncatewords", "get_digit"})
_NUMBER = re.compile(r"\d+")


def _bounded_filter(name: str, func):
    """A whitelisted filter that refuses huge widths and results longer than the output cap."""

    @functools.wraps(func)
    def bounded(value, *args, **kwargs):
        if name in _WIDTH_FILTERS and args and any(int(n) > MAX_FILTER_WIDTH for n in _NUMBER.findall(str(args[0]))):
            raise TemplateLimitExceeded(f"Filter '{name}' accepts widths up to {MAX_FILTER_WIDTH}.")
        result = func(value, *args, **kwargs)
        if isinstance(result, (str, list, tuple)) and len(result) > _max_output():
            raise TemplateLimitExceeded(f"Filter '{name}' produced more than {_max_output()} characters.")
        return result

    return bounded


# --- the sandbox ----------------------------------------------------------------------

ALLOWED_TAGS = (
    "if", "for", "with", "firstof", "cycle", "resetcycle", "ifchanged", "now", "spaceless",
    "comment", "verbatim", "templatetag", "widthratio", "filter",
)
ALLOWED_FILTERS = (
    "add", "capfirst", "center", "cut", "date", "default", "default_if_none", "divisibleby",
    "escape", "first", "floatformat", "force_escape", "join", "last", "length", "linebreaks",
    "linebreaksbr", "ljust", "lower", "phone2numeric", "pluralize", "rjust", "slice", "slugify",
    "stringformat", "striptags", "time", "timesince", "timeuntil", "title", "truncatechars",
    "truncatewords", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "yesno",
    "iriencode", "make_list", "random", "addslashes", "escapejs", "filesizeformat", "get_digit",
)

# This module is the engine's only builtin library: it re-registers the whitelist.
register = Library()
for _name in ALLOWED_TAGS:
    register.tags[_name] = defaulttags.register.tags[_name]
for _name in ALLOWED_FILTERS:
    register.filters[_name] = _bounded_filter(_name, defaultfilters.register.filters[_name])


class SandboxEngine(Engine):
    # Engine always prepends its default builtins (which include load, debug, include...);
    # the sandbox starts from nothing and adds the whitelist above.
    default_builtins: ClassVar[list[str]] = []


ENGINE = SandboxEngine(
    dirs=[],
    app_dirs=False,
    context_processors=[],
    debug=False,
    loaders=[],
    string_if_invalid="",
    libraries={},
    builtins=[__name__],
    autoescape=True,
)

# Variables every template may use, whatever the event type.
STANDARD_VARIABLES = frozenset(
    {
        "recipient.name",
        "actor.name",
        "action_url",
        "ack_url",  # one-click acknowledgement link (notifications.engine.ack)
        "organization.name",
        "resource.type",
        "resource.id",
        "resource.name",
        "event.type",
    }
)

# Content fields of a TemplateChannel (translated through modeltranslation).
CONTENT_FIELDS = ("subject", "title", "body", "body_html", "action_label")
HTML_FIELDS = frozenset({"body_html"})


@functools.lru_cache(maxsize=2048)
def _compile(source: str) -> Template:
    template = ENGINE.from_string(source)
    _budget_loops(template.nodelist)
    return template


def template_compile(source: str) -> Template:
    """Compile template text in the sandbox; a syntax error or forbidden tag is a ValidationError."""
    try:
        return _compile(source)
    except TemplateSyntaxError as exc:
        raise ValidationError(_explain_syntax_error(exc)) from None


def _explain_syntax_error(exc: TemplateSyntaxError) -> str:
    message = str(exc)
    tag = re.search(r"Invalid block tag on line \d+: '([^']+)'", message)
    if tag:
        return f"Tag {{% {tag.group(1)} %}} is not allowed here. Allowed tags: {', '.join(ALLOWED_TAGS)}."
    bad_filter = re.search(r"Invalid filter: '([^']+)'", message)
    if bad_filter:
        return f"Filter '{bad_filter.group(1)}' is not allowed here."
    return message


# --- variables ------------------------------------------------------------------------


def _freeze(value: Any) -> Any:
    """Plain, read-only data: templates can read it but not call anything that mutates it."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is float or kind is bool:
        return value  # the common case first: no ABC isinstance per value
    if kind is dict or kind is MappingProxyType or isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(_freeze(v) for v in value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def allowed_variables_for(variable_mapping: Mapping[str, str] | None) -> frozenset[str]:
    """Variable names a template of this event type may use."""
    return STANDARD_VARIABLES | frozenset((variable_mapping or {}).keys())


def template_context_build(
    *,
    variable_mapping: Mapping[str, str] | None,
    source: Mapping[str, Any],
    standard: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the render context: ``{"task": {"title": ...}}`` from ``{"task.title": "data.taskTitle"}``.

    ``source`` is the event as plain data (``data``, ``resourceId``, ``actor``...);
    ``standard`` holds the standard variables by dotted name (``recipient.name``...).
    Missing source values stay absent, so they render as "".
    """
    context: dict[str, Any] = {}
    for name, value in (standard or {}).items():
        if value is not None:
            path_set(context, name, value)
    for name, path in (variable_mapping or {}).items():
        value = path_get(source, str(path))
        if value is not None:
            path_set(context, name, value)
    return {key: _freeze(value) for key, value in context.items()}


def template_render(source: str, context: Mapping[str, Any], *, html: bool) -> str:
    """Render one template string; ``html`` switches autoescaping on."""
    if not source:
        return ""
    template = template_compile(source)
    token = _BUDGET.set(_Budget())
    try:
        rendered = template.render(Context(dict(context), autoescape=html))
    finally:
        _BUDGET.reset(token)
    if len(rendered) > _max_output():
        raise TemplateLimitExceeded(f"The template renders more than {_max_output()} characters.")
    return rendered if html else rendered.strip()


@dataclass(frozen=True)
class RenderedContent:
    subject: str = ""
    title: str = ""
    body: str = ""
    body_html: str = ""
    action_label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def content_render(*, contents: Mapping[str, str], context: Mapping[str, Any]) -> RenderedContent:
    """Render every content field of one channel (HTML fields escaped, the others plain)."""
    rendered: dict[str, Any] = {
        name: template_render(contents.get(name) or "", context, html=name in HTML_FIELDS) for name in CONTENT_FIELDS
    }
    return RenderedContent(**rendered)


# --- validation at save time ------------------------------------------------------------


def _is_template_object(value: Any) -> bool:
    return type(value).__module__.startswith("django.template")


def _walk(obj: Any, found: set[str], bound: set[str], seen: set[int]) -> None:
    """Collect every variable a compiled template reads, whatever tag holds it."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, Variable):
        if obj.lookups:
            found.add(".".join(obj.lookups))
        return
    if isinstance(obj, FilterExpression):
        _walk(obj.var, found, bound, seen)
        for _func, args in obj.filters:
            for _is_var, arg in args:
                _walk(arg, found, bound, seen)
        return
    if isinstance(obj, ForNode):
        bound.update(obj.loopvars)
        bound.add("forloop")
    if isinstance(obj, WithNode):
        bound.update(obj.extra_context.keys())
    if isinstance(obj, (list, tuple, NodeList)):
        for item in obj:
            _walk(item, found, bound, seen)
    elif isinstance(obj, dict):
        for item in obj.values():
            _walk(item, found, bound, seen)
    elif _is_template_object(obj) and hasattr(obj, "__dict__"):
        # Nodes, smartif operators (``if`` conditions), literals: walk their attributes.
        for value in vars(obj).values():
            if isinstance(value, (list, tuple, dict)) or _is_template_object(value):
                _walk(value, found, bound, seen)


def template_variables(source: str) -> set[str]:
    """Dotted names a template reads (loop/with variables excluded)."""
    template = template_compile(source)
    found: set[str] = set()
    bound: set[str] = set()
    _walk(template.nodelist, found, bound, set())
    return {name for name in found if name.split(".")[0] not in bound}


def _is_allowed(name: str, allowed: Iterable[str]) -> bool:
    for candidate in allowed:
        # "task.title" allows "task" (the whole namespace) and "task.title.upper" (a string method).
        if name == candidate or candidate.startswith(name + ".") or name.startswith(candidate + "."):
            return True
    return False


# Fields that become one header line (an email subject): a line break would forge headers.
ONE_LINE_FIELDS = frozenset({"subject"})


def _limits_problem(text: str, field_name: str) -> str | None:
    """Why this template text would break its limits whatever the data, if that shows now."""
    field_name = re.sub(r"_[a-z]{2}$", "", field_name)  # the admin's "subject_fr" is a subject
    if field_name in ONE_LINE_FIELDS and ("\r" in text or "\n" in text):
        return "The subject must be one line."
    template = template_compile(text)
    depth = _loop_depth(template.nodelist)
    if depth > MAX_LOOP_NESTING:
        return f"Loops are nested {depth} deep; at most {MAX_LOOP_NESTING} are allowed."
    try:
        # With no data, only what the template builds itself runs (loops over literals, filters
        # with literal widths): if that already breaks the limits, every send would.
        template_render(text, {}, html=field_name in HTML_FIELDS)
    except TemplateLimitExceeded as exc:
        return str(exc.detail)
    except Exception:  # noqa: BLE001 - any other trouble with no data is the data's business at send time
        return None
    return None


def template_validate(*, channel_contents: Mapping[str, Mapping[str, str]] | Mapping[str, str], allowed_variables: Iterable[str]) -> None:
    """Refuse template text that does not compile in the sandbox or uses unknown variables.

    ``channel_contents`` maps a channel (or any label) to its fields (``{"EMAIL": {"subject": ...}}``),
    or is directly a mapping of field name to text. Raises ``ValidationError`` whose detail
    names each bad field and the unknown variables.
    """
    allowed = frozenset(allowed_variables)
    if channel_contents and all(isinstance(v, str) or v is None for v in channel_contents.values()):
        channel_contents = {"": cast(Mapping[str, str], channel_contents)}
    errors: dict[str, list[str]] = {}
    # Nested by now (a flat mapping was wrapped above).
    for label, fields in cast(Mapping[str, Mapping[str, str]], channel_contents).items():
        for field_name, text in (fields or {}).items():
            if not text:
                continue
            key = f"{label}.{field_name}" if label else field_name
            try:
                names = template_variables(text)
            except ValidationError as exc:
                errors.setdefault(key, []).append(str(exc.detail))
                continue
            problem = _limits_problem(text, field_name)
            if problem:
                errors.setdefault(key, []).append(problem)
                continue
            unknown = sorted(n for n in names if not _is_allowed(n, allowed))
            if unknown:
                errors.setdefault(key, []).append(
                    f"Unknown variable(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}."
                )
    if errors:
        raise ValidationError(errors)


# --- locale ------------------------------------------------------------------------------


def _language(locale: str | None) -> str:
    from django.conf import settings

    available = {code for code, _ in settings.LANGUAGES}
    if locale:
        code = locale.replace("_", "-").lower()
        if code in available:
            return code
        base = code.split("-")[0]
        if base in available:
            return base
    return settings.MODELTRANSLATION_DEFAULT_LANGUAGE


def template_channel_contents(template_channel: Any, *, locale: str | None) -> dict[str, str]:
    """The content fields of a TemplateChannel in ``locale``, each falling back to English."""
    from django.conf import settings

    lang = _language(locale)
    fallback = settings.MODELTRANSLATION_DEFAULT_LANGUAGE
    contents: dict[str, str] = {}
    for name in CONTENT_FIELDS:
        if not hasattr(template_channel, name):
            continue
        value = getattr(template_channel, f"{name}_{lang}", None)
        if not value:
            value = getattr(template_channel, f"{name}_{fallback}", None)
        if not value:
            value = getattr(template_channel, name, None)
        contents[name] = value or ""
    return contents


# --- SMS segments ---------------------------------------------------------------------


def sms_segments(text: str) -> dict[str, Any]:
    """``{"encoding", "units", "segments", "characters"}`` for an SMS body (GSM-7 160/153, UCS-2 70/67).

    The SMS providers' own counter, so a preview and the send agree.
    """
    from providers.sms.segments import count_segments

    info = count_segments(text)
    return {"encoding": info.encoding, "units": info.units, "segments": info.segments if text else 0, "characters": len(text)}
