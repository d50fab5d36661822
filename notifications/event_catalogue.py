"""The shipped event taxonomy (seed 004, section 5.2) as data: every event type of the seed,
plus the story invitation events, with its default criticality, default and allowed
channels, variable mapping and English/French copy. `notifications.taxonomy` builds the
per-channel templates from it and loads them (`catalog_load()`).

Template text uses Django template syntax and only the variables of the event's mapping
plus the standard ones (`recipient.name`, `actor.name`, `action_url`, `organization.name`,
`resource.*`, `event.type`). Optional parts sit inside `{% if %}` so a missing value reads
naturally. SMS texts stay in the GSM-7 alphabet (no â, ê, ô, ç, curly quotes) and short
enough for one segment with typical values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .enums import Channel, Criticality, EventCategory

C = Channel
IN_APP, EMAIL, PUSH, SMS, WHATSAPP, VOICE = C.IN_APP, C.EMAIL, C.PUSH, C.SMS, C.WHATSAPP, C.VOICE
ALL_CHANNELS = [IN_APP, EMAIL, PUSH, SMS, WHATSAPP, VOICE]

# (default channels, allowed channels) presets.
INFO = ([IN_APP], [IN_APP, EMAIL, PUSH])
STANDARD = ([IN_APP, EMAIL], [IN_APP, EMAIL, PUSH, SMS])  # the seed's task.assigned mapping
URGENT = ([IN_APP, EMAIL, PUSH], [IN_APP, EMAIL, PUSH, SMS, WHATSAPP])
INCIDENT = ([IN_APP, EMAIL, PUSH, SMS], ALL_CHANNELS)  # the seed's incident.created mapping
CRITICAL = ([IN_APP, EMAIL, PUSH, SMS, VOICE], ALL_CHANNELS)
INVITATION = ([IN_APP, EMAIL, SMS], [IN_APP, EMAIL, PUSH, SMS, WHATSAPP])
ACCEPTED = ([IN_APP, EMAIL], [IN_APP, EMAIL, PUSH, SMS])

LANGUAGES = ("en", "fr")


@dataclass(frozen=True)
class Copy:
    """The words of one event in one language; every channel's content is built from them."""

    title: str
    body: str
    action: str
    sms: str
    voice: str


@dataclass(frozen=True)
class EventDefinition:
    key: str
    name: str
    description: str
    category: str
    criticality: str
    channels: tuple[list[str], list[str]]
    variables: dict[str, str]
    recipients: str
    en: Copy
    fr: Copy
    # The variable holding the link the recipient follows.
    link: str = "action_url"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def default_channels(self) -> list[str]:
        return [str(c) for c in self.channels[0]]

    @property
    def allowed_channels(self) -> list[str]:
        return [str(c) for c in self.channels[1]]

    def copy(self, language: str) -> Copy:
        return self.en if language == "en" else self.fr


PM, COLLAB, AI, SYSADMIN = EventCategory.PROJECT_MANAGEMENT, EventCategory.COLLABORATION, EventCategory.AI_PLANNING, EventCategory.SYSTEM_ADMIN
INCIDENTS, CALENDAR, SECURITY = EventCategory.INCIDENTS, EventCategory.CALENDAR, EventCategory.SECURITY
LOW, MEDIUM, HIGH, CRIT = Criticality.LOW, Criticality.MEDIUM, Criticality.HIGH, Criticality.CRITICAL

TASK = {"task.title": "data.taskTitle", "task.id": "resourceId", "project.name": "data.projectName"}
REVIEW = {"review.title": "data.reviewTitle", "review.id": "resourceId"}
PLAN = {"plan.title": "data.planTitle", "plan.id": "resourceId"}
EXECUTION = {"execution.name": "data.executionName", "execution.id": "resourceId"}
INCIDENT_VARS = {"incident.title": "data.incidentTitle", "incident.severity": "data.severity", "incident.id": "resourceId"}
SOMEONE_EN = '{{ actor.name|default:"Someone" }}'
SOMEONE_FR = "{{ actor.name|default:\"Quelqu'un\" }}"
EXCERPT_EN = '{% if comment.excerpt %}: "{{ comment.excerpt|truncatechars:140 }}"{% endif %}'
EXCERPT_FR = "{% if comment.excerpt %} : « {{ comment.excerpt|truncatechars:140 }} »{% endif %}"


