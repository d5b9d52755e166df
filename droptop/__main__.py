from droptop.cli import main

raise SystemExit(main())
