/* codegen/backend_registry.c - the table of targets and the plugin loader
 * (see backend.h). */
#include "codegen/backend.h"

#include "support/diag.h"
#include "support/arena.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_BACKENDS = 128 };

typedef struct Entry {
  const NncBackend *b;
  const char *origin; /* plugin path; NULL = built in */
} Entry;

static Entry table[MAX_BACKENDS];
static int ntable;
static bool builtins_done, search_done;

/* The fields an NncBackend of API 1 must have. */
#define BACKEND_MIN_SIZE (offsetof(NncBackend, compile) + sizeof(void (*)(void)))

static bool check_name(const char *name) {
  if (!name || !*name || strlen(name) > 64) return false;
  for (const char *s = name; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
          *s == '-' || *s == '.'))
      return false;
  return true;
}

static void register_builtins(void) {
  if (builtins_done) return;
  builtins_done = true;
  const NncBackend *builtins[MAX_BACKENDS];
  int n = 0;
  builtins[n++] = &nnc_backend_cpu; /* the default target: first */
  builtins[n++] = &nnc_backend_gpu;
  for (int i = 0; nnc_backends_opencl[i]; i++) builtins[n++] = nnc_backends_opencl[i];
  builtins[n++] = &nnc_backend_interp;
  for (int i = 0; i < n; i++)
    if (!backend_register(builtins[i], NULL))
      nnc_internal_error(__FILE__, __LINE__, "the built-in backend '%s' does not register", builtins[i]->name);
}

bool backend_register(const NncBackend *b, const char *origin) {
  const char *who = origin ? origin : "built-in backend";
  if (!builtins_done && origin) register_builtins();
  if (b->api_version != NNC_BACKEND_API_VERSION) {
    diag_error_plain("%s: backend '%s' is built for nnc backend API %u, this nnc has %d", who,
                     b->name && check_name(b->name) ? b->name : "?", b->api_version, NNC_BACKEND_API_VERSION);
    return false;
  }
  if (b->struct_size < BACKEND_MIN_SIZE) {
    diag_error_plain("%s: malformed backend (struct_size %u, at least %zu expected)", who, b->struct_size,
                     (size_t)BACKEND_MIN_SIZE);
    return false;
  }
  if (!check_name(b->name)) {
    diag_error_plain("%s: a backend's name must be 1 to 64 letters, digits, '_', '-' or '.'", who);
    return false;
  }
  if (!b->compile && !(b->flags & NNC_BACKEND_NO_KERNELS)) {
    diag_error_plain("%s: backend '%s' has no compile function", who, b->name);
    return false;
  }
  for (int i = 0; i < ntable; i++)
    if (!strcmp(table[i].b->name, b->name)) {
      diag_error_plain("%s: target '%s' is already registered (%s)", who, b->name,
                       table[i].origin ? table[i].origin : "built in");
      return false;
    }
  if (ntable == MAX_BACKENDS) {
    diag_error_plain("%s: too many backends (at most %d)", who, MAX_BACKENDS);
    return false;
  }
  table[ntable].b = b;
  table[ntable].origin = origin ? nnc_xstrdup(origin) : NULL;
  ntable++;
  return true;
}

/* Paths of plugins already loaded (a file found twice is loaded once). */
static char *loaded[MAX_BACKENDS];
static int nloaded;

bool backend_load_plugin(const char *path) {
  register_builtins();
  char real[PATH_MAX];
  const char *key = realpath(path, real) ? real : path;
  for (int i = 0; i < nloaded; i++)
    if (!strcmp(loaded[i], key)) return true;
  /* dlopen searches the library path for a name without '/': a plugin is a file. */
  char local[PATH_MAX + 2];
  const char *open_path = path;
  if (!strchr(path, '/')) {
    snprintf(local, sizeof local, "./%s", path);
    open_path = local;
  }
  void *h = dlopen(open_path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *why = dlerror();
    diag_error_plain("cannot load plugin '%s': %s", path, why ? why : "unknown error");
    return false;
  }
  dlerror();
  void *sym = dlsym(h, NNC_BACKEND_PLUGIN_SYMBOL);
  if (!sym) {
    diag_error_plain("%s: not an nnc backend plugin (no '%s' symbol)", path, NNC_BACKEND_PLUGIN_SYMBOL);
    dlclose(h);
    return false;
  }
  NncPluginEntry entry;
  memcpy(&entry, &sym, sizeof entry); /* object pointer -> function pointer, as POSIX allows */
  const NncPlugin *pl = entry();
  if (!pl) {
    diag_error_plain("%s: %s() returned no plugin", path, NNC_BACKEND_PLUGIN_SYMBOL);
    return false;
  }
  if (pl->api_version != NNC_BACKEND_API_VERSION) {
    diag_error_plain("%s: built for nnc backend API %u, this nnc has %d (rebuild the plugin against this nnc's "
                     "nnc/backend.h)",
                     path, pl->api_version, NNC_BACKEND_API_VERSION);
    return false;
  }
  if (pl->struct_size < offsetof(NncPlugin, backends) + sizeof(void *) || pl->nbackends < 0 ||
      pl->nbackends > MAX_BACKENDS || (pl->nbackends && !pl->backends)) {
    diag_error_plain("%s: malformed plugin description", path);
    return false;
  }
  if (nloaded < MAX_BACKENDS) loaded[nloaded++] = nnc_xstrdup(key);
  bool ok = true;
  for (int i = 0; i < pl->nbackends && ok; i++) {
    if (!pl->backends[i]) {
      diag_error_plain("%s: backend %d is NULL", path, i);
      return false;
    }
    ok = backend_register(pl->backends[i], path);
  }
  return ok;
}

