"""Optional peers for the benchmark: other servers a user might pick, on the same model.

- `bentoml`: BentoML 1.4.39, a transformers pipeline behind one batchable API
  (bentoml_service.py); BentoML's adaptive batching sizes batches up to 32.
- `mlserver`: Seldon MLServer 1.7.1 with its Hugging Face runtime (mlserver_runtime.py),
  adaptive batching up to 32 requests or 5 ms.

Each runs from its own virtualenv (`ensure_env`), built from requirements-<peer>.txt, since
their pins (MLServer needs transformers 4.41) cannot live beside the benchmark's own.
"""

from bench.peers.paths import PEERS
from bench.peers.specs import peer_spec
from bench.peers.venv import ensure_env

__all__ = ["PEERS", "ensure_env", "peer_spec"]
