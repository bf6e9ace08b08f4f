import sys

from facefactors.cli import main

sys.exit(main())
