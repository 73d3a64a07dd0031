/* Child processes for the two-process test (scheme-tests/chibi-prelude.scm), not part of
 * the (peer) API: peer.sld does not export them; the test prelude takes them from the
 * library's environment.
 *
 * Why C: the parent starts its child while libpeer's threads (and the job pool's) run, and
 * Chibi's own (chibi process) forks and then runs Scheme in the child before exec, which a
 * multi-threaded process must not do. posix_spawn runs no Scheme between fork and exec.
 * (chibi net) cannot tell the port a listener bound to port 0 got, hence socket_port. */
#include <chibi/eval.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

extern char **environ;

/* Starts args (a list of strings: the program, a path or a name looked up in PATH, then its
 * arguments) with this process's environment and standard ports. The pid, or -errno. */
int peer_glue_spawn(sexp args) {
  sexp l;
  size_t n = 0, i = 0;
  char **argv;
  pid_t pid;
  int rc;
  for (l = args; sexp_pairp(l); l = sexp_cdr(l)) {
    if (!sexp_stringp(sexp_car(l))) return -EINVAL;
    n++;
  }
  if (n == 0 || l != SEXP_NULL) return -EINVAL;
  if (!(argv = calloc(n + 1, sizeof *argv))) return -ENOMEM;
  for (l = args; sexp_pairp(l); l = sexp_cdr(l), i++) {
    size_t len = sexp_string_size(sexp_car(l));
    if (!(argv[i] = malloc(len + 1))) { rc = ENOMEM; goto out; }
    memcpy(argv[i], sexp_string_data(sexp_car(l)), len);
    argv[i][len] = '\0';
  }
  rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
out:
  for (i = 0; i < n; i++) free(argv[i]);
  free(argv);
  return rc == 0 ? (int)pid : -rc;
}

/* Reaps child `pid`: its exit status (0..255; 128 + the signal when a signal ended it);
 * -1 while it runs (when `nohang`); -2 when it is not our child. */
int peer_glue_reap(int pid, int nohang) {
  int status = 0;
  pid_t got;
  do got = waitpid((pid_t)pid, &status, nohang ? WNOHANG : 0);
  while (got < 0 && errno == EINTR);
  if (got == 0) return -1;
  if (got < 0) return -2;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -2;
}

int peer_glue_kill(int pid) { return kill((pid_t)pid, SIGKILL); }

/* The local port of socket `fd` (getsockname), or -1. */
int peer_glue_socket_port(int fd) {
  struct sockaddr_storage a;
  socklen_t len = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &len) != 0) return -1;
  if (a.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&a)->sin_port);
  if (a.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
  return -1;
}
