"""`python -m schema > schema.graphql` prints the schema that is committed and compared in tests."""

import sys

from schema import print_schema

sys.stdout.write(print_schema())
