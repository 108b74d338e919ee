"""``manage.py install_allocator``: register the project's default resource allocator and take it through review.

The allocator (``resource_allocator:1.0-default``, docs/runtime.md §6) is an ordinary policy: it is registered as
a draft by ``--submitter``, submitted, and approved by the ``--reviewer`` accounts named (as many as the deployment's
approval rule needs; none may be the submitter), so a production deployment releases it under the same dual
control as any other policy. The demo data does the same with its demo accounts. Idempotent.
"""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from governance import lifecycle
from governance.choices import LifecycleStatus
from policies.services import install_sample


class Command(BaseCommand):
    help = "Register the default resource allocator policy, submit it and approve it by the named reviewers."

    def add_arguments(self, parser):
        parser.add_argument("--submitter", required=True, help="the username that registers and submits it")
        parser.add_argument("--reviewer", action="append", default=[],
                            help="a reviewer's username (repeat: as many as the approval rule needs)")

    def handle(self, *args, submitter, reviewer, **options):
        users = get_user_model().objects
        author = users.filter(username=submitter).first()
        if author is None:
            raise CommandError(f"no user named {submitter!r}")
        reviewers = []
        for name in reviewer:
            user = users.filter(username=name).first()
            if user is None:
                raise CommandError(f"no user named {name!r}")
            if user.pk == author.pk:
                raise CommandError("the submitter can't also approve it: name other reviewers")
            reviewers.append(user)
        policy, created = install_sample("resource_allocator", author, asset_name="resource-allocator",
                                         description="the default resource allocator", tags=["allocator", "system"])
        self.stdout.write(f"{'registered' if created else 'already registered'}: {policy.policy_rule_uri} "
                          f"({policy.status})")
        if policy.status == LifecycleStatus.DRAFT:
            policy = lifecycle.submit(policy, author, "install_allocator: the project's default allocator")
        for user in reviewers:
            policy.refresh_from_db()
            if policy.status != LifecycleStatus.IN_REVIEW:
                break
            policy = lifecycle.approve(policy, user, "install_allocator: the project's default allocator")
        policy.refresh_from_db()
        needed = lifecycle.approvals_required()
        if policy.status == LifecycleStatus.IN_REVIEW:
            self.stdout.write(f"in review: it needs {needed} approval(s); name more --reviewer accounts, or approve "
                              "it on the review page")
        else:
            self.stdout.write(f"{policy.policy_rule_uri} is {policy.status}")
