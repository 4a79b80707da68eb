#!/usr/bin/env python3
"""Kills one rank of a data-parallel run and times the end of the job.

    mpi-kill.py [--term] [--wait-for PATH] MPIRUN-ARGS... -- TRAINER ARGS...

Starts `MPIRUN-ARGS TRAINER ARGS`, waits until the trainer's processes
(the children of mpirun named like TRAINER) have run a second, SIGKILLs
the one with the highest pid (--term: sends SIGTERM to mpirun instead,
which forwards it to every rank; --wait-for: only once PATH exists, a
checkpoint the run has written), and waits at most 30 s for mpirun to end.
Prints `ended: status=nonzero within=30s` when it ended with a non-zero
status in time, else what happened, and exits 1.
"""
import os, signal, subprocess, sys, time

def children(pid, name):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        if ppid == pid and name.startswith(comm):
            out.append(int(d))
    return out

def main():
    i = sys.argv.index("--")
    launcher, trainer = sys.argv[1:i], sys.argv[i + 1:]
    term = launcher[0] == "--term"
    if term:
        launcher = launcher[1:]
    wait_for = None
    if launcher[0] == "--wait-for":
        wait_for, launcher = launcher[1], launcher[2:]
    name = os.path.basename(trainer[0])
    p = subprocess.Popen(launcher + trainer, stdout=subprocess.DEVNULL)
    ranks = []
    deadline = time.time() + 30
    while time.time() < deadline and len(ranks) < 2 and p.poll() is None:
        time.sleep(0.2)
        ranks = children(p.pid, name)
    if len(ranks) < 2:
        p.kill()
        sys.exit(f"mpi-kill: found {len(ranks)} ranks of {name} under mpirun (status {p.poll()})")
    time.sleep(1)
    while wait_for and not os.path.exists(wait_for) and time.time() < deadline and p.poll() is None:
        time.sleep(0.1)
    if term:
        p.send_signal(signal.SIGTERM)
    else:
        os.kill(max(ranks), signal.SIGKILL)
    t0 = time.time()
    try:
        status = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        for r in ranks:
            try:
                os.kill(r, signal.SIGKILL)
            except OSError:
                pass
        sys.exit("mpi-kill: the job still runs 30 s after a rank was killed")
    took = time.time() - t0
    if status == 0:
        sys.exit(f"mpi-kill: the job ended with status 0 after a rank was killed ({took:.1f} s)")
    print(f"ended: status=nonzero within=30s ({took:.1f} s)")

main()
