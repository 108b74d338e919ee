"""Background work of the audit trail: the periodic signed checkpoint of the chain head (Celery beat)."""
from celery import shared_task

from audit.services import checkpoint_head
from governance.signing import active_key


def sign_head_now():
    """Sign the head, making the first signing key if the deployment has none yet (that is audited)."""
    active_key(None)
    return checkpoint_head()


@shared_task(name="audit.checkpoint", ignore_result=True)
def checkpoint():
    """Every ``AUDIT_CHECKPOINT_MINUTES``: a quiet log still gets its head signed (the every-N rule doesn't)."""
    made = sign_head_now()
    return made.seq if made else None
