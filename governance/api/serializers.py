"""The governance fields every governed record shows in the API: approvals, signature, deprecation."""
from rest_framework import serializers

from governance.choices import LifecycleStatus


def _reviews(submission):
    reviews = getattr(submission, "prefetched_reviews", None)
    return submission.reviews.all() if reviews is None else reviews


class GovernedSerializerMixin(serializers.Serializer):
    """Read-only governance fields of a governed record: approvals, signature, deprecation."""

    approvals = serializers.SerializerMethodField()
    signature = serializers.SerializerMethodField()
    deprecated = serializers.SerializerMethodField()
    replacement_uri = serializers.SerializerMethodField()

    @staticmethod
    def _release(obj):
        releases = getattr(obj, "prefetched_releases", None)  # set by the viewset's with_governance()
        if releases is None:
            releases = obj.releases.all()
        return releases[0] if releases else None

    @staticmethod
    def _latest_submission(obj):
        submissions = getattr(obj, "prefetched_submissions", None)
        if submissions is None:
            submissions = obj.submissions.all()
        return max(submissions, key=lambda s: s.pk, default=None)

    def get_approvals(self, obj) -> list[dict]:
        submission = self._latest_submission(obj)
        if submission is None or submission.outcome == "rejected":
            return []
        return [
            {"reviewer": review.reviewer_username, "comment": review.comment, "approved_at": review.created_at.isoformat()}
            for review in _reviews(submission)
            if review.verdict == "approve"
        ]

    def get_signature(self, obj) -> dict | None:
        release = self._release(obj)
        if release is None or not release.signature:
            return None
        return {"algorithm": "ed25519", "key_id": release.key_id, "signature": release.signature,
                "signed_at": release.approved_at.isoformat()}

    def get_deprecated(self, obj) -> bool:
        return obj.status == LifecycleStatus.DEPRECATED

    def get_replacement_uri(self, obj) -> str | None:
        release = self._release(obj)
        return (release.replacement_uri or None) if release is not None else None
