import sys

from mien.cli import main

sys.exit(main())
