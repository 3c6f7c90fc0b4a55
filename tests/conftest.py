import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "server"))

# The index and findings caches of every server and CLI the tests start go here, never into the
# user's ~/.cache (analysis/cache.py).
os.environ.setdefault("SWITCHEROO_CACHE_DIR", tempfile.mkdtemp(prefix="switcheroo-test-cache-"))
# The servers the tests start make no background pass over their workspace's findings (its
# timing would decide what a first publish shows); tests/lsp/test_index.py turns it on.
os.environ["SWITCHEROO_BACKGROUND"] = "0"
