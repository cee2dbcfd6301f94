from ste_mcp.cli import main

raise SystemExit(main())
