"""`python -m core.cli`: how detached runs and each rank of a multi-process run are started."""

from core.cli.main import finish, main

finish(main())
