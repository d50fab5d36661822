"""Request parsers shared by every API (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"])."""
from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from .jsondoc import MAX_DEPTH, json_document_problem


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing what the database or the interpreter cannot take.

    PostgreSQL text and jsonb cannot store U+0000 nor an unpaired surrogate ("\\ud800"), and a
    document nested deeper than the recursion limit raised RecursionError: DRF's CharField
    refuses some of it, but free-form JSON (settings, data, template variables) reached the
    database or the interpreter's limit and failed there as a 500. Each is a 400 here.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep.") from None
        problem = json_document_problem(data)
        if problem:
            raise ParseError(f"JSON parse error - {problem}")
        return data
