/* driver/process.h - running another program (cc, a trainer, the
 * reference interpreter) from nnc: fork/execvp with an argument vector,
 * never a shell, so paths need no quoting. */
#ifndef NNC_PROCESS_H
#define NNC_PROCESS_H

/* Runs argv (argv[0] is looked up on PATH; argv ends with NULL) and waits
 * for it.  With log, its stdout and stderr are appended to that file after
 * a `$ argv...` line.  Returns its exit status, 128 + the signal when it
 * was killed, 127 when it could not be run, or -1 (errno set) when no
 * process could be started or waited for. */
int process_run(const char *const *argv, const char *log);

#endif
