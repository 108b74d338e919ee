#!/usr/bin/env python
"""Django's command-line entry point for the PolicyGrid portal (portal/commandline.py checks the database first)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from portal.commandline import main

    sys.exit(main(sys.argv))
