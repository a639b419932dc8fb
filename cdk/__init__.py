"""The CDK app that deploys WebOrdinary to AWS (``cdk deploy``): see ``cdk/README.md``.

Everything here is named from :mod:`workflows.names` and loads the same ``asl/*.asl.json`` files the embedded
stack runs, so the deployed system and the local one cannot drift.
"""

from __future__ import annotations

import os

# jsii's Node runtime prints a full-screen banner on every start when the machine's Node is past its end of
# life. It says nothing about our app and buries the synth output, so silence it for the Node majors we know
# run the CDK correctly (the value is the major version, as jsii expects).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
