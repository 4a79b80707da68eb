#!/usr/bin/env python3
"""Runs a command and checks its exact exit status (lit's `not` accepts any
nonzero one):  exit-status.py STATUS CMD ARGS...  Passes the command's
stdout and stderr through; exits 1 when the status differs."""
import subprocess
import sys

want = int(sys.argv[1])
r = subprocess.run(sys.argv[2:])
if r.returncode != want:
    sys.stderr.write(f"exit-status.py: expected exit status {want}, got {r.returncode}\n")
    sys.exit(1)
