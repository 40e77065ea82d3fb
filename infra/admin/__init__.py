"""Operator tools that work on a deployed stack directly, beside the API: `python -m infra.admin`
creates the first admin key of a deployment (nobody can call the admin API before one exists),
lists, rotates and revokes admin keys. The local runtime bootstraps its admin key through the same
code (`infra/admin/keys.py`).

The keys API's rules and store are reused as they ship (`functions/routes/logic/keys.py`,
`functions/routes/dal/keys_store.py`); they import the shared layer, which in Lambda is on the
path as a layer and here is read from `layers/`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_LAYERS = Path(__file__).resolve().parents[2] / "layers"

if importlib.util.find_spec("gateway_core") is None:
    sys.path.append(str(_LAYERS))
