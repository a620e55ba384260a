"""``python -m chatrec`` runs the same CLI as the ``chatrec`` console script."""

from chatrec.cli.main import main

if __name__ == "__main__":
    main()
