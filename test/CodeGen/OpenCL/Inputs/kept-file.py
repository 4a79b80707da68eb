#!/usr/bin/env python3
"""Prints a file nnc -v kept: kept-file.py LOG NAME.

LOG is nnc's stderr with its line "nnc: kept the temporary files in DIR";
prints DIR/NAME, then removes DIR.  Standard library only.
"""
import os
import shutil
import sys

PREFIX = "nnc: kept the temporary files in "
log, name = sys.argv[1], sys.argv[2]
dirs = [line[len(PREFIX):].strip() for line in open(log) if line.startswith(PREFIX)]
if not dirs:
    sys.exit("%s: no '%s' line" % (log, PREFIX.strip()))
with open(os.path.join(dirs[-1], name)) as f:
    sys.stdout.write(f.read())
shutil.rmtree(dirs[-1], ignore_errors=True)
