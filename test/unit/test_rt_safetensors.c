/* test/unit/test_rt_safetensors.c - the safetensors writer and reader
 * (runtime/safetensors.c): round trips (names, shapes, values, metadata,
 * escaping), atomic replacement, the header checked by Python's json module
 * when /usr/bin/python3 exists, and malformed files built byte by byte,
 * each of which must fail with -1 and a message naming the file.  Prints
 * one line per failed check; exits 1 if any failed.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/safetensors.h"

#include "check.h"

static bool verbose; /* VERBOSE=1 in the environment: print every error message checked */
static char tmpdir[256];

static const char *tmp_path(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

static int count_tmp_files(void) {
  DIR *d = opendir(tmpdir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) n++;
  if (d) closedir(d);
  return n;
}

static void test_round_trip(void) {
  float w[6] = {1, -2, 3.5f, 1e-30f, -0.0f, 65504};
  float b[3] = {0.25f, 0.5f, 0.75f};
  float s = 42;
  const char *odd = "a\"b\\c\n\x01 \xc3\xa9 \xf0\x9f\x98\x80"; /* quote, backslash, controls, é, emoji */
  RtTensorRef ts[5] = {
      {"h.w", w, 2, {2, 3}},
      {"h.b", b, 1, {3}},
      {"step", &s, 0, {0}},
      {"empty", NULL, 2, {0, 4}},
      {odd, b, 1, {1}},
  };
  const char *p = tmp_path("params.safetensors");
  RtError err;
  int rc = rt_safetensors_write(p, ts, 5, "\"epoch\": \"3\", \"note\": \"a \\\"quoted\\\" \\u00e9\"", &err);
  CHECK(rc == 0, "write: %s", err.msg);
  CHECK(count_tmp_files() == 0, "no temporary file left behind");

  FILE *f = fopen(p, "rb");
  unsigned char lenb[8] = {0};
  if (f) {
    if (fread(lenb, 1, 8, f) != 8) lenb[0] = 1;
    fclose(f);
  }
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
  CHECK(hlen % 8 == 0 && hlen < 4096, "header length %llu is a small multiple of 8", (unsigned long long)hlen);

  RtSafetensors st;
  rc = rt_safetensors_read(p, &st, &err);
  CHECK(rc == 0, "read: %s", err.msg);
  if (rc != 0) return;
  CHECK(st.n == 5, "%d tensors", st.n);
  CHECK(st.n == 5 && strcmp(st.tensors[0].name, "h.w") == 0 && strcmp(st.tensors[4].name, odd) == 0,
        "tensors in the order written");
  int rank = -1;
  const int64_t *dims = NULL;
  const float *v = rt_safetensors_find(&st, "h.w", &rank, &dims);
  CHECK(v && rank == 2 && dims[0] == 2 && dims[1] == 3, "h.w shape");
  CHECK(v && memcmp(v, w, sizeof w) == 0, "h.w values (bit exact)");
  v = rt_safetensors_find(&st, "h.b", &rank, &dims);
  CHECK(v && rank == 1 && dims[0] == 3 && v[2] == 0.75f, "h.b");
  v = rt_safetensors_find(&st, "step", &rank, NULL);
  CHECK(v && rank == 0 && v[0] == 42, "scalar");
  v = rt_safetensors_find(&st, "empty", &rank, &dims);
  CHECK(rank == 2 && dims[0] == 0 && dims[1] == 4, "empty tensor shape");
  v = rt_safetensors_find(&st, odd, &rank, &dims);
  CHECK(v && v[0] == 0.25f, "escaped name");
  CHECK(rt_safetensors_find(&st, "nope", NULL, NULL) == NULL, "missing name gives NULL");
  CHECK(st.tensors[0].begin == 0 && st.tensors[0].end == 24 && st.tensors[1].begin == 24, "offsets in order");
  const char *m = rt_safetensors_metadata(&st, "epoch");
  CHECK(m && strcmp(m, "3") == 0, "metadata epoch = %s", m ? m : "(null)");
  m = rt_safetensors_metadata(&st, "note");
  CHECK(m && strcmp(m, "a \"quoted\" \xc3\xa9") == 0, "metadata note = %s", m ? m : "(null)");
  rt_safetensors_free(&st);

  /* Python's json module reads the header the same way. */
  if (access("/usr/bin/python3", X_OK) == 0) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import json,struct,sys\n"
             "b=open(sys.argv[1],\"rb\").read(); n=struct.unpack(\"<Q\",b[:8])[0]\n"
             "h=json.loads(b[8:8+n].decode(\"utf-8\"))\n"
             "assert n %% 8 == 0 and list(h)[1:3] == [\"h.w\", \"h.b\"], h\n"
             "assert h[\"h.w\"]==dict(dtype=\"F32\",shape=[2,3],data_offsets=[0,24]), h\n"
             "assert h[\"__metadata__\"][\"epoch\"]==\"3\"\n"
             "assert struct.unpack(\"<6f\",b[8+n:8+n+24])[2]==3.5\n"
             "assert len(b)==8+n+max(v[\"data_offsets\"][1] for k,v in h.items() if k!=\"__metadata__\")\n"
             "' '%s'",
             p);
    int status = system(cmd);
    CHECK(status == 0, "python3 json check of the header failed (status %d)", status);
  }

  /* Overwriting replaces the file; an empty set of tensors is valid. */
  rc = rt_safetensors_write(p, NULL, 0, NULL, &err);
  CHECK(rc == 0, "write empty: %s", err.msg);
  rc = rt_safetensors_read(p, &st, &err);
  CHECK(rc == 0 && st.n == 0 && st.n_meta == 0, "read empty: %s", err.msg);
  if (rc == 0) rt_safetensors_free(&st);
  rc = rt_safetensors_write(p, ts, 2, "{}", &err);
  CHECK(rc == 0, "metadata {}: %s", err.msg);
}

