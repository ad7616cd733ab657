from billportal.cli import main

raise SystemExit(main())
