import sys

from ..cli.render import main

sys.exit(main())
