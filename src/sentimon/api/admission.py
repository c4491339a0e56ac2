"""Load shedding before the request is read: a prediction the batcher would refuse anyway is
answered 429 as soon as its head arrives.

Past capacity most requests are refused, and every refusal costs the event loop what admitted
requests and probes need. Through the app, a refusal is routed, its body read, parsed and
validated, an exception raised and rendered; here it is one admission check and a prebuilt
answer (the same status, `Retry-After` and error body as the batcher's `Overloaded`). The
request id, access log and HTTP metrics still apply: this sits inside those middlewares. A
request that is refused here is not validated, so a malformed one gets its 4xx on the retry.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from sentimon.api.middleware import send_error
from sentimon.service import SentimentService

PREDICTION_PATHS = frozenset({"/predict", "/predict/batch", "/analyze-sentiment/"})


class AdmissionGate:
    """Refuses POSTs to `paths` with 429 while the batcher would refuse even one text."""

    def __init__(
        self, app: ASGIApp, service: SentimentService, paths: frozenset[str] = PREDICTION_PATHS
    ) -> None:
        self.app = app
        self.service = service
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths:
            batcher = self.service.batcher
            refusal = batcher.refusal(1) if batcher is not None and self.service.ready else None
            if refusal is not None:
                await send_error(send, self.service.metrics, scope["path"], refusal)
                return
        await self.app(scope, receive, send)