static void expect_write_error(const char *path, const RtTensorRef *ts, int n, const char *meta, const char *what,
                               int line) {
  RtError err = {{0}};
  int rc = rt_safetensors_write(path, ts, n, meta, &err);
  checks++;
  if (verbose) printf("  %s\n", err.msg);
  if (rc != -1 || !strstr(err.msg, path) || !strstr(err.msg, what)) {
    check_failed(__FILE__, line, path, ": write: rc %d, message '%s' (wanted '%s')", rc, err.msg, what);
  }
}
#define WRITE_ERROR(path, ts, n, meta, what) expect_write_error(path, ts, n, meta, what, __LINE__)

static void test_write_errors(void) {
  float w[2] = {1, 2};
  const char *p = tmp_path("keep.safetensors");
  RtTensorRef good = {"a", w, 1, {2}};
  RtError err;
  CHECK(rt_safetensors_write(p, &good, 1, NULL, &err) == 0, "write: %s", err.msg);
  RtTensorRef dup[2] = {{"a", w, 1, {2}}, {"a", w, 1, {1}}};
  WRITE_ERROR(p, dup, 2, NULL, "is written twice");
  RtTensorRef reserved = {"__metadata__", w, 1, {2}};
  WRITE_ERROR(p, &reserved, 1, NULL, "reserved");
  RtTensorRef neg = {"n", w, 1, {-1}};
  WRITE_ERROR(p, &neg, 1, NULL, "bad shape");
  RtTensorRef rank9 = {"r", w, 9, {0}};
  WRITE_ERROR(p, &rank9, 1, NULL, "rank");
  RtTensorRef nodata = {"d", NULL, 1, {2}};
  WRITE_ERROR(p, &nodata, 1, NULL, "no data");
  RtTensorRef noname = {NULL, w, 1, {2}};
  WRITE_ERROR(p, &noname, 1, NULL, "no name");
  RtTensorRef badutf = {"\xff", w, 1, {2}};
  WRITE_ERROR(p, &badutf, 1, NULL, "utf-8");
  WRITE_ERROR(p, &good, 1, "\"epoch\": 3", "bad metadata");
  WRITE_ERROR(p, &good, 1, "{\"a\": \"1\"} x", "bad metadata");
  WRITE_ERROR(p, &good, 1, "\"a\": \"1\", \"a\": \"2\"", "duplicate");
  WRITE_ERROR("/nonexistent/dir/x.safetensors", &good, 1, NULL, "no such file or directory");
  /* The file from the first write is untouched by the failed ones. */
  RtSafetensors st;
  int rc = rt_safetensors_read(p, &st, &err);
  CHECK(rc == 0 && st.n == 1 && st.tensors[0].data[1] == 2, "failed writes left the old file: %s", err.msg);
  if (rc == 0) rt_safetensors_free(&st);
  CHECK(count_tmp_files() == 0, "no temporary file left behind by failed writes");
}

