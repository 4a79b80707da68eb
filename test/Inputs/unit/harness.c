/* A unit test of the unit-test harness (test/unit/check.h), compiled by
 * test/Layout/unit-harness.test: argv[1] says what happens. */
#include "check.h"

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  CHECK(1 + 1 == 2);
  CHECK(2 * 2 == 4, "with a message %d", 4);
  CHECK_STR("abc", "abc");
  if (!strcmp(mode, "fail")) {
    CHECK(1 + 1 == 3);
    CHECK(2 > 3, "2 is %d", 2);
    CHECK_STR("got", "want");
  }
  if (!strcmp(mode, "note")) check_note("no device for one part");
  if (!strcmp(mode, "skip") || !strcmp(mode, "fail")) check_skip("no %s here", "device");
  return check_done();
}
