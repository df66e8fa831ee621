from opplan.cli import main

raise SystemExit(main())
