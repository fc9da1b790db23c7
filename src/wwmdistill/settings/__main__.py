"""`python -m wwmdistill.settings > schemas/config.schema.yaml` regenerates the schema."""

import sys

from wwmdistill.settings import schema_text

sys.stdout.write(schema_text())
