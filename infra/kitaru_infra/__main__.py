import sys

from kitaru_infra.cli import main

sys.exit(main())
