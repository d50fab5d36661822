"""Per-locale template content (django-modeltranslation): `subject_en`, `subject_fr`, …

Reading `subject` returns the active language's value and falls back to English when the
translation is empty (MODELTRANSLATION_FALLBACK_LANGUAGES).
"""
from modeltranslation.translator import TranslationOptions, register

from .models import TemplateChannel


@register(TemplateChannel)
class TemplateChannelTranslationOptions(TranslationOptions):
    fields = ("subject", "title", "body", "body_html", "action_label")