/* Writes a file from a header text and data bytes; hlen_override != 0
 * replaces the length field. */
static const char *raw_file(const char *name, const char *header, size_t data_n, uint64_t hlen_override) {
  const char *p = tmp_path(name);
  FILE *f = fopen(p, "wb");
  uint64_t n = hlen_override ? hlen_override : strlen(header);
  unsigned char lenb[8];
  for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(n >> (8 * i));
  fwrite(lenb, 1, 8, f);
  fwrite(header, 1, strlen(header), f);
  for (size_t i = 0; i < data_n; i++) fputc(0, f);
  fclose(f);
  return p;
}

static void expect_read_error(const char *name, const char *header, size_t data_n, uint64_t hlen, const char *what,
                              int line) {
  const char *p = raw_file(name, header, data_n, hlen);
  RtSafetensors st;
  RtError err = {{0}};
  int rc = rt_safetensors_read(p, &st, &err);
  checks++;
  if (verbose) printf("  %s\n", err.msg);
  if (rc != -1 || !strstr(err.msg, p) || !strstr(err.msg, what) || st.n || st.blob) {
    check_failed(__FILE__, line, name, ": read: rc %d, message '%s' (wanted '%s')", rc, err.msg, what);
  }
}
#define READ_ERROR(name, header, data_n, what) expect_read_error(name, header, data_n, 0, what, __LINE__)

