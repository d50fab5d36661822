"""Web pages: the storyteller's home and story page, and the invitee's landing page."""
from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.models import User
from accounts.selectors import request_user, user_primary_organization
from common.exceptions import Gone, NotFound, RateLimited
from common.exceptions import ValidationError as DomainValidationError
from narrations.models import ConversationStyle
from narrations.selectors import story_get_for_owner
from narrations.services import story_create
from narrations.styles import style_catalogue

from . import selectors, services
from .content_types import invitation_content, invitation_kind
from .api import client_key, narration_payload, story_progress_payload
from .models import DeliveryState, InvitationStatus, OptOutSource


class StoryForm(forms.Form):
    title = forms.CharField(max_length=200)
    content = forms.CharField(widget=forms.Textarea, max_length=100_000)
    characters = forms.CharField(
        widget=forms.Textarea, required=False, help_text="One character per line."
    )

    def clean_characters(self) -> list[dict[str, str]]:
        names = [line.strip() for line in self.cleaned_data["characters"].splitlines() if line.strip()]
        if len({name.lower() for name in names}) != len(names):
            raise forms.ValidationError("Each character can appear only once.")
        if any(len(name) > 100 for name in names):
            raise forms.ValidationError("Keep character names under 100 characters.")
        return [{"name": name} for name in names]


@login_required
@require_http_methods(["GET", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    form = StoryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            story = story_create(
                owner=request.user,
                title=form.cleaned_data["title"],
                content=form.cleaned_data["content"],
                characters=form.cleaned_data["characters"],
                organization=user_primary_organization(user=request_user(request)),
            )
        except DomainValidationError as exc:
            form.add_error(None, _flatten(exc.detail))
        else:
            return redirect("story-page", story_id=story.pk)
    stories = selectors.stories_overview_for_owner(user=request.user)
    return render(request, "home.html", {"form": form, "stories": stories}, status=400 if form.errors else 200)


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return " ".join(f"{k}: {_flatten(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(v) for v in detail)
    return str(detail)


@login_required
def story_detail(request: HttpRequest, story_id: int) -> HttpResponse:
    try:
        story = story_get_for_owner(story_id=story_id, user=request.user)
    except NotFound:
        raise Http404("Story not found") from None
    query = request.GET.get("q", "")[:200].replace("\x00", "").strip()
    all_invitations = selectors.invitations_for_story(story=story)
    counts = {status: 0 for status in InvitationStatus.values}
    # One aggregate query for the summary; only the page's rows are read (500 invitees used to
    # be a 33,000 px page).
    counts.update(dict(all_invitations.order_by().values_list("status").annotate(n=Count("pk")).values_list("status", "n")))
    total = sum(counts.values())
    filtered = all_invitations
    if query:
        filtered = filtered.filter(Q(invitee_email__icontains=query) | Q(invitee_phone__icontains=query))
    page = Paginator(filtered, 25).get_page(request.GET.get("page"))
    invitations = list(page.object_list)
    characters = list(story.characters.all())
    styles = style_catalogue()
    style_labels = {code: label for code, label in ConversationStyle.choices}
    delivery_states = selectors.invitations_delivery_states(invitations=invitations)
    for invitation in invitations:
        # A display-only attribute the template reads, never saved.
        invitation.delivery_list = [  # type: ignore[attr-defined]
            {"channel": channel, "state": state, "label": _delivery_label(state)}
            for channel, state in delivery_states[invitation.pk].items()
        ]
    return render(
        request,
        "stories/detail.html",
        {
            "story": story,
            "characters": characters,
            "invitations": invitations,
            "page": page,
            "query": query,
            "total": total,
            "narrations": selectors.story_narrations_by_style(story=story),
            "progress": story_progress_payload(story=story),
            "styles": styles,
            "style_labels": style_labels,
            "counts": counts,
            "dialog_config": {
                "storyId": story.pk,
                "styles": styles,
                "characters": [{"id": c.pk, "name": c.name} for c in characters],
                "maxItems": 500,
            },
        },
    )


def _delivery_label(state: str) -> str:
    try:
        return str(DeliveryState(state).label).lower()
    except ValueError:
        return state


def invitation_landing(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = selectors.invitation_get_by_token(token=token, client_key=client_key(request))
    except RateLimited as exc:
        return render(request, "invitations/landing_error.html", {"kind": "rate_limited", "detail": exc.detail}, status=429)
    except NotFound as exc:
        return render(request, "invitations/landing_error.html", {"kind": "not_found", "detail": exc.detail}, status=404)
    except Gone as exc:
        return render(request, "invitations/landing_error.html", {"kind": "gone", "detail": exc.detail}, status=410)
    services.invitation_record_view(invitation=invitation)
    styles = {entry["code"]: entry for entry in style_catalogue()}
    narration = narration_payload(invitation)
    kind, content = invitation_kind(invitation), invitation_content(invitation)
    response = render(
        request,
        "invitations/landing.html",
        {
            "invitation": invitation,
            "content": content,
            "content_title": kind.title(content),
            "content_partial": kind.landing_partial,
            **kind.landing_context(invitation, content),
            "inviter_name": invitation.inviter.get_display_name(),
            "style": styles.get(invitation.conversation_style, {"label": invitation.conversation_style, "description": ""}),
            "narration": narration,
            "player_config": {
                "acceptUrl": f"/api/v1/invitations/by-token/{token}/accept/",
                "declineUrl": f"/api/v1/invitations/by-token/{token}/decline/",
                "status": invitation.status,
                "narration": narration,
                # A roleplay invitee's own lines stand out (their character's segments).
                "highlightSpeaker": (invitation.content_metadata or {}).get("character_name") or None,
            },
        },
    )
    # The token is a credential: keep the page out of shared caches and referrers.
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@csrf_exempt  # the link is the credential; mail clients post the one-click without a session
@require_http_methods(["GET", "POST"])
def invitee_optout(request: HttpRequest, token: str) -> HttpResponse:
    """`/u/stop/<token>/`: an invitee stops invitations from one inviter or from the platform.

    GET only shows the choice (mail scanners fetch every link); a POST applies it. A POST of
    `List-Unsubscribe=One-Click` (RFC 8058, sent by the mail client) stops this inviter's.
    """
    from .optout import invitee_opt_out, optout_token_read

    try:
        data = optout_token_read(token)
    except DomainValidationError as exc:
        return render(request, "invitations/optout.html", {"error": exc.detail}, status=400)
    inviter = User.objects.filter(pk=data["i"]).first()
    context = {"address": data["a"], "inviter_name": inviter.get_display_name() if inviter else "this person"}
    if request.method == "GET":
        return render(request, "invitations/optout.html", context)
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    try:
        result = invitee_opt_out(token=token, scope="inviter" if one_click else request.POST.get("scope", ""),
                                 source=OptOutSource.ONE_CLICK if one_click else OptOutSource.LINK)
    except DomainValidationError as exc:
        return render(request, "invitations/optout.html", {**context, "error": exc.detail}, status=400)
    return render(request, "invitations/optout.html", {**context, "done": result["scope"]})
