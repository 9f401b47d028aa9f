"""Notices: short explanation mails about a violation, to the sender, the unit head, admins.

Rendered from Jinja2 templates (package `templates/`, overridable by `notices.templates`) and
queued through the gateway's own queue (direction "local", null envelope sender) in the same
transaction as the violation record. They never pass through the pre-acceptance stages, so a
notice is never classified, flagged or blocked itself, and a notice that cannot be delivered
bounces to nobody (no loop).
"""

from mailgw.notices.render import Notice, NoticeRenderer, plain_evidence

__all__ = ["Notice", "NoticeRenderer", "plain_evidence"]
