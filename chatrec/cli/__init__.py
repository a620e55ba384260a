"""The ``chatrec`` command line: :mod:`chatrec.cli.main` holds the group; one module per command group."""