#define T(name, shape, b, e) "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void test_read_errors(void) {
  RtSafetensors st;
  RtError err;
  /* A well-formed hand-written file first, in another key order, with
   * whitespace: the reader must accept it. */
  const char *p = raw_file("ok.safetensors",
                           "{ \"b\" : {\"data_offsets\":[8,16],\"shape\":[2],\"dtype\":\"F32\"},\n"
                           "  \"a\": {\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
                           "\"__metadata__\":{\"k\":\"v\"} }   ",
                           16, 0);
  int rc = rt_safetensors_read(p, &st, &err);
  CHECK(rc == 0 && st.n == 2 && rt_safetensors_find(&st, "a", NULL, NULL) == st.blob, "hand-written file: %s",
        err.msg);
  if (rc == 0) rt_safetensors_free(&st);

  p = tmp_path("short.safetensors");
  FILE *f = fopen(p, "wb");
  fwrite("\x08\0\0", 1, 3, f);
  fclose(f);
  rc = rt_safetensors_read(p, &st, &err);
  CHECK(rc == -1 && strstr(err.msg, p) && strstr(err.msg, "truncated"), "3-byte file: %s", err.msg);
  rc = rt_safetensors_read(tmp_path("absent.safetensors"), &st, &err);
  CHECK(rc == -1 && strstr(err.msg, "absent.safetensors: no such file"), "missing file: %s", err.msg);
  rc = rt_safetensors_read(tmpdir, &st, &err);
  CHECK(rc == -1 && strstr(err.msg, tmpdir), "directory: %s", err.msg);

  expect_read_error("huge.safetensors", "{}", 0, UINT64_C(200000000), "over the 100 MB limit", __LINE__);
  expect_read_error("huge2.safetensors", "{}", 0, UINT64_MAX, "over the 100 MB limit", __LINE__);
  expect_read_error("past.safetensors", "{}", 0, 1000, "runs past the end of the file", __LINE__);
  READ_ERROR("notjson.safetensors", "{not json}", 0, "header is not valid json");
  READ_ERROR("empty.safetensors", "", 0, "header is not valid json");
  READ_ERROR("array.safetensors", "[]", 0, "expected '{'");
  READ_ERROR("trailing.safetensors", "{} x", 0, "nothing after the header object");
  READ_ERROR("comma.safetensors", "{" T("a", "[2]", 0, 8) ",}", 8, "header is not valid json");
  READ_ERROR("unclosed.safetensors", "{" T("a", "[2]", 0, 8), 8, "header is not valid json");
  READ_ERROR("overlap.safetensors", "{" T("a", "[2]", 0, 8) "," T("b", "[2]", 4, 12) "}", 12, "overlap");
  READ_ERROR("gap.safetensors", "{" T("a", "[2]", 0, 8) "," T("b", "[2]", 12, 20) "}", 20,
             "no tensor covers bytes [8, 12)");
  READ_ERROR("uncovered.safetensors", "{" T("a", "[2]", 0, 8) "}", 16,
             "the data section has 16 bytes but the tensors cover 8");
  READ_ERROR("start.safetensors", "{" T("a", "[2]", 4, 12) "}", 12, "no tensor covers bytes [0, 4)");
  READ_ERROR("range.safetensors", "{" T("a", "[2]", 0, 8) "}", 4, "run past the data section (4 bytes)");
  READ_ERROR("size.safetensors", "{" T("a", "[3]", 0, 8) "}", 8, "hold 8 bytes but its shape needs 12");
  READ_ERROR("reversed.safetensors", "{" T("a", "[0]", 8, 0) "}", 8, "reversed");
  READ_ERROR("truncdata.safetensors", "{" T("a", "[4]", 0, 16) "}", 10, "run past the data section");
  READ_ERROR("dup.safetensors", "{" T("a", "[1]", 0, 4) "," T("a", "[1]", 4, 8) "}", 8, "duplicate tensor name 'a'");
  READ_ERROR("f64.safetensors", "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
             "unsupported dtype 'F64' (only F32 is supported)");
  READ_ERROR("f33.safetensors", "{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
             "unknown dtype 'F33'");
  READ_ERROR("missing.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing data_offsets");
  READ_ERROR("unknown.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
             "unknown key 'x'");
  READ_ERROR("dupkey.safetensors", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", 4, "duplicate key 'dtype'");
  READ_ERROR("negdim.safetensors", "{" T("a", "[-1]", 0, 4) "}", 4, "non-negative integer");
  READ_ERROR("fracdim.safetensors", "{" T("a", "[1.0]", 0, 4) "}", 4, "non-negative integer");
  READ_ERROR("bigdim.safetensors", "{" T("a", "[99999999999999999999]", 0, 4) "}", 4, "non-negative integer");
  READ_ERROR("overflow.safetensors", "{" T("a", "[4294967296,4294967296]", 0, 4) "}", 4, "overflows");
  READ_ERROR("rank9.safetensors", "{" T("a", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, "more than 8 dimensions");
  READ_ERROR("offs3.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
             "data_offsets has two values");
  READ_ERROR("meta.safetensors", "{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ value for 'k' is not a string");
  READ_ERROR("meta2.safetensors", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate key '__metadata__'");
  READ_ERROR("escape.safetensors", "{\"a\\q\":{}}", 0, "expected a valid escape");
  READ_ERROR("surrogate.safetensors", "{\"\\ud800x\":{}}", 0, "expected a low surrogate");
  READ_ERROR("utf8.safetensors", "{\"\xc3\x28\":{}}", 0, "invalid utf-8");
  READ_ERROR("control.safetensors", "{\"a\tb\":{}}", 0, "control character");
  READ_ERROR("number.safetensors", "{" T("a", "[01]", 0, 4) "}", 4, "header is not valid json");
  READ_ERROR("entry.safetensors", "{\"a\":[]}", 0, "a tensor entry");
  READ_ERROR("noentry.safetensors", "{\"a\":{}}", 0, "missing dtype, shape and data_offsets");
}

int main(void) {
  verbose = getenv("VERBOSE") != NULL;
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/nnrt-st-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    printf("cannot create a temporary directory\n");
    return 2;
  }
  test_round_trip();
  test_write_errors();
  test_read_errors();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
  return check_done();
}
