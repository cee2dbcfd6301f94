"""One lock for importing the transformers stack (transformers, accelerate, sentence-transformers).

The server imports it lazily from worker threads: the embedder's first use and the packaged model's
conversion can start at once. Two threads importing that circular package graph at the same time can
each see the other's half-initialised module ("cannot import name 'dispatch_model' from partially
initialized module 'accelerate.big_modeling'"), and the broken module stays in ``sys.modules``, so the
model never opens (seen on a fresh clone's first ``serve``). Every such import goes through this lock.
"""

from __future__ import annotations

import threading

ML_IMPORT_LOCK = threading.RLock()
