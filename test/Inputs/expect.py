"""The --expect conditions of the check-*.py scripts: each a Python
expression over the names in env, printed as `TAG: ok: COND` or
`TAG: FAILED: COND`.  Standard library only."""


def check(tag, conds, env):
    """Evaluates every condition; returns the exit status (1 if any fails)."""
    failed = 0
    for cond in conds:
        try:
            ok = bool(eval(cond, {}, env))
        except Exception as e:  # a missing key, a typo: report it as a failure
            ok, cond = False, "%s (%s: %s)" % (cond, type(e).__name__, e)
        print("%s: %s: %s" % (tag, "ok" if ok else "FAILED", cond))
        failed += not ok
    return 1 if failed else 0
