from stressdeck.cli import main

raise SystemExit(main())
