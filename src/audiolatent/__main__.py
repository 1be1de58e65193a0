from audiolatent.cli.main import main

raise SystemExit(main())
