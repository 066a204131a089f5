#!/usr/bin/env bash
# Regenerate tests/data/metafor_reference.json from metafor.
# Needs R with metafor 3.8-1, metadat and jsonlite (see tests/reference/README.md).
# Run from anywhere; the script works from the repository root.
set -euo pipefail
cd "$(dirname "$0")/../.."
Rscript --vanilla tests/reference/run_metafor.R
Rscript --vanilla tests/reference/run_metafor_rom.R