EVENTS: list[EventDefinition] = [
    # --- project management -------------------------------------------------------------
    EventDefinition(
        "task.assigned", "Task assigned", "Task assigned to user", PM, MEDIUM, STANDARD,
        {**TASK, "assigner.name": "data.assignerName"}, "Assignee",
        en=Copy(
            "New task: {{ task.title }}",
            '{% firstof assigner.name actor.name %} assigned you "{{ task.title }}"{% if project.name %} in {{ project.name }}{% endif %}.',
            "View task",
            "New task: {{ task.title }}{% if project.name %} ({{ project.name }}){% endif %}",
            "You have been assigned a new task: {{ task.title }}.",
        ),
        fr=Copy(
            "Nouvelle tâche : {{ task.title }}",
            "{% firstof assigner.name actor.name %} vous a assigné « {{ task.title }} »{% if project.name %} dans {{ project.name }}{% endif %}.",
            "Voir la tâche",
            "Nouvelle affectation : {{ task.title }}{% if project.name %} ({{ project.name }}){% endif %}",
            "Une nouvelle tâche vous a été assignée : {{ task.title }}.",
        ),
    ),
    EventDefinition(
        "task.unassigned", "Task unassigned", "Task unassigned from user", PM, LOW, INFO, TASK, "Previous assignee",
        en=Copy(
            "Task unassigned: {{ task.title }}",
            'You are no longer assigned to "{{ task.title }}"{% if project.name %} in {{ project.name }}{% endif %}.',
            "View task",
            "Unassigned: {{ task.title }}",
            "You are no longer assigned to the task {{ task.title }}.",
        ),
        fr=Copy(
            "Tâche retirée : {{ task.title }}",
            "Vous n'êtes plus assigné à « {{ task.title }} »{% if project.name %} dans {{ project.name }}{% endif %}.",
            "Voir la tâche",
            "Retirée de vos affectations : {{ task.title }}",
            "Vous n'êtes plus assigné à la tâche {{ task.title }}.",
        ),
    ),
    EventDefinition(
        "task.status_changed", "Task status changed", "Task status updated", PM, LOW, INFO,
        {**TASK, "task.old_status": "data.oldStatus", "task.new_status": "data.newStatus"}, "Assignee, watchers",
        en=Copy(
            "{{ task.title }} is now {{ task.new_status }}",
            SOMEONE_EN + ' moved "{{ task.title }}"{% if task.old_status %} from {{ task.old_status }}{% endif %} to {{ task.new_status }}.',
            "View task",
            "{{ task.title }}: now {{ task.new_status }}",
            "The task {{ task.title }} is now {{ task.new_status }}.",
        ),
        fr=Copy(
            "{{ task.title }} : {{ task.new_status }}",
            SOMEONE_FR + " a passé « {{ task.title }} »{% if task.old_status %} de {{ task.old_status }}{% endif %} à {{ task.new_status }}.",
            "Voir la tâche",
            "{{ task.title }} : statut {{ task.new_status }}",
            "La tâche {{ task.title }} est maintenant {{ task.new_status }}.",
        ),
    ),
    EventDefinition(
        "task.due_soon", "Task due soon", "Task due within 24h", PM, MEDIUM, STANDARD,
        {**TASK, "task.due_at": "data.dueAt"}, "Assignee",
        en=Copy(
            "Due soon: {{ task.title }}",
            '"{{ task.title }}" is due {% if task.due_at %}on {{ task.due_at }}{% else %}within 24 hours{% endif %}.',
            "View task",
            "Due soon: {{ task.title }}{% if task.due_at %} ({{ task.due_at }}){% endif %}",
            "Reminder: the task {{ task.title }} is due soon.",
        ),
        fr=Copy(
            "Échéance proche : {{ task.title }}",
            "« {{ task.title }} » arrive à échéance {% if task.due_at %}le {{ task.due_at }}{% else %}dans moins de 24 heures{% endif %}.",
            "Voir la tâche",
            "Échéance proche : {{ task.title }}{% if task.due_at %} ({{ task.due_at }}){% endif %}",
            "Rappel : la tâche {{ task.title }} arrive bientôt à échéance.",
        ),
    ),
    EventDefinition(
        "task.overdue", "Task overdue", "Task past due date", PM, HIGH, URGENT,
        {**TASK, "task.due_at": "data.dueAt"}, "Assignee, manager",
        en=Copy(
            "Overdue: {{ task.title }}",
            '"{{ task.title }}" was due {% if task.due_at %}on {{ task.due_at }}{% else %}earlier{% endif %} and is not done yet.',
            "View task",
            "OVERDUE: {{ task.title }}{% if task.due_at %}, due {{ task.due_at }}{% endif %}",
            "The task {{ task.title }} is overdue.",
        ),
        fr=Copy(
            "En retard : {{ task.title }}",
            "« {{ task.title }} » devait être terminée {% if task.due_at %}le {{ task.due_at }}{% else %}plus tôt{% endif %} et ne l'est pas encore.",
            "Voir la tâche",
            "EN RETARD : {{ task.title }}{% if task.due_at %}, échéance {{ task.due_at }}{% endif %}",
            "La tâche {{ task.title }} est en retard.",
        ),
    ),
    EventDefinition(
        "task.mentioned", "Mentioned in a task", "User mentioned in task comment", PM, MEDIUM, STANDARD,
        {**TASK, "comment.excerpt": "data.commentExcerpt"}, "Mentioned user",
        en=Copy(
            SOMEONE_EN + " mentioned you",
            SOMEONE_EN + ' mentioned you on "{{ task.title }}"' + EXCERPT_EN,
            "View comment",
            SOMEONE_EN + " mentioned you on {{ task.title }}",
            SOMEONE_EN + " mentioned you on the task {{ task.title }}.",
        ),
        fr=Copy(
            SOMEONE_FR + " vous a mentionné",
            SOMEONE_FR + " vous a mentionné dans « {{ task.title }} »" + EXCERPT_FR,
            "Voir le commentaire",
            SOMEONE_FR + " vous a mentionné : {{ task.title }}",
            SOMEONE_FR + " vous a mentionné dans la tâche {{ task.title }}.",
        ),
    ),
    EventDefinition(
        "task.comment_added", "Comment on a task", "New comment on task", PM, LOW, INFO,
        {**TASK, "comment.excerpt": "data.commentExcerpt"}, "Assignee, watchers",
        en=Copy(
            "New comment on {{ task.title }}",
            SOMEONE_EN + ' commented on "{{ task.title }}"' + EXCERPT_EN,
            "View comment",
            "New comment on {{ task.title }}",
            "There is a new comment on the task {{ task.title }}.",
        ),
        fr=Copy(
            "Nouveau commentaire sur {{ task.title }}",
            SOMEONE_FR + " a commenté « {{ task.title }} »" + EXCERPT_FR,
            "Voir le commentaire",
            "Nouveau commentaire : {{ task.title }}",
            "Un nouveau commentaire a été ajouté à la tâche {{ task.title }}.",
        ),
    ),
    # --- collaboration -----------------------------------------------------------------
    EventDefinition(
        "team.invite", "Team invitation", "Invited to team", COLLAB, MEDIUM, STANDARD,
        {"team.name": "data.teamName", "inviter.name": "data.inviterName", "invite.url": "data.inviteUrl"}, "Invitee",
        en=Copy(
            "Join {{ team.name }}",
            "{% firstof inviter.name actor.name %} invited you to join the team {{ team.name }}.",
            "Accept invitation",
            "{% firstof inviter.name actor.name %} invited you to join {{ team.name }}",
            "{% firstof inviter.name actor.name %} invited you to join the team {{ team.name }}.",
        ),
        fr=Copy(
            "Rejoignez {{ team.name }}",
            "{% firstof inviter.name actor.name %} vous invite à rejoindre l'équipe {{ team.name }}.",
            "Accepter l'invitation",
            "{% firstof inviter.name actor.name %} vous invite dans l'équipe {{ team.name }}",
            "{% firstof inviter.name actor.name %} vous invite à rejoindre l'équipe {{ team.name }}.",
        ),
    ),
    EventDefinition(
        "team.member_added", "Team member added", "New member joined team", COLLAB, LOW, INFO,
        {"team.name": "data.teamName", "member.name": "data.memberName"}, "Team admins",
        en=Copy(
            "{{ member.name }} joined {{ team.name }}",
            "{{ member.name }} is now a member of {{ team.name }}.",
            "View team",
            "{{ member.name }} joined {{ team.name }}",
            "{{ member.name }} joined the team {{ team.name }}.",
        ),
        fr=Copy(
            "{{ member.name }} a rejoint {{ team.name }}",
            "{{ member.name }} fait désormais partie de {{ team.name }}.",
            "Voir l'équipe",
            "{{ member.name }} a rejoint {{ team.name }}",
            "{{ member.name }} a rejoint l'équipe {{ team.name }}.",
        ),
    ),
    EventDefinition(
        "team.member_removed", "Team member removed", "Member removed from team", COLLAB, LOW, INFO,
        {"team.name": "data.teamName", "member.name": "data.memberName"}, "Team admins",
        en=Copy(
            "{{ member.name }} left {{ team.name }}",
            "{{ member.name }} was removed from {{ team.name }}{% if actor.name %} by {{ actor.name }}{% endif %}.",
            "View team",
            "{{ member.name }} removed from {{ team.name }}",
            "{{ member.name }} was removed from the team {{ team.name }}.",
        ),
        fr=Copy(
            "{{ member.name }} a quitté {{ team.name }}",
            "{{ member.name }} a été retiré de {{ team.name }}{% if actor.name %} par {{ actor.name }}{% endif %}.",
            "Voir l'équipe",
            "{{ member.name }} retiré de {{ team.name }}",
            "{{ member.name }} a été retiré de l'équipe {{ team.name }}.",
        ),
    ),
    EventDefinition(
        "project.access_requested", "Project access requested", "Access request to project", COLLAB, MEDIUM, STANDARD,
        {"project.name": "data.projectName", "requester.name": "data.requesterName", "request.reason": "data.reason"},
        "Project admins",
        en=Copy(
            "Access request for {{ project.name }}",
            '{% firstof requester.name actor.name %} asked for access to {{ project.name }}{% if request.reason %}: "{{ request.reason|truncatechars:140 }}"{% endif %}.',
            "Review request",
            "{% firstof requester.name actor.name %} requests access to {{ project.name }}",
            "{% firstof requester.name actor.name %} is asking for access to the project {{ project.name }}.",
        ),
        fr=Copy(
            "Demande d'accès à {{ project.name }}",
            "{% firstof requester.name actor.name %} demande l'accès à {{ project.name }}{% if request.reason %} : « {{ request.reason|truncatechars:140 }} »{% endif %}.",
            "Examiner la demande",
            "{% firstof requester.name actor.name %} demande l'accès à {{ project.name }}",
            "{% firstof requester.name actor.name %} demande l'accès au projet {{ project.name }}.",
        ),
    ),
    EventDefinition(
        "project.access_granted", "Project access granted", "Access granted", COLLAB, MEDIUM, STANDARD,
        {"project.name": "data.projectName", "granter.name": "data.granterName", "access.role": "data.role"}, "Requester",
        en=Copy(
            "Access granted to {{ project.name }}",
            "You now have {% if access.role %}{{ access.role }} {% endif %}access to {{ project.name }}{% if granter.name %}, granted by {{ granter.name }}{% endif %}.",
            "Open project",
            "Access granted: {{ project.name }}",
            "You now have access to the project {{ project.name }}.",
        ),
        fr=Copy(
            "Accès accordé à {{ project.name }}",
            "Vous avez désormais accès à {{ project.name }}{% if access.role %} ({{ access.role }}){% endif %}{% if granter.name %}, accordé par {{ granter.name }}{% endif %}.",
            "Ouvrir le projet",
            "Accès accordé : {{ project.name }}",
            "Vous avez maintenant accès au projet {{ project.name }}.",
        ),
    ),
    EventDefinition(
        "review.requested", "Review requested", "Code review requested", COLLAB, MEDIUM, STANDARD,
        {**REVIEW, "repository.name": "data.repositoryName", "author.name": "data.authorName"}, "Reviewer",
        en=Copy(
            "Review requested: {{ review.title }}",
            '{% firstof author.name actor.name %} asked you to review "{{ review.title }}"{% if repository.name %} in {{ repository.name }}{% endif %}.',
            "Start review",
            "Review requested: {{ review.title }}",
            "{% firstof author.name actor.name %} asked you to review {{ review.title }}.",
        ),
        fr=Copy(
            "Revue demandée : {{ review.title }}",
            "{% firstof author.name actor.name %} vous demande de relire « {{ review.title }} »{% if repository.name %} dans {{ repository.name }}{% endif %}.",
            "Commencer la revue",
            "Revue demandée : {{ review.title }}",
            "{% firstof author.name actor.name %} vous demande de relire {{ review.title }}.",
        ),
    ),
    EventDefinition(
        "review.approved", "Review approved", "Code review approved", COLLAB, LOW, INFO,
        {**REVIEW, "reviewer.name": "data.reviewerName"}, "Author",
        en=Copy(
            "Approved: {{ review.title }}",
            '{% firstof reviewer.name actor.name %} approved "{{ review.title }}".',
            "View review",
            "Approved: {{ review.title }}",
            "{% firstof reviewer.name actor.name %} approved {{ review.title }}.",
        ),
        fr=Copy(
            "Approuvée : {{ review.title }}",
            "{% firstof reviewer.name actor.name %} a approuvé « {{ review.title }} ».",
            "Voir la revue",
            "Approuvée : {{ review.title }}",
            "{% firstof reviewer.name actor.name %} a approuvé {{ review.title }}.",
        ),
    ),
    EventDefinition(
        "review.changes_requested", "Changes requested", "Changes requested in review", COLLAB, MEDIUM, STANDARD,
        {**REVIEW, "reviewer.name": "data.reviewerName", "comment.excerpt": "data.commentExcerpt"}, "Author",
        en=Copy(
            "Changes requested: {{ review.title }}",
            '{% firstof reviewer.name actor.name %} requested changes on "{{ review.title }}"' + EXCERPT_EN,
            "View review",
            "Changes requested: {{ review.title }}",
            "{% firstof reviewer.name actor.name %} requested changes on {{ review.title }}.",
        ),
        fr=Copy(
            "Modifications demandées : {{ review.title }}",
            "{% firstof reviewer.name actor.name %} demande des modifications sur « {{ review.title }} »" + EXCERPT_FR,
            "Voir la revue",
            "Modifications demandées : {{ review.title }}",
            "{% firstof reviewer.name actor.name %} demande des modifications sur {{ review.title }}.",
        ),
    ),
    EventDefinition(
        "review.commented", "Review comment", "Comment on review", COLLAB, LOW, INFO,
        {**REVIEW, "comment.excerpt": "data.commentExcerpt"}, "Participants",
        en=Copy(
            "New comment on {{ review.title }}",
            SOMEONE_EN + ' commented on "{{ review.title }}"' + EXCERPT_EN,
            "View comment",
            "New review comment: {{ review.title }}",
            "There is a new comment on the review {{ review.title }}.",
        ),
        fr=Copy(
            "Nouveau commentaire sur {{ review.title }}",
            SOMEONE_FR + " a commenté « {{ review.title }} »" + EXCERPT_FR,
            "Voir le commentaire",
            "Nouveau commentaire de revue : {{ review.title }}",
            "Un nouveau commentaire a été ajouté à la revue {{ review.title }}.",
        ),
    ),
    # --- AI and planning ---------------------------------------------------------------
    EventDefinition(
        "plan.generated", "Plan generated", "AI plan generated", AI, LOW, INFO,
        {**PLAN, "plan.step_count": "data.stepCount"}, "Requester",
        en=Copy(
            "Plan ready: {{ plan.title }}",
            'Your plan "{{ plan.title }}" has been generated{% if plan.step_count %} with {{ plan.step_count }} steps{% endif %}.',
            "Review plan",
            "Plan ready: {{ plan.title }}",
            "Your plan {{ plan.title }} is ready.",
        ),
        fr=Copy(
            "Plan prêt : {{ plan.title }}",
            "Votre plan « {{ plan.title }} » a été généré{% if plan.step_count %} avec {{ plan.step_count }} étapes{% endif %}.",
            "Examiner le plan",
            "Plan disponible : {{ plan.title }}",
            "Votre plan {{ plan.title }} est prêt.",
        ),
    ),
    EventDefinition(
        "plan.approved", "Plan approved", "Plan approved", AI, LOW, INFO,
        {**PLAN, "approver.name": "data.approverName"}, "Requester, team",
        en=Copy(
            "Plan approved: {{ plan.title }}",
            '{% firstof approver.name actor.name %} approved the plan "{{ plan.title }}".',
            "View plan",
            "Plan approved: {{ plan.title }}",
            "The plan {{ plan.title }} was approved.",
        ),
        fr=Copy(
            "Plan approuvé : {{ plan.title }}",
            "{% firstof approver.name actor.name %} a approuvé le plan « {{ plan.title }} ».",
            "Voir le plan",
            "Plan approuvé : {{ plan.title }}",
            "Le plan {{ plan.title }} a été approuvé.",
        ),
    ),
    EventDefinition(
        "plan.rejected", "Plan rejected", "Plan rejected", AI, MEDIUM, STANDARD,
        {**PLAN, "reviewer.name": "data.reviewerName", "rejection.reason": "data.reason"}, "Requester",
        en=Copy(
            "Plan rejected: {{ plan.title }}",
            '{% firstof reviewer.name actor.name %} rejected the plan "{{ plan.title }}"{% if rejection.reason %}: {{ rejection.reason|truncatechars:140 }}{% endif %}.',
            "View plan",
            "Plan rejected: {{ plan.title }}",
            "The plan {{ plan.title }} was rejected.",
        ),
        fr=Copy(
            "Plan refusé : {{ plan.title }}",
            "{% firstof reviewer.name actor.name %} a refusé le plan « {{ plan.title }} »{% if rejection.reason %} : {{ rejection.reason|truncatechars:140 }}{% endif %}.",
            "Voir le plan",
            "Plan refusé : {{ plan.title }}",
            "Le plan {{ plan.title }} a été refusé.",
        ),
    ),
    EventDefinition(
        "execution.started", "Execution started", "Execution started", AI, LOW, INFO,
        {**EXECUTION, "plan.title": "data.planTitle"}, "Requester",
        en=Copy(
            "Execution started: {{ execution.name }}",
            '"{{ execution.name }}" has started{% if plan.title %} for the plan {{ plan.title }}{% endif %}.',
            "Follow progress",
            "Started: {{ execution.name }}",
            "The execution {{ execution.name }} has started.",
        ),
        fr=Copy(
            "Exécution lancée : {{ execution.name }}",
            "« {{ execution.name }} » a démarré{% if plan.title %} pour le plan {{ plan.title }}{% endif %}.",
            "Suivre l'avancement",
            "Exécution lancée : {{ execution.name }}",
            "L'exécution {{ execution.name }} a démarré.",
        ),
    ),
    EventDefinition(
        "execution.completed", "Execution completed", "Execution completed", AI, MEDIUM, STANDARD,
        {**EXECUTION, "execution.duration": "data.duration"}, "Requester",
        en=Copy(
            "Execution completed: {{ execution.name }}",
            '"{{ execution.name }}" finished successfully{% if execution.duration %} in {{ execution.duration }}{% endif %}.',
            "View results",
            "Completed: {{ execution.name }}",
            "The execution {{ execution.name }} completed successfully.",
        ),
        fr=Copy(
            "Exécution terminée : {{ execution.name }}",
            "« {{ execution.name }} » s'est terminée avec succès{% if execution.duration %} en {{ execution.duration }}{% endif %}.",
            "Voir les résultats",
            "Exécution terminée : {{ execution.name }}",
            "L'exécution {{ execution.name }} s'est terminée avec succès.",
        ),
    ),
    EventDefinition(
        "execution.failed", "Execution failed", "Execution failed", AI, HIGH, URGENT,
        {**EXECUTION, "error.message": "data.errorMessage"}, "Requester",
        en=Copy(
            "Execution failed: {{ execution.name }}",
            '"{{ execution.name }}" failed{% if error.message %}: {{ error.message|truncatechars:160 }}{% endif %}.',
            "Investigate",
            "FAILED: {{ execution.name }}",
            "The execution {{ execution.name }} has failed.",
        ),
        fr=Copy(
            "Échec de l'exécution : {{ execution.name }}",
            "« {{ execution.name }} » a échoué{% if error.message %} : {{ error.message|truncatechars:160 }}{% endif %}.",
            "Analyser",
            "ÉCHEC : {{ execution.name }}",
            "L'exécution {{ execution.name }} a échoué.",
        ),
    ),
    EventDefinition(
        "ai.error", "AI error", "AI system error", AI, HIGH, URGENT,
        {"error.message": "data.errorMessage", "error.code": "data.errorCode", "ai.operation": "data.operation"},
        "Requester, admins",
        en=Copy(
            "AI error{% if ai.operation %} during {{ ai.operation }}{% endif %}",
            "The AI service reported an error{% if error.code %} ({{ error.code }}){% endif %}{% if error.message %}: {{ error.message|truncatechars:160 }}{% endif %}.",
            "View details",
            "AI error{% if error.code %} {{ error.code }}{% endif %}{% if ai.operation %} in {{ ai.operation }}{% endif %}",
            "The AI service reported an error{% if ai.operation %} during {{ ai.operation }}{% endif %}.",
        ),
        fr=Copy(
            "Erreur IA{% if ai.operation %} pendant {{ ai.operation }}{% endif %}",
            "Le service d'IA a signalé une erreur{% if error.code %} ({{ error.code }}){% endif %}{% if error.message %} : {{ error.message|truncatechars:160 }}{% endif %}.",
            "Voir les détails",
            "Erreur IA{% if error.code %} {{ error.code }}{% endif %}{% if ai.operation %} pendant {{ ai.operation }}{% endif %}",
            "Le service d'intelligence artificielle a signalé une erreur{% if ai.operation %} pendant {{ ai.operation }}{% endif %}.",
        ),
    ),
    # --- system and admin ------------------------------------------------------------------
    EventDefinition(
        "system.maintenance", "Scheduled maintenance", "Scheduled maintenance", SYSADMIN, MEDIUM, STANDARD,
        {"maintenance.starts_at": "data.startsAt", "maintenance.ends_at": "data.endsAt", "maintenance.description": "data.description"},
        "All users",
        en=Copy(
            "Scheduled maintenance{% if maintenance.starts_at %} on {{ maintenance.starts_at }}{% endif %}",
            "Troubadour will be under maintenance{% if maintenance.starts_at %} from {{ maintenance.starts_at }}{% endif %}{% if maintenance.ends_at %} to {{ maintenance.ends_at }}{% endif %}.{% if maintenance.description %} {{ maintenance.description }}{% endif %}",
            "Details",
            "Maintenance{% if maintenance.starts_at %} {{ maintenance.starts_at }}{% endif %}{% if maintenance.ends_at %} - {{ maintenance.ends_at }}{% endif %}",
            "Troubadour will be under maintenance{% if maintenance.starts_at %} from {{ maintenance.starts_at }}{% endif %}.",
        ),
        fr=Copy(
            "Maintenance prévue{% if maintenance.starts_at %} le {{ maintenance.starts_at }}{% endif %}",
            "Troubadour sera en maintenance{% if maintenance.starts_at %} du {{ maintenance.starts_at }}{% endif %}{% if maintenance.ends_at %} au {{ maintenance.ends_at }}{% endif %}.{% if maintenance.description %} {{ maintenance.description }}{% endif %}",
            "Détails",
            "Maintenance prévue{% if maintenance.starts_at %} {{ maintenance.starts_at }}{% endif %}{% if maintenance.ends_at %} - {{ maintenance.ends_at }}{% endif %}",
            "Troubadour sera en maintenance{% if maintenance.starts_at %} à partir du {{ maintenance.starts_at }}{% endif %}.",
        ),
    ),
    EventDefinition(
        "system.outage", "System outage", "System outage", SYSADMIN, CRIT, CRITICAL,
        {"outage.component": "data.component", "outage.started_at": "data.startedAt", "outage.impact": "data.impact"},
        "Super Admins",
        en=Copy(
            'Outage: {{ outage.component|default:"platform" }}',
            'An outage is affecting {{ outage.component|default:"the platform" }}{% if outage.started_at %} since {{ outage.started_at }}{% endif %}.{% if outage.impact %} Impact: {{ outage.impact }}{% endif %}',
            "Open status page",
            'OUTAGE: {{ outage.component|default:"platform" }}{% if outage.started_at %} since {{ outage.started_at }}{% endif %}',
            'Critical alert. An outage is affecting {{ outage.component|default:"the platform" }}.',
        ),
        fr=Copy(
            'Panne : {{ outage.component|default:"plateforme" }}',
            'Une panne affecte {{ outage.component|default:"la plateforme" }}{% if outage.started_at %} depuis {{ outage.started_at }}{% endif %}.{% if outage.impact %} Impact : {{ outage.impact }}{% endif %}',
            "Voir l'état du service",
            'PANNE : {{ outage.component|default:"plateforme" }}{% if outage.started_at %} depuis {{ outage.started_at }}{% endif %}',
            'Alerte critique. Une panne affecte {{ outage.component|default:"la plateforme" }}.',
        ),
    ),
    EventDefinition(
        "api_key.expiring", "API key expiring", "API key expiring soon", SYSADMIN, HIGH, URGENT,
        {"api_key.name": "data.keyName", "api_key.expires_at": "data.expiresAt"}, "Key owner",
        en=Copy(
            "API key expiring: {{ api_key.name }}",
            'Your API key "{{ api_key.name }}" expires {% if api_key.expires_at %}on {{ api_key.expires_at }}{% else %}soon{% endif %}. Rotate it to avoid an interruption.',
            "Manage API keys",
            "API key {{ api_key.name }} expires {% if api_key.expires_at %}{{ api_key.expires_at }}{% else %}soon{% endif %}",
            "Your API key {{ api_key.name }} expires soon.",
        ),
        fr=Copy(
            "Clé API bientôt expirée : {{ api_key.name }}",
            "Votre clé API « {{ api_key.name }} » expire {% if api_key.expires_at %}le {{ api_key.expires_at }}{% else %}bientôt{% endif %}. Remplacez-la pour éviter une interruption.",
            "Gérer les clés API",
            "Clé API {{ api_key.name }} : expire {% if api_key.expires_at %}le {{ api_key.expires_at }}{% else %}prochainement{% endif %}",
            "Votre clé API {{ api_key.name }} expire bientôt.",
        ),
    ),
    EventDefinition(
        "api_key.expired", "API key expired", "API key expired", SYSADMIN, HIGH, URGENT,
        {"api_key.name": "data.keyName", "api_key.expired_at": "data.expiredAt"}, "Key owner",
        en=Copy(
            "API key expired: {{ api_key.name }}",
            'Your API key "{{ api_key.name }}" expired{% if api_key.expired_at %} on {{ api_key.expired_at }}{% endif %}. Calls using it are refused.',
            "Create a new key",
            "API key {{ api_key.name }} has expired",
            "Your API key {{ api_key.name }} has expired. Calls using it are now refused.",
        ),
        fr=Copy(
            "Clé API expirée : {{ api_key.name }}",
            "Votre clé API « {{ api_key.name }} » a expiré{% if api_key.expired_at %} le {{ api_key.expired_at }}{% endif %}. Les appels qui l'utilisent sont refusés.",
            "Créer une clé",
            "Clé API {{ api_key.name }} expirée",
            "Votre clé API {{ api_key.name }} a expiré. Les appels qui l'utilisent sont désormais refusés.",
        ),
    ),
    EventDefinition(
        "security.suspicious_login", "Suspicious login", "Suspicious login detected", SECURITY, CRIT, CRITICAL,
        {"login.ip": "data.ipAddress", "login.location": "data.location", "login.device": "data.device", "login.at": "data.occurredAt"},
        "User, admins",
        en=Copy(
            "Suspicious sign-in to your account",
            "We noticed a sign-in{% if login.location %} from {{ login.location }}{% endif %}{% if login.ip %} (IP {{ login.ip }}){% endif %}{% if login.device %} on {{ login.device }}{% endif %}{% if login.at %} at {{ login.at }}{% endif %}. If this was not you, change your password now.",
            "Secure my account",
            "Suspicious sign-in{% if login.location %} from {{ login.location }}{% endif %}. Not you? Change your password",
            "Security alert. We noticed a suspicious sign-in to your account{% if login.location %} from {{ login.location }}{% endif %}. If this was not you, change your password now.",
        ),
        fr=Copy(
            "Connexion suspecte à votre compte",
            "Nous avons détecté une connexion{% if login.location %} depuis {{ login.location }}{% endif %}{% if login.ip %} (IP {{ login.ip }}){% endif %}{% if login.device %} sur {{ login.device }}{% endif %}{% if login.at %} le {{ login.at }}{% endif %}. Si ce n'était pas vous, changez votre mot de passe immédiatement.",
            "Sécuriser mon compte",
            "Connexion suspecte{% if login.location %} depuis {{ login.location }}{% endif %}. Pas vous ? Changez votre mot de passe",
            "Alerte de sécurité. Nous avons détecté une connexion suspecte à votre compte{% if login.location %} depuis {{ login.location }}{% endif %}. Si ce n'était pas vous, changez votre mot de passe immédiatement.",
        ),
    ),
    EventDefinition(
        "security.password_changed", "Password changed", "Password changed", SECURITY, MEDIUM, STANDARD,
        {"change.at": "data.changedAt", "change.ip": "data.ipAddress"}, "User",
        en=Copy(
            "Your password was changed",
            "The password of your account was changed{% if change.at %} on {{ change.at }}{% endif %}{% if change.ip %} from IP {{ change.ip }}{% endif %}. If you did not do this, contact your administrator.",
            "Review security",
            "Your Troubadour password was changed. Not you? Contact your admin",
            "The password of your account was changed. If you did not do this, contact your administrator.",
        ),
        fr=Copy(
            "Votre mot de passe a été modifié",
            "Le mot de passe de votre compte a été modifié{% if change.at %} le {{ change.at }}{% endif %}{% if change.ip %} depuis l'IP {{ change.ip }}{% endif %}. Si ce n'est pas vous, contactez votre administrateur.",
            "Vérifier la sécurité",
            "Votre mot de passe Troubadour a été modifié. Pas vous ? Contactez votre admin",
            "Le mot de passe de votre compte a été modifié. Si ce n'est pas vous, contactez votre administrateur.",
        ),
    ),
    EventDefinition(
        "security.2fa_disabled", "Two-factor authentication disabled", "2FA disabled", SECURITY, HIGH, URGENT,
        {"change.at": "data.changedAt", "change.ip": "data.ipAddress", "account.name": "data.accountName"}, "User, admins",
        en=Copy(
            "Two-factor authentication disabled",
            'Two-factor authentication was turned off for {{ account.name|default:"your account" }}{% if change.at %} on {{ change.at }}{% endif %}. If this was not intended, turn it back on now.',
            "Review security",
            '2FA disabled for {{ account.name|default:"your account" }}. Not you? Act now',
            'Security alert. Two factor authentication was turned off for {{ account.name|default:"your account" }}.',
        ),
        fr=Copy(
            "Double authentification désactivée",
            'La double authentification a été désactivée pour {{ account.name|default:"votre compte" }}{% if change.at %} le {{ change.at }}{% endif %}. Si ce n\'était pas voulu, réactivez-la immédiatement.',
            "Vérifier la sécurité",
            '2FA désactivée pour {{ account.name|default:"votre compte" }}. Pas vous ? Agissez vite',
            'Alerte de sécurité. La double authentification a été désactivée pour {{ account.name|default:"votre compte" }}.',
        ),
    ),
    # --- incidents --------------------------------------------------------------------------
    EventDefinition(
        "incident.created", "Incident created", "New incident created", INCIDENTS, HIGH, INCIDENT, INCIDENT_VARS, "On-call, team",
        en=Copy(
            "Incident{% if incident.severity %} {{ incident.severity }}{% endif %}: {{ incident.title }}",
            'A new incident was opened: "{{ incident.title }}"{% if incident.severity %} (severity {{ incident.severity }}){% endif %}.',
            "Open incident",
            "INCIDENT{% if incident.severity %} {{ incident.severity }}{% endif %}: {{ incident.title }}",
            "A new incident was opened{% if incident.severity %}, severity {{ incident.severity }}{% endif %}: {{ incident.title }}.",
        ),
        fr=Copy(
            "Incident{% if incident.severity %} {{ incident.severity }}{% endif %} : {{ incident.title }}",
            "Un nouvel incident a été ouvert : « {{ incident.title }} »{% if incident.severity %} (gravité {{ incident.severity }}){% endif %}.",
            "Ouvrir l'incident",
            "INCIDENT{% if incident.severity %} {{ incident.severity }}{% endif %} : {{ incident.title }}",
            "Un nouvel incident a été ouvert{% if incident.severity %}, gravité {{ incident.severity }}{% endif %} : {{ incident.title }}.",
        ),
    ),
    EventDefinition(
        "incident.assigned", "Incident assigned", "Incident assigned", INCIDENTS, HIGH, INCIDENT,
        {**INCIDENT_VARS, "assigner.name": "data.assignerName"}, "Assignee",
        en=Copy(
            "Incident assigned to you: {{ incident.title }}",
            '{% firstof assigner.name actor.name %} assigned you the incident "{{ incident.title }}"{% if incident.severity %} (severity {{ incident.severity }}){% endif %}.',
            "Open incident",
            "Incident assigned to you: {{ incident.title }}",
            "You have been assigned the incident {{ incident.title }}.",
        ),
        fr=Copy(
            "Incident assigné : {{ incident.title }}",
            "{% firstof assigner.name actor.name %} vous a assigné l'incident « {{ incident.title }} »{% if incident.severity %} (gravité {{ incident.severity }}){% endif %}.",
            "Ouvrir l'incident",
            "Incident assigné : {{ incident.title }}",
            "L'incident {{ incident.title }} vous a été assigné.",
        ),
    ),
    EventDefinition(
        "incident.escalated", "Incident escalated", "Incident escalated", INCIDENTS, CRIT, CRITICAL,
        {**INCIDENT_VARS, "escalation.level": "data.escalationLevel"}, "Escalation target",
        en=Copy(
            "Escalated: {{ incident.title }}",
            'The incident "{{ incident.title }}" was escalated to you{% if escalation.level %} (level {{ escalation.level }}){% endif %} and needs attention now.',
            "Acknowledge",
            "ESCALATED: {{ incident.title }}. Acknowledge now",
            "Critical alert. The incident {{ incident.title }} has been escalated to you and needs your attention now.",
        ),
        fr=Copy(
            "Escaladé : {{ incident.title }}",
            "L'incident « {{ incident.title }} » vous a été escaladé{% if escalation.level %} (niveau {{ escalation.level }}){% endif %} et demande une action immédiate.",
            "Prendre en charge",
            "ESCALADE : {{ incident.title }}. Prenez-le en charge",
            "Alerte critique. L'incident {{ incident.title }} vous a été escaladé et demande votre attention immédiate.",
        ),
    ),
    EventDefinition(
        "incident.updated", "Incident updated", "Incident updated", INCIDENTS, MEDIUM, STANDARD,
        {**INCIDENT_VARS, "update.summary": "data.updateSummary"}, "Assignee, watchers",
        en=Copy(
            "Incident updated: {{ incident.title }}",
            SOMEONE_EN + ' updated "{{ incident.title }}"{% if update.summary %}: {{ update.summary|truncatechars:160 }}{% endif %}.',
            "View incident",
            "Incident update: {{ incident.title }}",
            "The incident {{ incident.title }} was updated.",
        ),
        fr=Copy(
            "Incident mis à jour : {{ incident.title }}",
            SOMEONE_FR + " a mis à jour « {{ incident.title }} »{% if update.summary %} : {{ update.summary|truncatechars:160 }}{% endif %}.",
            "Voir l'incident",
            "Incident mis à jour : {{ incident.title }}",
            "L'incident {{ incident.title }} a été mis à jour.",
        ),
    ),
    EventDefinition(
        "incident.resolved", "Incident resolved", "Incident resolved", INCIDENTS, MEDIUM, STANDARD,
        {**INCIDENT_VARS, "resolution.summary": "data.resolutionSummary"}, "Stakeholders",
        en=Copy(
            "Resolved: {{ incident.title }}",
            'The incident "{{ incident.title }}" is resolved{% if resolution.summary %}: {{ resolution.summary|truncatechars:160 }}{% endif %}.',
            "View incident",
            "RESOLVED: {{ incident.title }}",
            "The incident {{ incident.title }} is resolved.",
        ),
        fr=Copy(
            "Résolu : {{ incident.title }}",
            "L'incident « {{ incident.title }} » est résolu{% if resolution.summary %} : {{ resolution.summary|truncatechars:160 }}{% endif %}.",
            "Voir l'incident",
            "RÉSOLU : {{ incident.title }}",
            "L'incident {{ incident.title }} est résolu.",
        ),
    ),
    EventDefinition(
        "incident.reopened", "Incident reopened", "Incident reopened", INCIDENTS, HIGH, INCIDENT,
        {**INCIDENT_VARS, "reopen.reason": "data.reason"}, "Assignee",
        en=Copy(
            "Reopened: {{ incident.title }}",
            'The incident "{{ incident.title }}" was reopened{% if reopen.reason %}: {{ reopen.reason|truncatechars:160 }}{% endif %}.',
            "Open incident",
            "REOPENED: {{ incident.title }}",
            "The incident {{ incident.title }} has been reopened.",
        ),
        fr=Copy(
            "Rouvert : {{ incident.title }}",
            "L'incident « {{ incident.title }} » a été rouvert{% if reopen.reason %} : {{ reopen.reason|truncatechars:160 }}{% endif %}.",
            "Ouvrir l'incident",
            "ROUVERT : {{ incident.title }}",
            "L'incident {{ incident.title }} a été rouvert.",
        ),
    ),
    # --- calendar ----------------------------------------------------------------------------
    EventDefinition(
        "meeting.reminder", "Meeting reminder", "Meeting starting soon", CALENDAR, MEDIUM, STANDARD,
        {"meeting.title": "data.meetingTitle", "meeting.starts_at": "data.startsAt", "meeting.location": "data.location", "meeting.join_url": "data.joinUrl"},
        "Attendees",
        en=Copy(
            "Starting soon: {{ meeting.title }}",
            '"{{ meeting.title }}" starts {% if meeting.starts_at %}at {{ meeting.starts_at }}{% else %}soon{% endif %}{% if meeting.location %} ({{ meeting.location }}){% endif %}.',
            "Join meeting",
            "Starting {% if meeting.starts_at %}at {{ meeting.starts_at }}{% else %}soon{% endif %}: {{ meeting.title }}",
            "Reminder: the meeting {{ meeting.title }} starts soon.",
        ),
        fr=Copy(
            "Bientôt : {{ meeting.title }}",
            "« {{ meeting.title }} » commence {% if meeting.starts_at %}à {{ meeting.starts_at }}{% else %}bientôt{% endif %}{% if meeting.location %} ({{ meeting.location }}){% endif %}.",
            "Rejoindre la réunion",
            "Réunion {% if meeting.starts_at %}à {{ meeting.starts_at }}{% else %}imminente{% endif %} : {{ meeting.title }}",
            "Rappel : la réunion {{ meeting.title }} commence bientôt.",
        ),
    ),
    EventDefinition(
        "meeting.cancelled", "Meeting cancelled", "Meeting cancelled", CALENDAR, MEDIUM, STANDARD,
        {"meeting.title": "data.meetingTitle", "meeting.starts_at": "data.startsAt", "cancellation.reason": "data.reason"},
        "Attendees",
        en=Copy(
            "Cancelled: {{ meeting.title }}",
            '"{{ meeting.title }}"{% if meeting.starts_at %} planned for {{ meeting.starts_at }}{% endif %} was cancelled{% if actor.name %} by {{ actor.name }}{% endif %}.{% if cancellation.reason %} Reason: {{ cancellation.reason }}{% endif %}',
            "View calendar",
            "Cancelled: {{ meeting.title }}{% if meeting.starts_at %} ({{ meeting.starts_at }}){% endif %}",
            "The meeting {{ meeting.title }} was cancelled.",
        ),
        fr=Copy(
            "Annulée : {{ meeting.title }}",
            "« {{ meeting.title }} »{% if meeting.starts_at %} prévue le {{ meeting.starts_at }}{% endif %} a été annulée{% if actor.name %} par {{ actor.name }}{% endif %}.{% if cancellation.reason %} Motif : {{ cancellation.reason }}{% endif %}",
            "Voir l'agenda",
            "Réunion annulée : {{ meeting.title }}{% if meeting.starts_at %} ({{ meeting.starts_at }}){% endif %}",
            "La réunion {{ meeting.title }} a été annulée.",
        ),
    ),
    EventDefinition(
        "meeting.rescheduled", "Meeting rescheduled", "Meeting rescheduled", CALENDAR, MEDIUM, STANDARD,
        {"meeting.title": "data.meetingTitle", "meeting.old_starts_at": "data.previousStartsAt", "meeting.starts_at": "data.startsAt"},
        "Attendees",
        en=Copy(
            "Rescheduled: {{ meeting.title }}",
            '"{{ meeting.title }}" moved{% if meeting.old_starts_at %} from {{ meeting.old_starts_at }}{% endif %} to {{ meeting.starts_at }}.',
            "View calendar",
            "Moved: {{ meeting.title }} now {{ meeting.starts_at }}",
            "The meeting {{ meeting.title }} was moved to {{ meeting.starts_at }}.",
        ),
        fr=Copy(
            "Déplacée : {{ meeting.title }}",
            "« {{ meeting.title }} » a été déplacée{% if meeting.old_starts_at %} du {{ meeting.old_starts_at }}{% endif %} au {{ meeting.starts_at }}.",
            "Voir l'agenda",
            "Réunion déplacée : {{ meeting.title }}, désormais {{ meeting.starts_at }}",
            "La réunion {{ meeting.title }} a été déplacée au {{ meeting.starts_at }}.",
        ),
    ),
    EventDefinition(
        "calendar.conflict", "Calendar conflict", "Schedule conflict detected", CALENDAR, LOW, INFO,
        {"conflict.first_title": "data.firstTitle", "conflict.second_title": "data.secondTitle", "conflict.starts_at": "data.startsAt"},
        "User",
        en=Copy(
            "Schedule conflict{% if conflict.starts_at %} at {{ conflict.starts_at }}{% endif %}",
            '"{{ conflict.first_title }}" overlaps with "{{ conflict.second_title }}"{% if conflict.starts_at %} at {{ conflict.starts_at }}{% endif %}.',
            "Resolve conflict",
            "Conflict: {{ conflict.first_title }} / {{ conflict.second_title }}",
            "Two of your events overlap: {{ conflict.first_title }} and {{ conflict.second_title }}.",
        ),
        fr=Copy(
            "Conflit d'agenda{% if conflict.starts_at %} à {{ conflict.starts_at }}{% endif %}",
            "« {{ conflict.first_title }} » chevauche « {{ conflict.second_title }} »{% if conflict.starts_at %} à {{ conflict.starts_at }}{% endif %}.",
            "Résoudre le conflit",
            "Conflit : {{ conflict.first_title }} / {{ conflict.second_title }}",
            "Deux de vos événements se chevauchent : {{ conflict.first_title }} et {{ conflict.second_title }}.",
        ),
    ),
    # --- stories -----------------------------------------------------------------------------
    EventDefinition(
        "story.invitation", "Story invitation", "Invited to listen to a story", COLLAB, MEDIUM, INVITATION,
        {
            "inviter.name": "data.inviterName",
            "story.title": "data.storyTitle",
            "invite.url": "data.inviteUrl",
            "invite.message": "data.message",
            "invite.style": "data.conversationStyle",
            "invite.stop_url": "data.stopUrl",
        },
        "Invitee (user, email or phone)",
        link="invite.url",
        extra={"email_footer": {
            "en": "You receive this because {% firstof inviter.name actor.name %} invited you to Troubadour."
                  "{% if invite.stop_url %} Don't want these invitations? Stop them: {{ invite.stop_url }}{% endif %}",
            "fr": "Vous recevez ce message car {% firstof inviter.name actor.name %} vous a invité sur Troubadour."
                  "{% if invite.stop_url %} Vous ne souhaitez plus ces invitations ? Arrêtez-les : {{ invite.stop_url }}{% endif %}",
        }},
        en=Copy(
            '{% firstof inviter.name actor.name %} invited you to hear "{{ story.title }}"',
            '{% firstof inviter.name actor.name %} invited you to listen to the story "{{ story.title }}"{% if invite.style %}, told in a {{ invite.style|lower }} style{% endif %}.{% if invite.message %} "{{ invite.message|truncatechars:300 }}"{% endif %}',
            "Listen to the story",
            '{% firstof inviter.name actor.name %} invited you to hear "{{ story.title }}"',
            "{% firstof inviter.name actor.name %} invited you to listen to the story {{ story.title }}. The link is in the message we sent you.",
        ),
        fr=Copy(
            "{% firstof inviter.name actor.name %} vous invite à écouter « {{ story.title }} »",
            "{% firstof inviter.name actor.name %} vous invite à écouter l'histoire « {{ story.title }} »{% if invite.style %}, racontée sur le ton {{ invite.style|lower }}{% endif %}.{% if invite.message %} « {{ invite.message|truncatechars:300 }} »{% endif %}",
            "Écouter l'histoire",
            '{% firstof inviter.name actor.name %} vous invite à écouter "{{ story.title }}"',
            "{% firstof inviter.name actor.name %} vous invite à écouter l'histoire {{ story.title }}. Le lien se trouve dans le message que nous vous avons envoyé.",
        ),
    ),
    EventDefinition(
        "news.invitation", "News invitation", "Invited to listen to a news article", COLLAB, MEDIUM, INVITATION,
        {
            "inviter.name": "data.inviterName",
            "article.title": "data.articleTitle",
            "article.category": "data.articleCategory",
            "invite.url": "data.inviteUrl",
            "invite.message": "data.message",
            "invite.style": "data.conversationStyle",
        },
        "Invitee (user, email or phone)",
        link="invite.url",
        en=Copy(
            '{% firstof inviter.name actor.name %} shared a news article with you: "{{ article.title }}"',
            '{% firstof inviter.name actor.name %} shared the {% if article.category %}{{ article.category }} {% endif %}article "{{ article.title }}" with you, read in a {% if invite.style %}{{ invite.style|lower }}{% else %}friendly{% endif %} voice.{% if invite.message %} "{{ invite.message|truncatechars:300 }}"{% endif %}',
            "Listen to the article",
            '{% firstof inviter.name actor.name %} shared news with you: "{{ article.title|truncatechars:60 }}"',
            "{% firstof inviter.name actor.name %} shared the news article {{ article.title }} with you. The link is in the message we sent you.",
        ),
        fr=Copy(
            "{% firstof inviter.name actor.name %} vous partage un article : « {{ article.title }} »",
            "{% firstof inviter.name actor.name %} vous partage l'article{% if article.category %} ({{ article.category }}){% endif %} « {{ article.title }} », lu sur le ton {% if invite.style %}{{ invite.style|lower }}{% else %}amical{% endif %}.{% if invite.message %} « {{ invite.message|truncatechars:300 }} »{% endif %}",
            "Écouter l'article",
            '{% firstof inviter.name actor.name %} vous partage un article : "{{ article.title|truncatechars:60 }}"',
            "{% firstof inviter.name actor.name %} vous partage l'article {{ article.title }}. Le lien se trouve dans le message que nous vous avons envoyé.",
        ),
    ),
    EventDefinition(
        "story.invitation_accepted", "Story invitation accepted", "An invitee accepted a story invitation", COLLAB, LOW, ACCEPTED,
        {"invitee.name": "data.inviteeName", "story.title": "data.storyTitle", "invite.style": "data.conversationStyle"},
        "Inviter",
        en=Copy(
            "{{ invitee.name }} accepted your invitation",
            '{{ invitee.name }} accepted your invitation to "{{ story.title }}"{% if invite.style %} ({{ invite.style|lower }} style){% endif %}.',
            "View story",
            "{{ invitee.name }} accepted your invitation to {{ story.title }}",
            "{{ invitee.name }} accepted your invitation to the story {{ story.title }}.",
        ),
        fr=Copy(
            "{{ invitee.name }} a accepté votre invitation",
            "{{ invitee.name }} a accepté votre invitation à « {{ story.title }} »{% if invite.style %} (ton {{ invite.style|lower }}){% endif %}.",
            "Voir l'histoire",
            "{{ invitee.name }} a accepté votre invitation : {{ story.title }}",
            "{{ invitee.name }} a accepté votre invitation à l'histoire {{ story.title }}.",
        ),
    ),
    EventDefinition(
        "story.invitation_declined", "Story invitation declined", "An invitee declined a story invitation", COLLAB, LOW, ACCEPTED,
        {"invitee.name": "data.inviteeName", "story.title": "data.storyTitle", "invite.style": "data.conversationStyle"},
        "Inviter",
        en=Copy(
            "{{ invitee.name }} declined your invitation",
            '{{ invitee.name }} declined your invitation to "{{ story.title }}"{% if invite.style %} ({{ invite.style|lower }} style){% endif %}.',
            "View story",
            "{{ invitee.name }} declined your invitation to {{ story.title }}",
            "{{ invitee.name }} declined your invitation to the story {{ story.title }}.",
        ),
        fr=Copy(
            "{{ invitee.name }} a décliné votre invitation",
            "{{ invitee.name }} a décliné votre invitation à « {{ story.title }} »{% if invite.style %} (ton {{ invite.style|lower }}){% endif %}.",
            "Voir l'histoire",
            "{{ invitee.name }} a decline votre invitation : {{ story.title }}",
            "{{ invitee.name }} a décliné votre invitation à l'histoire {{ story.title }}.",
        ),
    ),
]

EVENTS_BY_KEY: dict[str, EventDefinition] = {event.key: event for event in EVENTS}
