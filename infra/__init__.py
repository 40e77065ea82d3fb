"""CDK app, Lambda asset build, the admin CLI and the local runtime of the finance integration gateway.

The operator tools (the admin CLI, the local runtime's bootstrap) run the layer's shared code
(`gateway_core`: key hashing, audit events) outside Lambda, so its source folder is importable
from here. The Lambda functions themselves never see this: each runs from its own assets.
"""

import sys
from pathlib import Path

_LAYER_SOURCE = str(Path(__file__).resolve().parent.parent / "layers")
if _LAYER_SOURCE not in sys.path:
    sys.path.append(_LAYER_SOURCE)
