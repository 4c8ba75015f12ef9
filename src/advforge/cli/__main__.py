"""``python -m advforge.cli`` (what ``torchrun ... -m advforge.cli`` runs)."""

import sys

from advforge.cli import main

sys.exit(main())