static bool ends_with_so(const char *s) {
  size_t n = strlen(s);
  return n > 3 && !strcmp(s + n - 3, ".so");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Loads every *.so in dir, in name order; a missing directory is fine. */
static bool load_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return true;
  char *names[256];
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) && n < 256;)
    if (e->d_name[0] != '.' && ends_with_so(e->d_name)) names[n++] = nnc_xstrdup(e->d_name);
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  bool ok = true;
  for (int i = 0; i < n; i++) {
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    struct stat st;
    if (ok && stat(path, &st) == 0 && S_ISREG(st.st_mode)) ok = backend_load_plugin(path);
    free(names[i]);
  }
  return ok;
}

bool backend_load_search_path(void) {
  register_builtins();
  if (search_done) return true;
  search_done = true;
  bool ok = true;
  const char *env = getenv("NNC_PLUGIN_PATH");
  if (env && *env) {
    char *copy = nnc_xstrdup(env);
    for (char *save = NULL, *tok = strtok_r(copy, ":", &save); tok && ok; tok = strtok_r(NULL, ":", &save))
      ok = load_dir(tok);
    free(copy);
  }
  /* PREFIX/lib/nnc/plugins beside an installed PREFIX/bin/nnc */
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (ok && n > 0) {
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = 0;
      char dir[PATH_MAX + 32], real[PATH_MAX];
      snprintf(dir, sizeof dir, "%s/../lib/nnc/plugins", exe);
      ok = load_dir(realpath(dir, real) ? real : dir);
    }
  }
  return ok;
}

const NncBackend *backend_find(const char *name, bool search) {
  register_builtins();
  for (int i = 0; i < ntable; i++)
    if (!strcmp(table[i].b->name, name)) return table[i].b;
  if (search && !search_done) {
    if (!backend_load_search_path()) return NULL;
    return backend_find(name, false);
  }
  return NULL;
}

int backend_count(void) {
  register_builtins();
  return ntable;
}

const NncBackend *backend_at(int i, const char **origin) {
  register_builtins();
  if (origin) *origin = table[i].origin;
  return table[i].b;
}

bool backend_list_has(const char *list, const char *w) {
  size_t n = strlen(w);
  for (const char *s = list; s && *s;) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (len == n && !strncmp(s, w, n)) return true;
    s = e ? e + 1 : s + len;
  }
  return false;
}

const NncBackend *backend_default(void) {
  register_builtins();
  return table[0].b;
}

const NncBackend *backend_emitting(const char *kind) {
  register_builtins();
  for (int i = 0; i < ntable; i++)
    if (backend_list_has(table[i].b->emits, kind)) return table[i].b;
  return NULL;
}

int backend_names(char *buf, size_t size, char which, const char *word) {
  register_builtins();
  int n = 0;
  buf[0] = 0;
  for (int i = 0; i < ntable; i++) {
    const NncBackend *b = table[i].b;
    const char *list = which == 'e' ? b->emits : which == 'o' && NNC_BACKEND_HAS(b, options) ? b->options : NULL;
    if (which && !backend_list_has(list, word)) continue;
    size_t at = strlen(buf);
    snprintf(buf + at, size - at, "%s%s", n++ ? "," : "", b->name);
  }
  return n;
}

const char *backend_device(const NncBackend *b) {
  /* ORDER NncCodeKind: the device layer's names (runtime/device.h) */
  static const char *const devices[] = {"-", "cpu", "cuda", "opencl"};
  NncCodeKind k = NNC_BACKEND_HAS(b, code) ? b->code : NNC_CODE_UNSET;
  if (b->flags & NNC_BACKEND_NO_KERNELS || (unsigned)k >= sizeof devices / sizeof *devices) return "-";
  return devices[k];
}
