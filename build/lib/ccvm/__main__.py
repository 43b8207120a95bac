import sys

from ccvm.cli import main

sys.exit(main())
