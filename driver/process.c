/* driver/process.c - see process.h. */
#include "driver/process.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int process_run(const char *const *argv, const char *log) {
  fflush(stdout); /* what nnc printed so far comes before the child's output */
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (log) {
      int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
      fputc('$', stderr);
      for (int i = 0; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
      fputc('\n', stderr);
      fflush(stderr);
    }
    execvp(argv[0], (char *const *)argv);
    fprintf(stderr, "nnc: error: cannot run '%s': %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
