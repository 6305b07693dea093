from wsgigate.cli import main

raise SystemExit(main())
