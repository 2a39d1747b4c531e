import sys

from virality.cli import main

sys.exit(main())
