"""Server-initiated work-done progress ($/progress), where the client supports it: what the
workspace index and the verify command share."""

from __future__ import annotations

import logging

from lsprotocol import types as t

log = logging.getLogger(__name__)


class WorkDone:
    """A progress token of the server's; `enabled` turns False when the client has no progress
    support or refuses the token (the work then runs without a progress bar)."""

    def __init__(self, ls, token: str):
        self.ls, self.token = ls, token
        caps = ls.client_capabilities
        self.enabled = bool(caps and caps.window and caps.window.work_done_progress)

    async def open(self, begin: t.WorkDoneProgressBegin) -> bool:
        """Create the token and begin; False where there is no progress bar to show."""
        if not self.enabled:
            return False
        try:
            await self.ls.work_done_progress.create_async(self.token)
        except Exception as e:          # a client that refuses
            log.warning("work done progress: %s", e)
            self.enabled = False
            return False
        self.ls.work_done_progress.begin(self.token, begin)
        return True
