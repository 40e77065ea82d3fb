"""Synthesize a CDK app into a directory, in its own process.

jsii keeps a Node process for the life of the Python process that loaded aws_cdk; synthesizing in
a child keeps Node out of the long-running runtime (less memory, and Ctrl-C, which reaches the
whole process group, cannot leave jsii failing at exit).
Usage: python -m infra.local.synth module:function OUTDIR [CONTEXT_JSON]
"""

from __future__ import annotations

import importlib
import json
import sys


def main(argv: list[str]) -> int:
    app_ref, outdir = argv[0], argv[1]
    context = json.loads(argv[2]) if len(argv) > 2 else {}
    module_name, _, function_name = app_ref.partition(":")
    build_app = getattr(importlib.import_module(module_name), function_name or "build_app")
    build_app(outdir=outdir, context=context or None).synth()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
