"""orchbench infrastructure: a cluster, an artifact store and Airflow, Prefect and KFP on it.

Run from infra/: `pulumi up --stack kind` (or `--stack eks`). See docs/infra.md.
"""

import sys
from pathlib import Path

# `pulumi up` runs this file from infra/; make the repo importable even if the project is not
# installed in the virtualenv.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi

from infra.config import load_stack_config
from infra.program import deploy

# Validate the whole config first: a bad key fails here, before any resource is declared.
config = load_stack_config()

for key, value in deploy(config).items():
    pulumi.export(key, value)
