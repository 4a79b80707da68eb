#!/usr/bin/env python3
"""Kills a trainer at random moments and resumes it; the result must be the
uninterrupted run's, bit for bit.

    kill-resume.py TRAIN WORKDIR [--kills N] [--seed S] [-- TRAINER OPTIONS...]

1. Runs TRAIN OPTIONS --save full.safetensors uninterrupted, then again
   checkpointing every step (timed; the result must not change).
2. Starts TRAIN OPTIONS --checkpoint ck --checkpoint-every 1 and sends
   SIGTERM once it has saved a step, then resumes it and sends SIGINT the
   same way: the trainer must exit 143 (130) after saving, with its one
   line on stderr.
3. Starts it again with --resume ck (once a checkpoint exists) and SIGKILLs
   it after a random delay (seeded; about 1/N of the timed run, adapting so
   that kills keep landing inside training), N times; the checkpoint must be
   a whole file after every kill (never a partial one in its place).  When
   the checkpoint reaches the last step, a new round starts from scratch.
4. Resumes to the end with --save resumed.safetensors and compares it with
   full.safetensors byte for byte.

Prints one line per phase and "kill-resume: ok" (or FAILED and exit 1).
"""
import json
import os
import random
import signal
import subprocess
import sys
import time


def fail(msg):
    print("kill-resume: FAILED: " + msg)
    sys.exit(1)


def step_of(path):
    """The "step" in a safetensors file's metadata; 0 when there is no file."""
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        hlen = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(hlen).decode("utf-8"))
    return int(header.get("__metadata__", {}).get("step", 0))


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        extra = args[args.index("--") + 1:]
        args = args[:args.index("--")]
    train, work = args[0], args[1]
    kills, seed = 20, 1
    i = 2
    while i < len(args):
        if args[i] == "--kills":
            kills = int(args[i + 1])
        elif args[i] == "--seed":
            seed = int(args[i + 1])
        i += 2
    rng = random.Random(seed)
    os.makedirs(work, exist_ok=True)
    ck = os.path.join(work, "ck")
    ckfile = os.path.join(ck, "checkpoint.safetensors")
    full = os.path.join(work, "full.safetensors")
    resumed = os.path.join(work, "resumed.safetensors")
    for f in (full, resumed):
        if os.path.exists(f):
            os.remove(f)
    if os.path.isdir(ck):
        for f in os.listdir(ck):
            os.remove(os.path.join(ck, f))
    devnull = subprocess.DEVNULL

    r = subprocess.run([train] + extra + ["--save", full], stdout=devnull, stderr=subprocess.PIPE)
    if r.returncode != 0:
        fail("the uninterrupted run failed: " + r.stderr.decode())
    # The same run checkpointing every step, timed: the kills fall within it.
    full_ck = os.path.join(work, "full-ck.safetensors")
    t0 = time.monotonic()
    r = subprocess.run([train] + extra + ["--checkpoint", os.path.join(work, "ck-full"), "--checkpoint-every", "1",
                                          "--save", full_ck], stdout=devnull, stderr=subprocess.PIPE)
    t_full = time.monotonic() - t0
    if r.returncode != 0:
        fail("the checkpointing run failed: " + r.stderr.decode())
    if open(full, "rb").read() != open(full_ck, "rb").read():
        fail("checkpointing changed the result")
    print("uninterrupted: %.3f s with a checkpoint every step" % t_full)

    def command():
        cmd = [train] + extra + ["--checkpoint", ck, "--checkpoint-every", "1"]
        if os.path.exists(ckfile):
            cmd += ["--resume", ck]
        return cmd

    # SIGTERM, then SIGINT on the resumed run, each once the run has saved a
    # step (so its handler is in place, however slow the start): finish the
    # step, save, one line, exit 143 or 130.  A run whose checkpoint is at
    # the last step starts a new round from scratch.
    total = step_of(full)
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        if step_of(ckfile) >= total and os.path.exists(ckfile):
            os.remove(ckfile)
        before = step_of(ckfile)
        p = subprocess.Popen(command(), stdout=devnull, stderr=subprocess.PIPE)
        while p.poll() is None and step_of(ckfile) <= before:
            time.sleep(0.002)
        p.send_signal(sig)
        _, err = p.communicate()
        err = err.decode()
        name = signal.Signals(sig).name
        if p.returncode == code:
            hint = "resume with --resume %s --checkpoint %s" % (ck, ck)  # a command that goes on saving
            if ("interrupted by %s after step" % name) not in err or hint not in err:
                fail("%s: unexpected message: %s" % (name, err))
            print("%s: exit %d" % (name.lower(), code))
        elif p.returncode == 0 or (p.returncode == -sig and step_of(ckfile) >= total):
            print("%s: the run had finished" % name.lower())  # its last step saved before the signal came
        else:
            fail("%s: exit %d: %s" % (name, p.returncode, err))

    # SIGKILL at random moments: each run resumes from the last checkpoint.
    # The delays adapt so that kills keep landing inside training: shorter
    # after a run that finished first, longer after one that saved nothing.
    # A checkpoint at the last step starts a new round from scratch.
    scale = 2.0 * t_full / kills
    finished_early, progressed, rounds = 0, 0, 1
    for k in range(kills):
        before = step_of(ckfile)
        p = subprocess.Popen(command(), stdout=devnull, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.0, scale))
        p.send_signal(signal.SIGKILL)
        _, err = p.communicate()
        if p.returncode == 0:
            finished_early += 1  # it ended before the kill
            scale *= 0.6
        elif p.returncode != -signal.SIGKILL:
            fail("run %d exited %d before the kill: %s" % (k, p.returncode, err.decode()))
        if os.path.exists(ckfile):
            with open(ckfile, "rb") as f:
                blob = f.read()
            hlen = int.from_bytes(blob[:8], "little") if len(blob) >= 8 else -1
            if hlen < 0 or 8 + hlen > len(blob) or b'"format":"nnc-checkpoint-2"' not in blob[8:8 + hlen]:
                fail("after kill %d the checkpoint is not a whole file (%d bytes)" % (k, len(blob)))
        after = step_of(ckfile)
        if p.returncode != 0 and after > before:
            progressed += 1
        elif p.returncode != 0:
            scale = min(scale * 1.3, t_full)
        if after >= total:
            os.remove(ckfile)
            rounds += 1
    print("kills: %d (%d after progress, %d runs had finished first; %d rounds; the checkpoint is at step %d of %d)" %
          (kills, progressed, finished_early, rounds, step_of(ckfile), total))

    r = subprocess.run(command() + ["--save", resumed], stdout=devnull, stderr=subprocess.PIPE)
    if r.returncode != 0:
        fail("the final resume failed: " + r.stderr.decode())
    a = open(full, "rb").read()
    b = open(resumed, "rb").read()
    if a != b:
        fail("the resumed parameters differ from the uninterrupted run's (%d and %d bytes)" % (len(a), len(b)))
    print("kill-resume: ok (identical %d-byte files)" % len(a))


if __name__ == "__main__":
    main()
