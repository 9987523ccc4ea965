"""Bodies of `prefdata` commands that live outside cli.py (each module registers its own)."""
