from stressdeck.cli import main

# Guarded: worker processes are spawned, and spawn imports the main module again.
if __name__ == "__main__":
    raise SystemExit(main())
